//! `kiln build`: the flags of `docker buildx build`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::render::Format;

#[derive(clap::Args, Debug, Default)]
pub struct BuildArgs {
    /// Build context: a directory, or `-` to read the Dockerfile from stdin with no context
    pub context: String,

    /// Name of the Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from stdin
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,

    /// Name and optionally a tag (format: `name:tag`)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,

    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,

    /// Set build-time variables (`KEY=VALUE`, or `KEY` to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,

    /// Additional build contexts (e.g. `name=path`, `name=docker-image://ref`, `name=oci-layout:///path`)
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,

    /// Output destination (format: `type=local,dest=path`)
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,

    /// External cache sources (e.g. `user/app:cache`, `type=local,src=path/to/dir`)
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,

    /// Cache export destinations (e.g. `user/app:cache`, `type=local,dest=path/to/dir`)
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,

    /// Shorthand for `--output=type=registry`
    #[arg(long)]
    pub push: bool,

    /// Shorthand for `--output=type=docker`
    #[arg(long)]
    pub load: bool,

    /// Set target platform for build
    #[arg(long = "platform")]
    pub platforms: Vec<String>,

    /// Type of progress output (`auto`, `tty`, `plain`, `quiet`, `rawjson`)
    #[arg(long, default_value = "auto")]
    pub progress: String,

    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,

    /// Do not cache specified stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,

    /// Secret to expose to the build (format: `id=mysecret[,src=/local/secret]`)
    #[arg(long = "secret")]
    pub secrets: Vec<String>,

    /// SSH agent socket or keys to expose to the build (format: `default|<id>[=<socket>|<key>[,<key>]]`)
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,

    /// Set the networking mode for the RUN instructions during build (`default`, `none`, `host`)
    #[arg(long, default_value = "default")]
    pub network: String,

    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,

    /// Add annotation to the image
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,

    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,

    /// Write the image ID to a file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,

    /// Write build result metadata to a file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<PathBuf>,

    /// Allow extra privileged entitlement (e.g. `network.host`, `security.insecure`)
    #[arg(long = "allow")]
    pub allow: Vec<String>,

    /// Set method for evaluating build (`build`, `check`, `outline`, `targets`), with options
    /// such as `outline,format=json`
    #[arg(long, default_value = "build")]
    pub call: String,

    /// Shorthand for `--call=check`
    #[arg(long)]
    pub check: bool,

    /// Output format for `--call` results (`text` or `json`)
    #[arg(long)]
    pub format: Option<String>,

    /// Add a custom host-to-IP mapping (format: `host:ip`)
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,

    /// Attestation parameters (format: `type=sbom,generator=image`)
    #[arg(long = "attest")]
    pub attest: Vec<String>,

    /// Shorthand for `--attest=type=provenance`
    #[arg(long)]
    pub provenance: Option<String>,

    /// Shorthand for `--attest=type=sbom`
    #[arg(long)]
    pub sbom: Option<String>,

    /// Set the parent cgroup for the RUN instructions during build
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,

    /// Shared memory size for build containers
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,

    /// Ulimit options
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,

    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Accepted for compatibility with buildx; kiln has no builder instances
    #[arg(long)]
    pub builder: Option<String>,

    /// Print why each step that ran was not answered from the cache
    #[arg(long)]
    pub explain: bool,

    /// Maximum number of build steps that run at once (default: number of cores)
    #[arg(long = "max-parallelism")]
    pub max_parallelism: Option<usize>,
}

/// What `--call` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallMethod {
    Build,
    Check,
    Outline,
    Targets,
    /// kiln's own: the build graph as JSON, without running anything.
    Plan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: CallMethod,
    pub format: Format,
}

/// Parses `--call=METHOD[,format=json|text]` together with `--check` and `--format`.
pub fn parse_call(call: &str, check: bool, format: Option<&str>) -> Result<Call, String> {
    let mut parts = call.split(',');
    let method_word = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut method = match method_word.as_str() {
        "" | "build" => CallMethod::Build,
        "check" => CallMethod::Check,
        "outline" => CallMethod::Outline,
        "targets" => CallMethod::Targets,
        "plan" => CallMethod::Plan,
        other => {
            return Err(format!(
                "invalid --call method {other:?}: expected build, check, outline, targets or plan"
            ));
        }
    };
    if check {
        if method != CallMethod::Build && method != CallMethod::Check {
            return Err("--check cannot be combined with --call=".to_string() + &method_word);
        }
        method = CallMethod::Check;
    }
    let mut chosen = format.map(str::to_string);
    for option in parts {
        match option.split_once('=') {
            Some(("format", value)) => chosen = Some(value.to_string()),
            _ => {
                return Err(format!(
                    "invalid --call option {option:?}: expected format=json or format=text"
                ));
            }
        }
    }
    let format = match chosen.as_deref() {
        None | Some("text") | Some("") => Format::Text,
        Some("json") => Format::Json,
        Some(other) => {
            return Err(format!("invalid format {other:?}: expected text or json"));
        }
    };
    Ok(Call { method, format })
}

