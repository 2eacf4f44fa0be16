//! `kiln bake` building: every requested target (and the targets they link through
//! `target:` contexts) lowered into ONE graph, solved once, then exported per target.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use kiln_bake::build_opt::build_opt;
use kiln_bake::{Resolved, Target};
use kiln_graph::Graph;
use kiln_graph::lower::{LoweredStage, NamedContext};
use kiln_solver::build::{BuildRequest, parse_build_context, plan};
use kiln_solver::engine::SecretSource;

use kiln_solver::remote_cache::{CacheImport, ExportTarget};
use kiln_solver::session::{
    ExportRequest, Session, SolveSettings, cache_policy, check_entitlements, open_cache_exports,
    open_cache_imports, parse_output,
};

use super::bake_shortcut;
use super::build_call::CallRequest;
use super::build_exec::{
    Failure, auto_gc, open_session_on, parse_cache_specs, report_cache_warnings,
    solve_with_progress,
};
use super::open_store;
use crate::progress::{Progress, ProgressMode};
use crate::render::Format;

/// How the build behaves, from `kiln bake`'s flags.
pub struct BakeRun<'a> {
    pub root: Option<&'a Path>,
    pub cwd: &'a Path,
    pub requested: &'a [String],
    pub progress: &'a str,
    pub max_parallelism: Option<usize>,
    pub keep_going: bool,
    pub atomic: bool,
    pub metadata_file: Option<&'a Path>,
    pub no_cache: bool,
    pub allow: &'a [String],
}

