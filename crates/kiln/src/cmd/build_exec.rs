//! `kiln build` for real: plan, solve, export to every requested output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_graph::Graph;
use kiln_solver::build::{BuildRequest, StoreImages, ignore_patterns, parse_build_context, plan};
use kiln_solver::engine::cache::Miss;
use kiln_solver::engine::{SecretSource, parse_secret_flag};
use kiln_solver::remote_cache::{CacheBackend, CacheSpec, ExportReport, parse_cache_spec};
use kiln_solver::session::{
    ExportRequest, ExportedImage, OutputSpec, SINGLE_IMAGE, Session, SessionError, ShortcutInputs,
    SolveSettings, Solved, cache_policy, check_entitlements, fetches_urls, fingerprint_of,
    open_cache_exports, open_cache_imports, parse_output, publish_stored, shortcut, step_scope,
};
use kiln_store::Store;

use super::build::BuildArgs;
use super::open_store;
use crate::progress::{Progress, ProgressMode};

/// A failure with the exit code it deserves.
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            message: error.to_string(),
            code: 1,
        }
    }
}

/// Everything `kiln build` was asked for, checked before anything runs.
struct Plan {
    request: BuildRequest,
    secrets: HashMap<String, SecretSource>,
    outputs: Vec<OutputSpec>,
    tags: Vec<String>,
    source_date_epoch: Option<i64>,
    cache_from: Vec<CacheSpec>,
    cache_to: Vec<CacheSpec>,
}

fn prepare(
    args: &BuildArgs,
    label: &str,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Plan, Failure> {
    let mut outputs = args
        .outputs
        .iter()
        .map(|o| parse_output(o))
        .collect::<Result<Vec<_>, _>>()?;
    if args.push {
        outputs.push(parse_output("type=registry")?);
    }
    let cache_from = parse_cache_specs(&args.cache_from, false)?;
    let cache_to = parse_cache_specs(&args.cache_to, true)?;
    for flag in unserved_flags(args) {
        eprintln!(
            "WARNING: {flag} is accepted but not served by this version of kiln; it has no effect"
        );
    }
    let mut named_contexts = BTreeMap::new();
    for raw in &args.build_contexts {
        let (name, context) = parse_build_context(raw)?;
        named_contexts.insert(name, context);
    }
    let mut secrets = HashMap::new();
    for raw in &args.secrets {
        let (id, source) = parse_secret_flag(raw)?;
        secrets.insert(id, source);
    }
    let mut labels = BTreeMap::new();
    for raw in &args.labels {
        let (key, value) = raw.split_once('=').unwrap_or((raw.as_str(), ""));
        labels.insert(key.to_string(), value.to_string());
    }
    let context = if args.context == "-" {
        None
    } else {
        Some(
            std::fs::canonicalize(&args.context)
                .map_err(|e| format!("cannot use build context {}: {e}", args.context))?,
        )
    };
    let dockerfile_path = match args.file.as_deref() {
        Some("-") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => context.as_ref().map(|c| c.join("Dockerfile")),
    };
    let epoch_text = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok());
    let source_date_epoch = match epoch_text.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| format!("invalid SOURCE_DATE_EPOCH {text:?}: expected seconds"))?,
        ),
        None => None,
    };
    if args.platforms.len() > 1 {
        return Err(Failure {
            message: "multi-platform builds are not supported by this version of kiln".into(),
            code: 2,
        });
    }
    let request = BuildRequest {
        dockerfile_label: label.to_string(),
        dockerfile_text: text.to_string(),
        dockerfile_path,
        context,
        target: args.target.clone(),
        build_args: build_args.clone(),
        named_contexts,
        platform: args.platforms.first().cloned(),
        labels,
    };
    Ok(Plan {
        request,
        secrets,
        outputs,
        tags: args.tags.clone(),
        source_date_epoch,
        cache_from,
        cache_to,
    })
}

