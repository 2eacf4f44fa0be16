//! One build request, from Dockerfile text to a lowered stage in a shared graph, and from
//! a solved graph to an image. `kiln build` plans one request; `kiln bake` plans many into
//! the same graph so that shared ops run once.

mod images;
mod pull;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use kiln_frontend::dockerfile::{
    Dockerfile, FrontendError, Platform, ResolveOptions, ResolvedBuild, StageBase,
};
use kiln_graph::Graph;
use kiln_graph::lower::{
    DEFAULT_PATH, ImageResolver, LowerError, LowerRequest, LoweredStage, NamedContext, lower,
};

pub use images::StoreImages;
pub use pull::still_pulled;

/// The `.dockerignore` patterns a build of `dockerfile` in `context` uses, as written
/// (exceptions with their `!`); `Ok(None)` without an ignore file.
pub fn ignore_patterns(
    context: &Path,
    dockerfile: &Path,
) -> Result<Option<Vec<String>>, BuildError> {
    let file = kiln_frontend::dockerignore::load_for_build(context, dockerfile)
        .map_err(|e| BuildError::Input(e.to_string()))?;
    Ok(file.map(|f| {
        f.matcher
            .patterns()
            .iter()
            .map(|p| {
                if p.is_exception() {
                    format!("!{}", p.pattern())
                } else {
                    p.pattern().to_string()
                }
            })
            .collect()
    }))
}

/// What one Dockerfile build asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// How errors name the Dockerfile (its path, or `Dockerfile` for stdin).
    pub dockerfile_label: String,
    pub dockerfile_text: String,
    /// The Dockerfile's path, to find `<Dockerfile>.dockerignore`.
    pub dockerfile_path: Option<PathBuf>,
    /// The main context directory; `None` when there is none (`-`).
    pub context: Option<PathBuf>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    /// `--build-context NAME=VALUE`, parsed.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `os/arch[/variant]`; the host's when `None`.
    pub platform: Option<String>,
    /// `--label` values added to the image config.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Frontend(#[from] FrontendError),
    #[error("{0}")]
    Input(String),
}

/// Parses `--build-context NAME=VALUE`: `docker-image://REF`, `oci-layout://PATH...`,
/// `target:NAME` (only bake resolves those), or a local directory.
pub fn parse_build_context(text: &str) -> Result<(String, NamedContext), String> {
    let (name, value) = text
        .split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("invalid --build-context {text:?}: expected NAME=VALUE"))?;
    let context = if let Some(reference) = value.strip_prefix("docker-image://") {
        NamedContext::Image(reference.to_string())
    } else if value.starts_with("oci-layout://") {
        NamedContext::Image(value.to_string())
    } else if value.starts_with("target:") {
        return Err(format!(
            "--build-context {name}={value}: target: contexts only exist in kiln bake"
        ));
    } else if value.contains("://") {
        return Err(format!(
            "--build-context {name}={value}: kiln reads local directories, docker-image:// and oci-layout:// contexts"
        ));
    } else {
        let path = PathBuf::from(value);
        let absolute = std::fs::canonicalize(&path).map_err(|e| {
            format!("--build-context {name}={value}: cannot use that directory: {e}")
        })?;
        NamedContext::Local(absolute)
    };
    Ok((name.to_string(), context))
}

