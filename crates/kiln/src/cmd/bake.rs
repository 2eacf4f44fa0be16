//! `kiln bake`: build targets from docker-bake HCL/JSON and compose files.
//!
//! Resolution (`--print`, `--list`) is done by `kiln_bake`; executing builds
//! is not wired to the engine yet.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use kiln_bake::{BakeRequest, print};

#[derive(clap::Args, Debug, Default)]
pub struct BakeArgs {
    /// Targets or groups to build (default: "default")
    pub targets: Vec<String>,

    /// Build definition file ("-" reads stdin); repeatable
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,

    /// Override target value (e.g. "targetpattern.key=value"); repeatable
    #[arg(long = "set", value_name = "PATTERN.KEY=VALUE")]
    pub set: Vec<String>,

    /// Set a variable value (takes precedence over the environment); repeatable
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,

    /// Print the options without building
    #[arg(long)]
    pub print: bool,

    /// List targets or variables ("targets", "variables", or "type=targets,format=json")
    #[arg(long, value_name = "TYPE")]
    pub list: Option<String>,

    /// Flags that shape how targets are built.
    #[command(flatten)]
    pub build: Box<BakeBuildFlags>,
}

/// Build-execution flags, boxed to keep the subcommand enum small.
#[derive(clap::Args, Debug, Default)]
pub struct BakeBuildFlags {
    /// Shorthand for "--set=*.output=type=docker"
    #[arg(long)]
    pub load: bool,

    /// Shorthand for "--set=*.output=type=registry"
    #[arg(long)]
    pub push: bool,

    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,

    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,

    /// Shorthand for "--set=*.attest=type=provenance"
    #[arg(long, value_name = "VALUE")]
    pub provenance: Option<String>,

    /// Shorthand for "--set=*.attest=type=sbom"
    #[arg(long, value_name = "VALUE")]
    pub sbom: Option<String>,

    /// Set type of progress output ("auto", "plain", "tty", "quiet", "rawjson")
    #[arg(long, default_value = "auto")]
    pub progress: String,

    /// Write build result metadata to a file
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<String>,

    /// Allow build to access specified resources (e.g. "network.host", "fs.read=/path")
    #[arg(long, value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,

    /// Set method for evaluating build ("check", "outline", "targets")
    #[arg(long, value_name = "METHOD")]
    pub call: Option<String>,

    /// Shorthand for "--call=check"
    #[arg(long)]
    pub check: bool,

    /// Limit how many targets build concurrently
    #[arg(long = "max-parallelism", value_name = "N")]
    pub max_parallelism: Option<usize>,

    /// Keep building other targets when one fails
    #[arg(long = "keep-going")]
    pub keep_going: bool,

    /// Stop all builds at the first failure
    #[arg(long = "fail-fast")]
    pub fail_fast: bool,

    /// Only push images if all targets succeed
    #[arg(long)]
    pub atomic: bool,
}

/// The `--set` overrides implied by shorthand flags, after the user's own.
fn overrides(args: &BakeArgs) -> Vec<String> {
    let mut out = args.set.clone();
    let flags = &args.build;
    let call = if flags.check {
        Some("check".to_string())
    } else {
        flags.call.clone()
    };
    let implied = [
        (flags.push, "*.push=true".to_string()),
        (flags.load, "*.load=true".to_string()),
        (flags.no_cache, "*.no-cache=true".to_string()),
        (flags.pull, "*.pull=true".to_string()),
    ];
    out.extend(implied.into_iter().filter(|(on, _)| *on).map(|(_, s)| s));
    if let Some(c) = call {
        out.push(format!("*.call={c}"));
    }
    if let Some(p) = &flags.provenance {
        out.push(format!("*.attest={}", attest_flag("provenance", p)));
    }
    if let Some(s) = &flags.sbom {
        out.push(format!("*.attest={}", attest_flag("sbom", s)));
    }
    out
}

