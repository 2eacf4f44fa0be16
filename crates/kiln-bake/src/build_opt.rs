//! The parts of a resolved target that the build engine consumes as paths
//! and flags (buildx's `TargetsToBuildOpt`, reduced to what bake decides).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Target;
use crate::entries::{EntryKind, canonical};
use crate::funcs::clean_path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOpt {
    pub context_path: String,
    pub dockerfile_path: String,
    pub named_contexts_path: BTreeMap<String, String>,
    /// Attestation type -> canonical form, `None` when disabled.
    pub attests: BTreeMap<String, Option<String>>,
    pub allow: Vec<String>,
    pub network_mode: Option<String>,
}

fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s == "-"
}

fn local_path(s: &str, cwd: &Path) -> String {
    match s.strip_prefix("cwd://") {
        Some(rest) => clean_path(&cwd.join(rest).to_string_lossy()),
        None => s.to_string(),
    }
}

pub fn build_opt(t: &Target, cwd: &Path) -> BuildOpt {
    let context = t.context.clone().unwrap_or_else(|| ".".into());
    let context_path = if is_remote(&context) && !context.starts_with("cwd://") {
        context.clone()
    } else {
        local_path(&context, cwd)
    };
    let dockerfile = t.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    let dockerfile_path = if dockerfile.starts_with("cwd://") {
        local_path(&dockerfile, cwd)
    } else if dockerfile.starts_with('/')
        || is_remote(&context_path)
        || t.dockerfile_inline.is_some()
    {
        dockerfile
    } else {
        clean_path(&format!("{context_path}/{dockerfile}"))
    };
    let named_contexts_path = t
        .contexts
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                if v.starts_with("cwd://") {
                    local_path(v, cwd)
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let attests = t
        .attest
        .iter()
        .flatten()
        .map(|e| {
            let ty = e.get("type").cloned().unwrap_or_default();
            let disabled = e.get("disabled").is_some_and(|d| d == "true");
            (
                ty,
                if disabled {
                    None
                } else {
                    Some(canonical(EntryKind::Attest, e))
                },
            )
        })
        .collect();
    BuildOpt {
        context_path,
        dockerfile_path,
        named_contexts_path,
        attests,
        allow: t.entitlements.clone().unwrap_or_default(),
        network_mode: t.network.clone(),
    }
}