/// Splits `KEY=VALUE` build args; a bare `KEY` takes its value from the environment and is
/// dropped when unset, as buildx does.
pub fn parse_build_args(raw: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut args = BTreeMap::new();
    for item in raw {
        match item.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                args.insert(key.to_string(), value.to_string());
            }
            Some(_) => return Err(format!("invalid --build-arg {item:?}: empty name")),
            None => {
                if let Ok(value) = std::env::var(item) {
                    args.insert(item.clone(), value);
                }
            }
        }
    }
    Ok(args)
}

/// Where the Dockerfile comes from and how it is named in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    Stdin,
    Path(PathBuf),
}

pub fn dockerfile_source(context: &str, file: Option<&str>) -> DockerfileSource {
    match file {
        Some("-") => DockerfileSource::Stdin,
        Some(path) => DockerfileSource::Path(PathBuf::from(path)),
        None if context == "-" => DockerfileSource::Stdin,
        None => DockerfileSource::Path(Path::new(context).join("Dockerfile")),
    }
}

/// Runs `kiln build`.
pub fn run(args: &BuildArgs, root: Option<&Path>) -> i32 {
    let call = match parse_call(&args.call, args.check, args.format.as_deref()) {
        Ok(call) => call,
        Err(message) => return crate::render::fail("kiln build", &message),
    };
    let build_args = match parse_build_args(&args.build_args) {
        Ok(build_args) => build_args,
        Err(message) => return crate::render::fail("kiln build", &message),
    };
    let source = dockerfile_source(&args.context, args.file.as_deref());
    let (label, text) = match read_dockerfile(&source) {
        Ok(loaded) => loaded,
        Err(message) => return crate::render::fail("kiln build", &message),
    };
    let request = super::build_call::CallRequest {
        label: &label,
        text: &text,
        target: args.target.as_deref(),
        build_args: &build_args,
        format: call.format,
    };
    match call.method {
        CallMethod::Outline => super::build_call::outline(&request),
        CallMethod::Targets => super::build_call::targets(&request),
        CallMethod::Plan => {
            match super::build_exec::print_plan(args, root, &label, &text, &build_args) {
                Ok(()) => 0,
                Err(failure) => {
                    eprintln!("ERROR: {}", failure.message);
                    failure.code
                }
            }
        }
        CallMethod::Check => super::build_call::check(&request),
        CallMethod::Build => {
            let status = super::build_call::check_quiet(&request);
            if status != 0 {
                return status;
            }
            match super::build_exec::run_build(args, root, &label, &text, &build_args) {
                Ok(()) => 0,
                Err(failure) => {
                    eprintln!("ERROR: {}", failure.message);
                    failure.code
                }
            }
        }
    }
}

fn read_dockerfile(source: &DockerfileSource) -> Result<(String, String), String> {
    match source {
        DockerfileSource::Stdin => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| format!("cannot read the Dockerfile from stdin: {e}"))?;
            Ok(("Dockerfile".to_string(), text))
        }
        DockerfileSource::Path(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read Dockerfile {}: {e} (pass -f PATH or check the context directory)",
                    path.display()
                )
            })?;
            Ok((path.display().to_string(), text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_methods_and_formats() {
        let c = parse_call("outline,format=json", false, None).unwrap();
        assert_eq!(
            c,
            Call {
                method: CallMethod::Outline,
                format: Format::Json
            }
        );
        let c = parse_call("targets", false, Some("json")).unwrap();
        assert_eq!(c.format, Format::Json);
        assert_eq!(
            parse_call("build", true, None).unwrap().method,
            CallMethod::Check
        );
        assert!(parse_call("lint", false, None).is_err());
        assert!(parse_call("outline,format=yaml", false, None).is_err());
        assert!(parse_call("outline", true, None).is_err());
    }

    #[test]
    fn build_args_from_env_and_values() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("KILN_TEST_BUILD_ARG", "from-env") };
        let args = parse_build_args(&[
            "A=1".into(),
            "B=".into(),
            "KILN_TEST_BUILD_ARG".into(),
            "KILN_TEST_UNSET_ARG_XYZ".into(),
        ])
        .unwrap();
        assert_eq!(args["A"], "1");
        assert_eq!(args["B"], "");
        assert_eq!(args["KILN_TEST_BUILD_ARG"], "from-env");
        assert!(!args.contains_key("KILN_TEST_UNSET_ARG_XYZ"));
        assert!(parse_build_args(&["=x".into()]).is_err());
    }

    #[test]
    fn dockerfile_location() {
        assert_eq!(dockerfile_source("-", None), DockerfileSource::Stdin);
        assert_eq!(dockerfile_source("ctx", Some("-")), DockerfileSource::Stdin);
        assert_eq!(
            dockerfile_source("ctx", None),
            DockerfileSource::Path(PathBuf::from("ctx/Dockerfile"))
        );
        assert_eq!(
            dockerfile_source("ctx", Some("other/Dockerfile.dev")),
            DockerfileSource::Path(PathBuf::from("other/Dockerfile.dev"))
        );
    }
}