fn attest_flag(kind: &str, value: &str) -> String {
    match value {
        "true" | "1" => format!("type={kind}"),
        "false" | "0" => format!("type={kind},disabled=true"),
        other => format!("type={kind},{other}"),
    }
}

fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for v in vars {
        let Some((k, val)) = v.split_once('=') else {
            return Err(format!("invalid --var {v:?}: expected NAME=VALUE"));
        };
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// `--list` value: ("targets" | "variables", json?).
fn parse_list(spec: &str) -> Result<(String, bool), String> {
    let mut kind = None;
    let mut json = false;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("format", "json")) => json = true,
            Some(("format", "table")) => json = false,
            None => kind = Some(part.to_string()),
            Some((k, _)) => return Err(format!("invalid --list option {k:?}")),
        }
    }
    match kind.as_deref() {
        Some("targets") | Some("variables") => Ok((kind.unwrap_or_default(), json)),
        other => Err(format!(
            "invalid --list type {other:?}: expected \"targets\" or \"variables\""
        )),
    }
}

fn execute(args: &BakeArgs, root: Option<&Path>, out: &mut dyn Write) -> Result<i32, String> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot determine working directory: {e}"))?;
    let files = kiln_bake::read_files(&args.files, &cwd, &mut std::io::stdin())
        .map_err(|e| e.to_string())?;
    let req = BakeRequest {
        files,
        targets: args.targets.clone(),
        overrides: overrides(args),
        env: std::env::vars().collect(),
        vars: parse_vars(&args.vars)?,
        cwd,
        ..BakeRequest::default()
    };
    let write_err = |e: std::io::Error| format!("cannot write output: {e}");
    if let Some(spec) = &args.list {
        let (kind, json) = parse_list(spec)?;
        let parsed = kiln_bake::parse(&req).map_err(|e| e.to_string())?;
        let text = match (kind.as_str(), json) {
            ("targets", false) => print::list_targets(&parsed.config),
            ("variables", false) => print::list_variables(&parsed.variables),
            ("targets", true) => pretty(&print::list_json_targets(&parsed.config)) + "\n",
            _ => pretty(&print::list_json_variables(&parsed.variables)) + "\n",
        };
        out.write_all(text.as_bytes()).map_err(write_err)?;
        return Ok(0);
    }
    let resolved = kiln_bake::resolve(&req).map_err(|e| e.to_string())?;
    crate::timing::mark("bake files resolved");
    if args.print {
        writeln!(out, "{}", print::print_text(&resolved)).map_err(write_err)?;
        return Ok(0);
    }
    let run = super::bake_exec::BakeRun {
        root,
        cwd: &req.cwd,
        requested: &req.targets,
        progress: &args.build.progress,
        max_parallelism: args.build.max_parallelism,
        keep_going: args.build.keep_going,
        atomic: args.build.atomic,
        metadata_file: args.build.metadata_file.as_deref().map(Path::new),
        no_cache: args.build.no_cache,
        allow: &args.build.allow,
    };
    super::bake_exec::run_bake(&resolved, &run).map_err(|f| f.message)
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub fn run(args: BakeArgs, root: Option<&Path>) -> i32 {
    let stdout = std::io::stdout();
    match execute(&args, root, &mut stdout.lock()) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ERROR: {msg}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_flags_become_overrides() {
        let args = BakeArgs {
            set: vec!["a.tags=x".into()],
            build: Box::new(BakeBuildFlags {
                push: true,
                check: true,
                ..BakeBuildFlags::default()
            }),
            ..BakeArgs::default()
        };
        assert_eq!(
            overrides(&args),
            vec!["a.tags=x", "*.push=true", "*.call=check"]
        );
    }

    #[test]
    fn list_spec_forms() {
        assert_eq!(
            parse_list("targets").unwrap(),
            ("targets".to_string(), false)
        );
        assert_eq!(
            parse_list("type=variables,format=json").unwrap(),
            ("variables".to_string(), true)
        );
        assert!(parse_list("nope").is_err());
    }
}
