//! Build policies taken from the graph: step names for cache explanations,
//! `--no-cache-filter`, and the entitlements steps that leave the sandbox need.

use std::path::Path;

use kiln_graph::Graph;

use super::SessionError;
use crate::build::BuildRequest;
use crate::engine::cache::CachePolicy;

/// Step names for explanations (`FILE#[stage i/n]`) and the nodes `--no-cache-filter`
/// stages own, from the node descriptions lowering wrote.
pub fn cache_policy(graph: &Graph, scope: &str, no_cache: bool, filter: &[String]) -> CachePolicy {
    let mut policy = CachePolicy {
        disabled: no_cache,
        ..CachePolicy::default()
    };
    let filtered: Vec<String> = filter
        .iter()
        .flat_map(|f| f.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for (id, node) in graph.nodes() {
        let Some(description) = node.descriptions.first() else {
            continue;
        };
        let Some(bracket) = description
            .strip_prefix('[')
            .and_then(|d| d.split_once(']'))
            .map(|(b, _)| b)
        else {
            continue;
        };
        policy.steps.insert(id, format!("{scope}#[{bracket}]"));
        let stage = bracket
            .rsplit_once(' ')
            .map_or(bracket, |(name, _)| name)
            .to_ascii_lowercase();
        if filtered.contains(&stage) {
            policy.uncached.insert(id);
        }
    }
    policy
}

/// RUN steps that leave the sandbox need the user's permission, as in buildx:
/// `--network=host` needs `--allow network.host`, `--security=insecure` needs
/// `--allow security.insecure`.
pub fn check_entitlements(
    graph: &Graph,
    roots: &[kiln_graph::NodeId],
    allow: &[String],
) -> Result<(), SessionError> {
    let allowed = |name: &str| {
        allow
            .iter()
            .flat_map(|a| a.split(','))
            .any(|a| a.trim() == name)
    };
    for id in graph.required(roots) {
        let Some(node) = graph.node(id) else { continue };
        let kiln_graph::Op::Exec(exec) = &node.op else {
            continue;
        };
        let step = node.descriptions.first().cloned().unwrap_or_default();
        if exec.network == kiln_graph::NetworkMode::Host && !allowed("network.host") {
            return Err(SessionError::Denied(format!(
                "{step}: --network=host needs the network.host entitlement; pass --allow network.host"
            )));
        }
        if exec.security == kiln_graph::SecurityMode::Insecure && !allowed("security.insecure") {
            return Err(SessionError::Denied(format!(
                "{step}: --security=insecure needs the security.insecure entitlement; pass --allow security.insecure"
            )));
        }
    }
    Ok(())
}

/// What names this build's steps across builds: the Dockerfile's absolute path (or the
/// context's, for a Dockerfile from stdin), so unrelated projects never compare.
pub fn step_scope(request: &BuildRequest) -> String {
    let canonical = |p: &Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    match (&request.dockerfile_path, &request.context) {
        (Some(path), _) => canonical(path),
        (None, Some(context)) => format!("{}#stdin", canonical(context)),
        (None, None) => "stdin".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kiln_graph::{ExecOp, NetworkMode, Op, SecurityMode};

    use super::*;

    fn graph_with(network: NetworkMode, security: SecurityMode) -> (Graph, kiln_graph::NodeId) {
        let mut graph = Graph::new();
        let base = graph.add(Op::Scratch, vec![], "").unwrap();
        let exec = ExecOp {
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            network,
            security,
            mounts: vec![],
        };
        let run = graph
            .add(Op::Exec(exec), vec![base], "[stage-0 2/2] RUN true")
            .unwrap();
        (graph, run)
    }

    #[test]
    fn host_network_and_insecure_need_entitlements() {
        let (g, run) = graph_with(NetworkMode::Host, SecurityMode::Sandbox);
        let err = check_entitlements(&g, &[run], &[])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--allow network.host"), "{err}");
        assert!(check_entitlements(&g, &[run], &["network.host".into()]).is_ok());
        let (g, run) = graph_with(NetworkMode::None, SecurityMode::Insecure);
        assert!(check_entitlements(&g, &[run], &["network.host".into()]).is_err());
        assert!(check_entitlements(&g, &[run], &["network.host,security.insecure".into()]).is_ok());
        let (g, run) = graph_with(NetworkMode::Default, SecurityMode::Sandbox);
        assert!(check_entitlements(&g, &[run], &[]).is_ok());
    }

    #[test]
    fn cache_policy_names_steps_and_filters_stages() {
        let (g, run) = graph_with(NetworkMode::Default, SecurityMode::Sandbox);
        let policy = cache_policy(&g, "ctx/Dockerfile", false, &["STAGE-0".into()]);
        assert_eq!(policy.steps[&run], "ctx/Dockerfile#[stage-0 2/2]");
        assert!(policy.uncached.contains(&run));
        assert!(
            !cache_policy(&g, "x", false, &["other".into()])
                .uncached
                .contains(&run)
        );
    }
}