/// The targets `names` stand for: groups expanded (nested), in order, without repeats.
pub fn expand_groups(resolved: &Resolved, names: &[String]) -> Vec<String> {
    fn walk(resolved: &Resolved, name: &str, seen: &mut HashSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        match resolved.groups.get(name) {
            Some(group) if !resolved.targets.contains_key(name) || !group.targets.is_empty() => {
                for member in &group.targets {
                    // `target "default" {}` alone makes a group `default` holding itself.
                    if member == name {
                        if !out.contains(member) {
                            out.push(member.clone());
                        }
                        continue;
                    }
                    walk(resolved, member, seen, out);
                }
            }
            _ => out.push(name.to_string()),
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in names {
        walk(resolved, name, &mut seen, &mut out);
    }
    out.retain(|name| resolved.targets.contains_key(name));
    out
}

pub fn run_bake(resolved: &Resolved, run: &BakeRun<'_>) -> Result<i32, Failure> {
    let mode = ProgressMode::parse(run.progress).map_err(|m| Failure {
        message: m,
        code: 2,
    })?;
    let default = ["default".to_string()];
    let requested = if run.requested.is_empty() {
        &default[..]
    } else {
        run.requested
    };
    let wanted = expand_groups(resolved, requested);
    if wanted.is_empty() {
        return Err(Failure {
            message: format!("no targets to build for {:?}", run.requested),
            code: 1,
        });
    }
    if wanted.iter().any(|name| call_of(resolved, name).is_some()) {
        return Ok(run_calls(resolved, &wanted, run.cwd));
    }
    let mut secrets = HashMap::new();
    for name in &wanted {
        if let Some(target) = resolved.targets.get(name) {
            for entry in target.secret.iter().flatten() {
                let (id, source) = secret_source(entry)?;
                secrets.insert(id, source);
            }
        }
    }
    // `--pull` reaches the targets as `*.pull=true`.
    let pull = wanted
        .iter()
        .filter_map(|name| resolved.targets.get(name))
        .any(|target| target.pull == Some(true));
    let store = Arc::new(open_store(run.root)?);
    let fingerprint = bake_shortcut::fingerprint(resolved, &wanted, run);
    crate::timing::mark("fingerprint taken");
    let requests = |name: &str| {
        let target = resolved
            .targets
            .get(name)
            .ok_or_else(|| Failure::from(format!("target {name} vanished")))?;
        export_request(target, name)
    };
    if let Some(metadata) = bake_shortcut::answer(
        &store,
        fingerprint.as_deref(),
        &wanted,
        &requests,
        mode == ProgressMode::Quiet,
    )? {
        write_metadata(run.metadata_file, metadata)?;
        return Ok(0);
    }
    let session = open_session_on(store, secrets, pull)?;
    let mut planner = Planner {
        resolved,
        cwd: run.cwd,
        session: &session,
        graph: Graph::new(),
        done: HashMap::new(),
        active: Vec::new(),
    };
    let mut stages = Vec::new();
    for name in &wanted {
        stages.push((name.clone(), planner.target(name)?));
    }
    let graph = planner.graph;
    for (name, stage) in &stages {
        let mut allow = run.allow.to_vec();
        if let Some(target) = resolved.targets.get(name) {
            allow.extend(target.entitlements.iter().flatten().cloned());
        }
        check_entitlements(&graph, &[stage.fs], &allow).map_err(|e| format!("[{name}] {e}"))?;
    }

    let progress = Progress::new(mode);
    let mut described = HashSet::new();
    for (name, stage) in &stages {
        for id in graph.required(&[stage.fs]) {
            if described.insert(id)
                && let Some(description) = graph.node(id).and_then(|n| n.descriptions.first())
            {
                progress.describe(id, &format!("[{name}] {description}"));
            }
        }
    }
    let roots: Vec<_> = stages.iter().map(|(_, s)| s.fs).collect();
    let mut policy = kiln_solver::engine::cache::CachePolicy {
        disabled: run.no_cache,
        ..Default::default()
    };
    for (name, stage) in &stages {
        let scoped = cache_policy(&graph, &format!("{}#{name}", run.cwd.display()), false, &[]);
        for id in graph.required(&[stage.fs]) {
            if let Some(step) = scoped.steps.get(&id) {
                policy.steps.entry(id).or_insert_with(|| step.clone());
            }
        }
    }
    let (cache_imports, cache_exports) = target_caches(&session, resolved, &stages, &graph)?;
    let settings = SolveSettings {
        max_parallelism: run.max_parallelism,
        fail_fast: !run.keep_going,
        policy,
        cache_imports,
        cache_exports,
    };
    let outcome = solve_with_progress(&session, &graph, &roots, &progress, &settings)?;
    report_cache_warnings(&session, Some(&outcome.cache_export))?;

    let succeeded: Vec<&(String, LoweredStage)> = stages
        .iter()
        .filter(|(_, s)| outcome.outputs.contains_key(&s.fs))
        .collect();
    let mut failures: Vec<String> = outcome
        .failures
        .iter()
        .map(|(node, error)| {
            let step = graph
                .node(*node)
                .and_then(|n| n.descriptions.first().cloned())
                .unwrap_or_default();
            // Name every requested target the failed step belongs to.
            let owners: Vec<&str> = stages
                .iter()
                .filter(|(_, stage)| graph.required(&[stage.fs]).contains(node))
                .map(|(name, _)| name.as_str())
                .collect();
            format!("target {}: {step}: {error}", owners.join(", "))
        })
        .collect();
    let all_ok = succeeded.len() == stages.len();
    let mut metadata = serde_json::Map::new();
    let mut made = BTreeMap::new();
    if all_ok || !run.atomic {
        for (name, stage) in succeeded {
            let request = requests(name)?;
            match session.export(&graph, stage, &outcome, &request) {
                Ok(exported) => {
                    if mode != ProgressMode::Quiet {
                        super::build_exec::print_pushed(&format!("[{name}] "), &exported);
                    }
                    made.insert(name.clone(), exported.manifest_digest.clone());
                    metadata.insert(name.clone(), exported.metadata());
                }
                Err(error) => failures.push(format!("[{name}] export: {error}")),
            }
        }
    } else {
        failures.push("--atomic: nothing was published because a target failed".to_string());
    }
    report_cache_warnings(&session, None)?;
    if failures.is_empty() && made.len() == stages.len() {
        let images = session.images.resolutions();
        bake_shortcut::remember(
            &session.store,
            fingerprint.as_deref(),
            &graph,
            &roots,
            &outcome,
            images,
            made,
        )?;
    }
    write_metadata(run.metadata_file, metadata)?;
    for failure in &failures {
        eprintln!("ERROR: {failure}");
    }
    auto_gc(&session);
    Ok(if failures.is_empty() && all_ok { 0 } else { 1 })
}

fn write_metadata(
    path: Option<&Path>,
    metadata: serde_json::Map<String, serde_json::Value>,
) -> Result<(), Failure> {
    if let Some(path) = path {
        let text = serde_json::to_vec_pretty(&serde_json::Value::Object(metadata))?;
        kiln_store::fsutil::write_atomic(path, &text)?;
    }
    Ok(())
}

/// A target's `call` (from `--call`, `--check` or the bake file) when it is not a build.
fn call_of<'r>(resolved: &'r Resolved, name: &str) -> Option<&'r str> {
    let call = resolved.targets.get(name)?.call.as_deref()?;
    (call != "build").then_some(call)
}