/// `--cache-from`/`--cache-to` values; a malformed one, or an export kiln cannot serve, is
/// refused before anything runs.
pub fn parse_cache_specs(values: &[String], export: bool) -> Result<Vec<CacheSpec>, Failure> {
    let usage = |message: String| Failure { message, code: 2 };
    let mut specs = Vec::new();
    for value in values {
        let spec = parse_cache_spec(value, export).map_err(|e| usage(e.to_string()))?;
        specs.push(spec);
    }
    Ok(specs)
}

/// Prints what did not fail the build: cache export failures and cache blobs replaced by
/// re-runs. `Err` when a `--cache-to ...,ignore-error=false` export failed.
pub fn report_cache_warnings(
    session: &Session,
    export: Option<&ExportReport>,
) -> Result<(), Failure> {
    for warning in session.take_warnings() {
        eprintln!("WARNING: {warning}");
    }
    let Some(report) = export else { return Ok(()) };
    for error in &report.errors {
        eprintln!("WARNING: {error}");
    }
    if report.fatal {
        return Err(Failure {
            message: "exporting the build cache failed (ignore-error=false)".into(),
            code: 1,
        });
    }
    Ok(())
}

/// Flags of `docker buildx build` kiln parses but does not act on yet.
fn unserved_flags(args: &BuildArgs) -> Vec<&'static str> {
    let used = [
        (!args.ssh.is_empty(), "--ssh"),
        (
            !args.attest.is_empty() || args.provenance.is_some() || args.sbom.is_some(),
            "--attest/--provenance/--sbom",
        ),
        (!args.annotations.is_empty(), "--annotation"),
        (!args.add_hosts.is_empty(), "--add-host"),
        (args.shm_size.is_some(), "--shm-size"),
        (!args.ulimits.is_empty(), "--ulimit"),
        (args.cgroup_parent.is_some(), "--cgroup-parent"),
        (
            args.network != "default",
            "--network (set it per step with RUN --network)",
        ),
    ];
    used.into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
        .collect()
}

pub fn run_build(
    args: &BuildArgs,
    root: Option<&Path>,
    label: &str,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    let plan_input = prepare(args, label, text, build_args)?;
    let mode = ProgressMode::parse(&args.progress).map_err(|m| Failure {
        message: m,
        code: 2,
    })?;
    let request = ExportRequest {
        tags: plan_input.tags.clone(),
        outputs: plan_input.outputs.clone(),
        source_date_epoch: plan_input.source_date_epoch,
        load: args.load,
        inline_cache: plan_input
            .cache_to
            .iter()
            .any(|spec| spec.backend == CacheBackend::Inline),
    };
    // The short cut would skip the steps a cache export streams.
    let fingerprint = if args.cache_to.is_empty() {
        shortcut_fingerprint(args, &plan_input)
    } else {
        None
    };
    crate::timing::mark("request prepared");
    let store = Arc::new(open_store(root)?);
    crate::timing::mark("store open");
    if let Some(exported) = answer_from_record(&store, fingerprint.as_deref(), &request, mode)? {
        if args.explain {
            print_misses(&[]);
        }
        // Nothing was added to the store, so there is nothing new to collect either.
        return finish(args, &exported);
    }
    let session = open_session_on(store, plan_input.secrets.clone(), args.pull)?;
    crate::timing::mark("session open");
    let exported = build_the_long_way(
        args,
        &plan_input,
        &session,
        mode,
        &request,
        fingerprint.as_deref(),
    )?;
    finish(args, &exported)?;
    auto_gc(&session);
    crate::timing::mark("auto gc");
    Ok(())
}

/// The whole-build short cut: the recorded image of an unchanged request, published.
fn answer_from_record(
    store: &Store,
    fingerprint: Option<&str>,
    request: &ExportRequest,
    mode: ProgressMode,
) -> Result<Option<ExportedImage>, Failure> {
    let Some(fingerprint) = fingerprint else {
        return Ok(None);
    };
    let Some(mut images) = shortcut(store, fingerprint)? else {
        crate::timing::mark("no short cut");
        return Ok(None);
    };
    let Some(built) = images.remove(SINGLE_IMAGE) else {
        return Ok(None);
    };
    crate::timing::mark("short cut found");
    if mode != ProgressMode::Quiet {
        eprintln!("nothing changed since the last build of this request: its image is the answer");
    }
    let exported = publish_stored(store, &built, request)?;
    crate::timing::mark("published");
    Ok(Some(exported))
}

