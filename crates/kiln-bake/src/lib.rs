//! kiln bake: reads docker-bake HCL/JSON and compose files and resolves them
//! into build targets, matching `docker buildx bake`.
//!
//! The entry points are [`parse`] (evaluate files only) and [`resolve`]
//! (groups, inherits, `--set` overrides and `target:` links applied).

pub mod build_opt;
pub mod compose;
pub mod config;
pub mod doc;
pub mod entries;
pub mod error;
pub mod eval;
pub mod funcs;
pub mod json_file;
pub mod load;
pub mod overrides;
pub mod print;
pub mod resolve;
pub mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use config::{Config, Group, Resources, Target};
pub use doc::VariableInfo;
pub use error::{BakeError, Diagnostic, Pos};
pub use load::{BakeFile, DEFAULT_FILES, Parsed, default_files, read_files};
pub use resolve::Resolved;
pub use value::Value;

/// Everything a bake invocation resolves from.
#[derive(Debug, Clone, Default)]
pub struct BakeRequest {
    pub files: Vec<BakeFile>,
    /// Requested targets or groups; empty means `default`.
    pub targets: Vec<String>,
    /// `--set` flags.
    pub overrides: Vec<String>,
    /// Process environment used for variable lookup.
    pub env: BTreeMap<String, String>,
    /// `--var NAME=VALUE` flags.
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// Built-in names (`BAKE_CMD_CONTEXT`...); missing ones get defaults.
    pub defaults: BTreeMap<String, String>,
    /// Environment for compose interpolation; derived from `env` when `None`.
    pub compose_env: Option<BTreeMap<String, String>>,
}

/// The platform of this machine in OCI form (`linux/amd64`).
pub fn local_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

fn env_lookup_enabled(env: &BTreeMap<String, String>) -> bool {
    !env.get("BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP")
        .and_then(|v| doc::parse_go_bool(v))
        .unwrap_or(false)
}

/// Reads a compose `.env` file (`KEY=VALUE` lines, `#` comments, optional quotes).
fn dotenv(path: &std::path::Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), unquoted.to_string()))
        })
        .collect()
}

fn parse_options(req: &BakeRequest) -> load::ParseOptions {
    let env_lookup = env_lookup_enabled(&req.env);
    let mut defaults = req.defaults.clone();
    defaults
        .entry("BAKE_CMD_CONTEXT".into())
        .or_insert_with(|| "cwd://".into());
    defaults
        .entry("BAKE_LOCAL_PLATFORM".into())
        .or_insert_with(local_platform);
    let compose_env = req.compose_env.clone().unwrap_or_else(|| {
        // Compose reads `.env` from the project directory; the process
        // environment and `--var` take precedence over it.
        let mut env = dotenv(&req.cwd.join(".env"));
        if env_lookup {
            env.extend(req.env.clone());
        }
        env.extend(req.vars.clone());
        env
    });
    let mut compose_env = compose_env;
    if !compose_env.contains_key("COMPOSE_PROJECT_NAME") {
        let project = req
            .cwd
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_else(|| "default".into());
        compose_env.insert("COMPOSE_PROJECT_NAME".into(), project);
    }
    load::ParseOptions {
        eval: doc::EvalOptions {
            env: req.env.clone(),
            env_lookup,
            cli_vars: req.vars.clone(),
            defaults,
            file_relative_paths: req
                .env
                .get("BUILDX_BAKE_FILE_RELATIVE_PATHS")
                .and_then(|v| doc::parse_go_bool(v))
                .unwrap_or(false),
        },
        compose_env,
    }
}

/// Parses and evaluates the files (no inherits, no overrides).
pub fn parse(req: &BakeRequest) -> Result<Parsed, BakeError> {
    load::parse_files(&req.files, &parse_options(req))
}

/// Full resolution, as `docker buildx bake --print` shows it.
pub fn resolve(req: &BakeRequest) -> Result<Resolved, BakeError> {
    let parsed = parse(req)?;
    resolve_parsed(&parsed.config, req)
}

/// Resolution of an already parsed config.
pub fn resolve_parsed(config: &Config, req: &BakeRequest) -> Result<Resolved, BakeError> {
    let requested: Vec<String> = if req.targets.is_empty() {
        vec!["default".into()]
    } else {
        req.targets.clone()
    };
    let mut targets = Vec::new();
    for name in requested {
        if !name.contains(['*', '?', '[']) {
            targets.push(compose::sanitize_target_name(&name));
            continue;
        }
        let before = targets.len();
        for t in config
            .targets
            .iter()
            .map(|t| &t.name)
            .chain(config.groups.iter().map(|g| &g.name))
        {
            if overrides::glob_match(&name, t) && !targets.contains(t) {
                targets.push(t.clone());
            }
        }
        if targets.len() == before {
            return Err(BakeError::resolve(format!(
                "could not find any target matching '{name}'"
            )));
        }
    }
    let env = if env_lookup_enabled(&req.env) {
        req.env.clone()
    } else {
        BTreeMap::new()
    };
    let overrides = overrides::parse_overrides(config, &req.overrides, &env)?;
    resolve::read_targets(config, &targets, &overrides)
}

/// Evaluates one standalone HCL expression with the standard library
/// (no variables in scope). Useful for tests and `kiln bake` debugging.
pub fn eval_expression(expr: &str) -> Result<Value, BakeError> {
    let sources = [eval::Source::new("<expr>", expr)];
    let parsed = hcl_edit::parser::parse_expr(expr).map_err(|e| BakeError::Parse {
        pos: Pos {
            file: "<expr>".into(),
            line: e.location().line(),
            col: e.location().column(),
        },
        message: e.message().to_string(),
    })?;
    let mut session = eval::Session::new(&sources);
    session.eval_strict(&parsed)
}