/// `--call=check|outline|targets` over every target, like buildx: nothing is built; each
/// target's answer is printed under its name. Non-zero when any check failed.
fn run_calls(resolved: &Resolved, wanted: &[String], cwd: &Path) -> i32 {
    let mut status = 0;
    for name in wanted {
        let Some(target) = resolved.targets.get(name) else {
            continue;
        };
        let call = call_of(resolved, name).unwrap_or("check");
        let opt = build_opt(target, cwd);
        let (label, text) = match &target.dockerfile_inline {
            Some(inline) => ("Dockerfile".to_string(), inline.clone()),
            None => match std::fs::read_to_string(cwd.join(&opt.dockerfile_path)) {
                Ok(text) => (opt.dockerfile_path.clone(), text),
                Err(error) => {
                    eprintln!(
                        "ERROR: [{name}] cannot read Dockerfile {}: {error}",
                        opt.dockerfile_path
                    );
                    status = 1;
                    continue;
                }
            },
        };
        let build_args: BTreeMap<String, String> = target
            .args
            .iter()
            .flatten()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        let (method, format) = match call.split_once(',') {
            Some((m, rest)) => (
                m,
                if rest.contains("format=json") {
                    Format::Json
                } else {
                    Format::Text
                },
            ),
            None => (call, Format::Text),
        };
        let request = CallRequest {
            label: &label,
            text: &text,
            target: target.target.as_deref(),
            build_args: &build_args,
            format,
        };
        println!("target {name}:");
        let code = match method {
            "outline" => super::build_call::outline(&request),
            "targets" => super::build_call::targets(&request),
            "check" => super::build_call::check(&request),
            other => {
                eprintln!(
                    "ERROR: [{name}] invalid call {other:?}: expected build, check, outline or targets"
                );
                2
            }
        };
        status = status.max(code);
    }
    status
}

/// Plans targets into one graph; `target:` links are planned first and passed as stages.
struct Planner<'a> {
    resolved: &'a Resolved,
    cwd: &'a Path,
    session: &'a Session,
    graph: Graph,
    done: HashMap<String, LoweredStage>,
    active: Vec<String>,
}

impl Planner<'_> {
    fn target(&mut self, name: &str) -> Result<LoweredStage, Failure> {
        if let Some(found) = self.done.get(name) {
            return Ok(found.clone());
        }
        if self.active.iter().any(|n| n == name) {
            return Err(format!(
                "target {name} links to itself through target: contexts ({})",
                self.active.join(" -> ")
            )
            .into());
        }
        let target = self
            .resolved
            .targets
            .get(name)
            .ok_or_else(|| format!("target:{name} names no target of the bake files"))?;
        self.active.push(name.to_string());
        let request = self.request(name, target)?;
        self.active.pop();
        let stage = plan(&mut self.graph, &self.session.images, &request)
            .map_err(|e| format!("[{name}] {e}"))?;
        self.done.insert(name.to_string(), stage.clone());
        Ok(stage)
    }

    fn request(&mut self, name: &str, target: &Target) -> Result<BuildRequest, Failure> {
        let opt = build_opt(target, self.cwd);
        if opt.context_path.contains("://") {
            return Err(format!(
                "[{name}] remote contexts ({}) are not supported by this version of kiln",
                opt.context_path
            )
            .into());
        }
        let context = self.cwd.join(&opt.context_path);
        let context = std::fs::canonicalize(&context)
            .map_err(|e| format!("[{name}] context {}: {e}", context.display()))?;
        let (label, text, dockerfile_path) = match &target.dockerfile_inline {
            Some(inline) => ("Dockerfile".to_string(), inline.clone(), None),
            None => {
                let path = self.cwd.join(&opt.dockerfile_path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!("[{name}] cannot read Dockerfile {}: {e}", path.display())
                })?;
                (opt.dockerfile_path.clone(), text, Some(path))
            }
        };
        let mut named_contexts = BTreeMap::new();
        for (key, value) in &opt.named_contexts_path {
            let context = match value.strip_prefix("target:") {
                Some(linked) => NamedContext::Stage(Box::new(self.target(linked)?)),
                None => {
                    let value = if value.contains("://") {
                        value.clone()
                    } else {
                        self.cwd.join(value).display().to_string()
                    };
                    parse_build_context(&format!("{key}={value}"))
                        .map_err(|e| format!("[{name}] {e}"))?
                        .1
                }
            };
            named_contexts.insert(key.clone(), context);
        }
        let build_args = target
            .args
            .iter()
            .flatten()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        let labels = target
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        if target.platforms.as_ref().is_some_and(|p| p.len() > 1) {
            return Err(format!(
                "[{name}] multi-platform targets are not supported by this version of kiln"
            )
            .into());
        }
        Ok(BuildRequest {
            dockerfile_label: label,
            dockerfile_text: text,
            dockerfile_path,
            context: Some(context),
            target: target.target.clone(),
            build_args,
            named_contexts,
            platform: target.platforms.as_ref().and_then(|p| p.first().cloned()),
            labels,
        })
    }
}