/// `--iidfile`, `--metadata-file` and `-q`'s image ID.
fn finish(args: &BuildArgs, exported: &ExportedImage) -> Result<(), Failure> {
    if let Some(path) = &args.iidfile {
        kiln_store::fsutil::write_atomic(path, exported.config_digest.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let text = serde_json::to_vec_pretty(&exported.metadata())?;
        kiln_store::fsutil::write_atomic(path, &text)?;
    }
    if args.quiet {
        println!("{}", exported.config_digest);
    } else {
        print_pushed("", exported);
    }
    Ok(())
}

/// One line per name pushed, with how its blobs got to the registry.
pub fn print_pushed(prefix: &str, exported: &ExportedImage) {
    let Some((names, report)) = &exported.pushed else {
        return;
    };
    for name in names {
        eprintln!(
            "{prefix}pushed {name}@{} ({} blobs uploaded, {} mounted, {} already there)",
            exported.manifest_digest, report.uploaded, report.mounted, report.existed
        );
    }
}

/// Plans, solves and exports; remembers the result for the whole-build short cut when
/// every input it depended on can be checked again.
fn build_the_long_way(
    args: &BuildArgs,
    plan_input: &Plan,
    session: &Session,
    mode: ProgressMode,
    request: &ExportRequest,
    fingerprint: Option<&str>,
) -> Result<ExportedImage, Failure> {
    let mut graph = Graph::new();
    let stage = plan(&mut graph, &session.images, &plan_input.request)?;
    check_entitlements(&graph, &[stage.fs], &args.allow)?;
    let progress = Progress::new(mode);
    for (id, node) in graph.nodes() {
        if let Some(description) = node.descriptions.first() {
            progress.describe(id, description);
        }
    }
    let (cache_imports, warnings) = open_cache_imports(session, &plan_input.cache_from);
    for warning in warnings {
        eprintln!("WARNING: {warning}");
    }
    let (cache_exports, warnings) = open_cache_exports(
        session,
        &plan_input.cache_to,
        &graph,
        &[&stage],
        plan_input.source_date_epoch,
    )?;
    for warning in warnings {
        eprintln!("WARNING: {warning}");
    }
    let settings = SolveSettings {
        max_parallelism: args.max_parallelism,
        fail_fast: true,
        policy: cache_policy(
            &graph,
            &step_scope(&plan_input.request),
            args.no_cache,
            &args.no_cache_filter,
        ),
        cache_imports,
        cache_exports,
    };
    let outcome = solve_with_progress(session, &graph, &[stage.fs], &progress, &settings)?;
    report_cache_warnings(session, Some(&outcome.cache_export))?;
    if args.explain {
        print_misses(&outcome.misses);
    }
    if let Some((node, error)) = outcome.failures.first() {
        let step = graph
            .node(*node)
            .and_then(|n| n.descriptions.first().cloned())
            .unwrap_or_default();
        return Err(Failure {
            message: format!("{step}: {error}"),
            code: 1,
        });
    }
    let exported = session.export(&graph, &stage, &outcome, request)?;
    report_cache_warnings(session, None)?;
    let fetches = fetches_urls(&graph, &[stage.fs]);
    // A cache-only build made no image to answer with.
    let made_image = !exported.manifest_digest.is_empty();
    if let (Some(fingerprint), false, true) = (fingerprint, fetches, made_image) {
        let inputs = ShortcutInputs {
            images: session.images.resolutions(),
            reads: outcome.reads.clone(),
            ..ShortcutInputs::default()
        };
        session.remember_shortcut(fingerprint, &exported.manifest_digest, &inputs)?;
    }
    Ok(exported)
}

/// Everything a build's result depends on besides image digests and context contents
/// (which the short cut checks itself); `None` when the short cut must not be used.
fn shortcut_fingerprint(args: &BuildArgs, plan: &Plan) -> Option<String> {
    let request = &plan.request;
    let uses_layout = args
        .build_contexts
        .iter()
        .any(|c| c.contains("oci-layout://"));
    // `--pull` asks the registry again and a push must reach the registry: both take the
    // long way (where every unchanged step is still a cache hit).
    let pushes = plan.outputs.iter().any(|o| o.push);
    if args.no_cache || !args.no_cache_filter.is_empty() || uses_layout || args.pull || pushes {
        return None;
    }
    let ignore = request.context.as_ref().and_then(|dir| {
        let dockerfile = request
            .dockerfile_path
            .clone()
            .unwrap_or_else(|| dir.join("Dockerfile"));
        ignore_patterns(dir, &dockerfile).ok().flatten()
    });
    let document = serde_json::json!({
        "format": 1,
        "kiln": env!("CARGO_PKG_VERSION"),
        "dockerfile": request.dockerfile_text,
        "dockerfile_path": request.dockerfile_path,
        "context": request.context,
        "ignore": ignore,
        "target": request.target,
        "build_args": request.build_args,
        "build_contexts": args.build_contexts,
        "labels": request.labels,
        "platform": request.platform,
        "allow": args.allow,
        "compression": plan.outputs.iter().map(|o| (o.compression.clone(), o.compression_level)).collect::<Vec<_>>(),
        "source_date_epoch": plan.source_date_epoch,
    });
    fingerprint_of(&document)
}

/// A build session on an open store; Ctrl-C and SIGTERM cancel it.
pub fn open_session_on(
    store: Arc<Store>,
    secrets: HashMap<String, SecretSource>,
    pull: bool,
) -> Result<Session, Failure> {
    let images = registry_images(store.clone(), pull);
    let session = Session::open_with_images(store, secrets, images)?;
    let on_signal = session.cancel_token().clone();
    // One handler per process; kiln runs one session per process.
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    Ok(session)
}

/// The store's images, with registries reached as docker's configuration says (credentials
/// from `~/.docker/config.json`, plain HTTP for `KILN_INSECURE_REGISTRIES` and loopback).
pub fn registry_images(store: Arc<Store>, pull: bool) -> StoreImages {
    // Read lazily: a broken docker config.json only fails what needs a registry.
    let options = super::login::client_options();
    StoreImages::new(store).with_registry(options, pull)
}

/// Solves with the progress display; a cancelled build exits 130 like an interrupted
/// process.
pub fn solve_with_progress(
    session: &Session,
    graph: &Graph,
    roots: &[kiln_graph::NodeId],
    progress: &Progress,
    settings: &SolveSettings,
) -> Result<Solved, Failure> {
    let result = session.solve(graph, roots, &|event| progress.event(&event), settings);
    progress.finish();
    match result {
        Err(SessionError::Cancelled) => Err(Failure {
            message: "build cancelled".into(),
            code: 130,
        }),
        other => Ok(other?),
    }
}

/// Collection by `kiln.toml`'s policy after a build; a failure only warns.
pub fn auto_gc(session: &Session) {
    if let Err(error) = crate::config::auto_gc(&session.store) {
        eprintln!("WARNING: automatic garbage collection: {error}");
    }
}

/// `--explain`: every step that ran, and why.
pub fn print_misses(misses: &[Miss]) {
    if misses.is_empty() {
        eprintln!("explain: every step was answered from the cache");
    }
    for miss in misses {
        eprintln!("explain: {} ran: {}", miss.step, miss.reason);
    }
}

/// `--call=plan`: the graph this build would run, as JSON (ops, digests, inputs, the
/// steps they come from), the image config lowering produced, and the root node.
pub fn print_plan(
    args: &BuildArgs,
    root: Option<&Path>,
    label: &str,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    let plan_input = prepare(args, label, text, build_args)?;
    let store = Arc::new(open_store(root)?);
    let images = registry_images(store, args.pull);
    let mut graph = Graph::new();
    let stage = plan(&mut graph, &images, &plan_input.request)?;
    let document = serde_json::json!({
        "root": stage.fs,
        "nodes": graph.nodes().map(|(id, node)| serde_json::json!({
            "id": id,
            "digest": node.digest,
            "op": node.op,
            "inputs": node.inputs,
            "steps": node.descriptions,
        })).collect::<Vec<_>>(),
        "image": stage.image,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