/// Parses, resolves and lowers `request` into `graph`.
pub fn plan(
    graph: &mut Graph,
    images: &StoreImages,
    request: &BuildRequest,
) -> Result<LoweredStage, BuildError> {
    let df = Dockerfile::parse(&request.dockerfile_label, &request.dockerfile_text)?;
    let platform = match &request.platform {
        Some(p) => Platform::parse(p).map_err(BuildError::Input)?,
        None => Platform::default(),
    };
    let options = ResolveOptions {
        target: request.target.clone(),
        build_args: request.build_args.clone(),
        target_platform: platform.clone(),
        build_platform: Platform::default(),
        image_env: HashMap::new(),
        all_stages: false,
    };
    let mut build = df.resolve(&options)?;
    // Expansion sees base images' ENV (`ENV PATH=/x:$PATH`), known only once the images
    // the first pass named are looked up: resolve again with it.
    let image_env = base_image_env(
        images,
        &build,
        &request.named_contexts,
        &platform_text(&platform),
    );
    if !image_env.is_empty() {
        build = df.resolve(&ResolveOptions {
            image_env,
            ..options
        })?;
    }
    let (context_name, context_excludes) = match &request.context {
        Some(dir) => {
            let dockerfile = request
                .dockerfile_path
                .clone()
                .unwrap_or_else(|| dir.join("Dockerfile"));
            let patterns = ignore_patterns(dir, &dockerfile)?.unwrap_or_default();
            (dir.display().to_string(), patterns)
        }
        None => (String::new(), Vec::new()),
    };
    let lower_request = LowerRequest {
        build: &build,
        build_args: &request.build_args,
        named_contexts: &request.named_contexts,
        resolver: images,
        platform: platform_text(&platform),
        context_name,
        context_excludes,
    };
    let mut stage = lower(graph, &lower_request)
        .map_err(|e| located(&request.dockerfile_label, &request.dockerfile_text, e))?;
    for (key, value) in &request.labels {
        stage.image.config.labels.insert(key.clone(), value.clone());
    }
    Ok(stage)
}

fn platform_text(platform: &Platform) -> String {
    match &platform.variant {
        Some(v) => format!("{}/{}/{v}", platform.os, platform.arch),
        None => format!("{}/{}", platform.os, platform.arch),
    }
}

/// ENV of every image a stage starts from, by the reference as written.
fn base_image_env(
    images: &StoreImages,
    build: &ResolvedBuild,
    named_contexts: &BTreeMap<String, NamedContext>,
    platform: &str,
) -> HashMap<String, Vec<(String, String)>> {
    let mut env = HashMap::new();
    for stage in &build.stages {
        let StageBase::Image(reference) = &stage.base else {
            continue;
        };
        let found = match named_contexts.get(reference) {
            Some(NamedContext::Stage(stage)) => Some(stage.image.config.env_pairs()),
            Some(NamedContext::Image(image)) => images
                .resolve_image(image, platform)
                .ok()
                .map(|i| i.image.config.env_pairs()),
            Some(NamedContext::Local(_)) => None,
            None => images
                .resolve_image(reference, platform)
                .ok()
                .map(|i| i.image.config.env_pairs()),
        };
        if let Some(mut pairs) = found {
            // Lowering gives a stage without PATH the default one; expansion must see it too.
            if !pairs.iter().any(|(k, _)| k == "PATH") {
                pairs.push(("PATH".to_string(), DEFAULT_PATH.to_string()));
            }
            env.insert(reference.clone(), pairs);
        }
    }
    env
}

/// A lowering error shown like every other Dockerfile error: file:line and the line.
fn located(file: &str, text: &str, error: LowerError) -> BuildError {
    let line = error.line().unwrap_or(0);
    let message = match &error {
        LowerError::Instruction { message, .. } => message.clone(),
        other => other.to_string(),
    };
    BuildError::Frontend(FrontendError {
        file: file.into(),
        line,
        end_line: line,
        column: None,
        source_line: line
            .checked_sub(1)
            .and_then(|i| text.lines().nth(i))
            .map(str::to_string),
        message,
        hint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns_are_read_as_written_and_absent_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let dockerfile = dir.path().join("Dockerfile");
        assert_eq!(ignore_patterns(dir.path(), &dockerfile).unwrap(), None);
        std::fs::write(dir.path().join(".dockerignore"), "*.log\n!keep.log\n").unwrap();
        assert_eq!(
            ignore_patterns(dir.path(), &dockerfile).unwrap(),
            Some(vec!["*.log".to_owned(), "!keep.log".to_owned()])
        );
    }
}
