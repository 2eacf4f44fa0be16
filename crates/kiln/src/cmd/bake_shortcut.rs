//! The whole-build short cut for `kiln bake`: one record per bake request, holding an
//! image per requested target and what all of them depended on. When nothing changed,
//! every target is answered from its image without planning the graph. The record and
//! its checks are the build short cut's (`kiln_solver::session::shortcut`).

use std::collections::BTreeMap;

use kiln_bake::Resolved;
use kiln_bake::build_opt::build_opt;
use kiln_graph::Graph;
use kiln_solver::build::ignore_patterns;
use kiln_solver::session::{
    ExportRequest, ShortcutInputs, Solved, fetches_urls, fingerprint_of, publish_stored, shortcut,
};
use kiln_store::Store;

use super::bake_exec::BakeRun;
use super::build_exec::Failure;

/// The fingerprint of a bake request: every resolved target (all their attributes, as
/// resolution from the bake files, variables, `--set` and the environment left them),
/// each wanted target's Dockerfile and ignore patterns, and the options that change
/// results. `None` when the request must not use the short cut.
pub fn fingerprint(resolved: &Resolved, wanted: &[String], run: &BakeRun<'_>) -> Option<String> {
    if run.no_cache {
        return None;
    }
    let mut inputs = Vec::new();
    for (name, target) in &resolved.targets {
        let uncacheable = target.no_cache == Some(true)
            || target
                .no_cache_filter
                .as_ref()
                .is_some_and(|f| !f.is_empty());
        let from_layout = target
            .contexts
            .iter()
            .flatten()
            .any(|(_, value)| value.starts_with("oci-layout://"));
        // A pull asks the registry again, a push and a cache export must reach theirs.
        let pushes = target.output.iter().flatten().any(|o| {
            o.get("push").is_some_and(|v| v == "true")
                || o.get("type").is_some_and(|t| t == "registry")
        });
        let exports_cache = target.cache_to.as_ref().is_some_and(|c| !c.is_empty());
        let remote = pushes || exports_cache || target.pull == Some(true);
        if wanted.contains(name) && (uncacheable || from_layout || remote) {
            return None;
        }
        let opt = build_opt(target, run.cwd);
        let dockerfile_path = run.cwd.join(&opt.dockerfile_path);
        let dockerfile = match &target.dockerfile_inline {
            Some(inline) => inline.clone(),
            // Targets not built here may name files that do not exist; they change
            // nothing, but their attributes still count above.
            None => std::fs::read_to_string(&dockerfile_path).unwrap_or_default(),
        };
        let context = run.cwd.join(&opt.context_path);
        let context = std::fs::canonicalize(&context).unwrap_or(context);
        inputs.push(serde_json::json!({
            "name": name,
            // Debug shows every attribute; the kiln version below pins its format.
            "target": format!("{target:?}"),
            "dockerfile": dockerfile,
            "ignore": ignore_patterns(&context, &dockerfile_path).ok().flatten(),
        }));
    }
    let document = serde_json::json!({
        "format": 1,
        "kind": "bake",
        "kiln": env!("CARGO_PKG_VERSION"),
        "cwd": run.cwd,
        "wanted": wanted,
        "allow": run.allow,
        "targets": inputs,
        "source_date_epoch": std::env::var("SOURCE_DATE_EPOCH").ok(),
    });
    fingerprint_of(&document)
}

/// Answers every wanted target from the record of `fingerprint`, if nothing changed:
/// `Ok(Some(metadata))` with each target's metadata, as a real bake writes it.
pub fn answer(
    store: &Store,
    fingerprint: Option<&str>,
    wanted: &[String],
    requests: &dyn Fn(&str) -> Result<ExportRequest, Failure>,
    quiet: bool,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, Failure> {
    let Some(fingerprint) = fingerprint else {
        return Ok(None);
    };
    let Some(mut images) = shortcut(store, fingerprint)? else {
        crate::timing::mark("no short cut");
        return Ok(None);
    };
    crate::timing::mark("short cut found");
    if !wanted.iter().all(|name| images.contains_key(name)) {
        return Ok(None);
    }
    if !quiet {
        eprintln!(
            "nothing changed since the last bake of these targets: their images are the answer"
        );
    }
    let mut metadata = serde_json::Map::new();
    for name in wanted {
        let Some(built) = images.remove(name) else {
            continue;
        };
        let request = requests(name)?;
        let exported =
            publish_stored(store, &built, &request).map_err(|e| format!("[{name}] {e}"))?;
        metadata.insert(name.clone(), exported.metadata());
    }
    crate::timing::mark("published");
    Ok(Some(metadata))
}

/// Records a bake whose every target was built and exported, unless something it read
/// cannot be checked again (a URL's content).
pub fn remember(
    store: &Store,
    fingerprint: Option<&str>,
    graph: &Graph,
    roots: &[kiln_graph::NodeId],
    solved: &Solved,
    images: Vec<(String, String)>,
    made: BTreeMap<String, String>,
) -> Result<(), Failure> {
    let Some(fingerprint) = fingerprint else {
        return Ok(());
    };
    let Some(first) = made.values().next().cloned() else {
        return Ok(());
    };
    if fetches_urls(graph, roots) {
        return Ok(());
    }
    let inputs = ShortcutInputs {
        images,
        reads: solved.reads.clone(),
        targets: made,
    };
    kiln_solver::session::remember_shortcut(store, fingerprint, &first, &inputs)?;
    Ok(())
}