fn export_request(target: &Target, name: &str) -> Result<ExportRequest, Failure> {
    let mut outputs = Vec::new();
    for entry in target.output.iter().flatten() {
        let text = entry
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        outputs.push(parse_output(&text).map_err(|e| format!("[{name}] {e}"))?);
    }
    let epoch = target
        .args
        .iter()
        .flatten()
        .find(|(k, _)| k.as_str() == "SOURCE_DATE_EPOCH")
        .and_then(|(_, v)| v.clone())
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|v| !v.is_empty());
    let source_date_epoch = match epoch {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| format!("[{name}] invalid SOURCE_DATE_EPOCH {text:?}"))?,
        ),
        None => None,
    };
    Ok(ExportRequest {
        tags: target.tags.clone().unwrap_or_default(),
        outputs,
        source_date_epoch,
        load: false,
        inline_cache: target
            .cache_to
            .iter()
            .flatten()
            .any(|entry| entry.get("type").map(String::as_str) == Some("inline")),
    })
}

/// The targets' `cache-from` sources (one graph is solved once, so every source serves
/// every target) and their `cache-to` destinations, each with its own target's steps.
#[expect(
    clippy::type_complexity,
    reason = "a pair of lists, named by the callee's types"
)]
fn target_caches(
    session: &Session,
    resolved: &Resolved,
    stages: &[(String, LoweredStage)],
    graph: &Graph,
) -> Result<(Vec<Arc<CacheImport>>, Vec<Arc<ExportTarget>>), Failure> {
    let text = |entry: &BTreeMap<String, String>| {
        entry
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut from = Vec::new();
    let mut exports = Vec::new();
    for (name, stage) in stages {
        let Some(target) = resolved.targets.get(name) else {
            continue;
        };
        let sources: Vec<String> = target.cache_from.iter().flatten().map(text).collect();
        for spec in parse_cache_specs(&sources, false).map_err(|e| in_target(name, e))? {
            if !from.contains(&spec) {
                from.push(spec);
            }
        }
        let destinations: Vec<String> = target.cache_to.iter().flatten().map(text).collect();
        let specs = parse_cache_specs(&destinations, true).map_err(|e| in_target(name, e))?;
        let epoch = export_request(target, name)?.source_date_epoch;
        let (opened, warnings) = open_cache_exports(session, &specs, graph, &[stage], epoch)
            .map_err(|e| format!("[{name}] {e}"))?;
        for warning in warnings {
            eprintln!("WARNING: [{name}] {warning}");
        }
        exports.extend(opened);
    }
    let (imports, warnings) = open_cache_imports(session, &from);
    for warning in warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok((imports, exports))
}

fn in_target(name: &str, failure: Failure) -> Failure {
    Failure {
        message: format!("[{name}] {}", failure.message),
        code: failure.code,
    }
}

fn secret_source(entry: &BTreeMap<String, String>) -> Result<(String, SecretSource), Failure> {
    let text = entry
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(kiln_solver::engine::parse_secret_flag(&text)?)
}
