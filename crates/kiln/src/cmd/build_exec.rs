//! `kiln build` for real: plan, solve, export to every requested output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_exporter::imagestore;
use kiln_exporter::{
    BuiltImage, Compression, ImageName, ImageOptions, LayerOptions, ManifestFormat, build_image,
    export_local, export_rootfs_tar, write_docker_archive, write_oci_archive, write_oci_layout,
};
use kiln_graph::Graph;
use kiln_graph::lower::LoweredStage;
use kiln_solver::build::{BuildRequest, StoreImages, parse_build_context, plan};
use kiln_solver::engine::cache::{CachePolicy, CachedEngine, Miss};
use kiln_solver::engine::export::stage_image;
use kiln_solver::engine::{Engine, EngineConfig, EngineError, Output, parse_secret_flag};
use kiln_solver::{SolveOptions, solve};
use kiln_store::Store;
use kiln_worker::CancelToken;

use super::build::BuildArgs;
use super::outputs::{OutputKind, OutputSpec, parse_output};
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

pub fn open_store(root: Option<&Path>) -> Result<Arc<Store>, Failure> {
    let root = match root {
        Some(root) => root.to_path_buf(),
        None => Store::default_root()?,
    };
    Ok(Arc::new(Store::open(&root)?))
}

/// Everything `kiln build` was asked for, checked before anything runs.
struct Plan {
    request: BuildRequest,
    secrets: HashMap<String, kiln_solver::engine::SecretSource>,
    outputs: Vec<OutputSpec>,
    tags: Vec<String>,
    source_date_epoch: Option<i64>,
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
    if outputs
        .iter()
        .any(|o| o.push || o.kind == OutputKind::Registry)
    {
        return Err(Failure {
            message: "pushing to a registry (--push, type=registry, push=true) is not supported by this version of kiln"
                .into(),
            code: 2,
        });
    }
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
    })
}

/// Flags of `docker buildx build` kiln parses but does not act on yet.
fn unserved_flags(args: &BuildArgs) -> Vec<&'static str> {
    let used = [
        (!args.cache_from.is_empty(), "--cache-from"),
        (!args.cache_to.is_empty(), "--cache-to"),
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
        (args.pull, "--pull (kiln does not pull from registries yet)"),
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
    let session = Session::open(root, plan_input.secrets.clone())?;
    let mut graph = Graph::new();
    let stage = plan(&mut graph, &session.images, &plan_input.request)?;
    check_entitlements(&graph, &[stage.fs], &args.allow)?;
    let progress = Progress::new(mode);
    for (id, node) in graph.nodes() {
        if let Some(description) = node.descriptions.first() {
            progress.describe(id, description);
        }
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
    };
    let outcome = session.solve(&graph, &[stage.fs], &progress, &settings)?;
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
    let request = ExportRequest {
        tags: plan_input.tags.clone(),
        outputs: plan_input.outputs.clone(),
        source_date_epoch: plan_input.source_date_epoch,
        load: args.load,
    };
    let exported = session.export(&graph, &stage, &outcome, &request)?;
    if let Some(path) = &args.iidfile {
        kiln_store::fsutil::write_atomic(path, exported.config_digest.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let text = serde_json::to_vec_pretty(&exported.metadata())?;
        kiln_store::fsutil::write_atomic(path, &text)?;
    }
    if args.quiet {
        println!("{}", exported.config_digest);
    }
    session.auto_gc();
    Ok(())
}

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
) -> Result<(), Failure> {
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
            return Err(Failure {
                message: format!(
                    "{step}: --network=host needs the network.host entitlement; pass --allow network.host"
                ),
                code: 1,
            });
        }
        if exec.security == kiln_graph::SecurityMode::Insecure && !allowed("security.insecure") {
            return Err(Failure {
                message: format!(
                    "{step}: --security=insecure needs the security.insecure entitlement; pass --allow security.insecure"
                ),
                code: 1,
            });
        }
    }
    Ok(())
}

/// What names this build's steps across builds: the Dockerfile's absolute path (or the
/// context's, for a Dockerfile from stdin), so unrelated projects never compare.
fn step_scope(request: &BuildRequest) -> String {
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
    let store = open_store(root)?;
    let images = StoreImages::new(store);
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

/// A store, its images and an engine, ready to solve graphs.
pub struct Session {
    pub store: Arc<Store>,
    pub images: Arc<StoreImages>,
    pub engine: Engine,
    cancel: CancelToken,
}

impl Session {
    pub fn open(
        root: Option<&Path>,
        secrets: HashMap<String, kiln_solver::engine::SecretSource>,
    ) -> Result<Self, Failure> {
        let store = open_store(root)?;
        let runc = kiln_worker::runc::RuncExecutor::new(&store);
        kiln_worker::cleanup_stale(&store, &runc)?;
        let images = Arc::new(StoreImages::new(store.clone()));
        let cancel = CancelToken::new();
        let on_signal = cancel.clone();
        // Only one handler per process can exist; kiln runs one session per process.
        let _ = ctrlc::set_handler(move || on_signal.cancel());
        let engine = Engine::new(
            store.clone(),
            EngineConfig {
                local_contexts: HashMap::new(),
                secrets,
                images: images.clone(),
            },
            cancel.clone(),
        );
        Ok(Session {
            store,
            images,
            engine,
            cancel,
        })
    }

    /// Runs every op `roots` need through the cache; a cancelled build is an error with
    /// exit code 130. Returns the outcome with plain outputs and the misses explained.
    pub fn solve(
        &self,
        graph: &Graph,
        roots: &[kiln_graph::NodeId],
        progress: &Progress,
        settings: &SolveSettings,
    ) -> Result<Solved, Failure> {
        let stop = || self.cancel.is_cancelled();
        let options = SolveOptions {
            max_parallelism: settings
                .max_parallelism
                .unwrap_or_else(|| SolveOptions::default().max_parallelism),
            fail_fast: settings.fail_fast,
            cancelled: Some(&stop),
        };
        let cached = CachedEngine::new(&self.engine, settings.policy.clone());
        // Fail-fast also stops what is already running, as BuildKit does: the first
        // failure cancels the engine, which kills running containers.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let on_event = |event: kiln_solver::Event| {
            if settings.fail_fast && matches!(event, kiln_solver::Event::Failed { .. }) {
                failed.store(true, std::sync::atomic::Ordering::SeqCst);
                self.cancel.cancel();
            }
            progress.event(&event);
        };
        let outcome = solve(graph, roots, &cached, &options, &on_event);
        progress.finish();
        if self.cancel.is_cancelled() && !failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Failure {
                message: "build cancelled".into(),
                code: 130,
            });
        }
        Ok(Solved {
            created_ms: outcome
                .outputs
                .iter()
                .map(|(id, keyed)| (*id, keyed.created_ms))
                .collect(),
            outputs: outcome
                .outputs
                .into_iter()
                .map(|(id, keyed)| (id, keyed.output))
                .collect(),
            failures: outcome.failures,
            misses: cached.misses(),
        })
    }

    /// Writes `stage`'s image to kiln's store and every requested output.
    pub fn export(
        &self,
        graph: &Graph,
        stage: &LoweredStage,
        solved: &Solved,
        request: &ExportRequest,
    ) -> Result<ExportedImage, Failure> {
        // The newest step of the chain dates the image: unchanged when all was cached.
        let newest_ms = graph
            .required(&[stage.fs])
            .iter()
            .filter_map(|id| solved.created_ms.get(id))
            .max()
            .copied()
            .unwrap_or(0);
        let created_secs = if newest_ms > 0 {
            newest_ms / 1000
        } else {
            kiln_store::fsutil::now_ms() / 1000
        };
        let compression = match request
            .outputs
            .iter()
            .find_map(|o| o.compression.as_deref())
        {
            Some("zstd") => Compression::Zstd,
            Some("uncompressed") => Compression::Uncompressed,
            _ => Compression::Gzip,
        };
        let layer_options = LayerOptions {
            compression,
            compression_level: request.outputs.iter().find_map(|o| o.compression_level),
            source_date_epoch: request.source_date_epoch,
        };
        let image = stage_image(
            &self.engine,
            graph,
            stage,
            &solved.outputs,
            created_secs,
            &layer_options,
        )?;
        let built = build_image(
            &image.config,
            &image.layers,
            &ImageOptions {
                format: ManifestFormat::Oci,
                annotations: BTreeMap::new(),
                source_date_epoch: request.source_date_epoch,
            },
        )?;
        let exported = write_outputs(&self.store, &built, request)?;
        // The final snapshot chain of each named image is what GC keeps first.
        if let Some(top) = solved.outputs.get(&stage.fs).and_then(Output::snapshot) {
            for name in &exported.names {
                let stored = kiln_exporter::imagestore::normalize_name(name)
                    .unwrap_or_else(|_| name.clone());
                self.store.record_build_root(&stored, &[top])?;
            }
        }
        Ok(exported)
    }

    /// Collection by `kiln.toml`'s policy after a build; a failure only warns.
    pub fn auto_gc(&self) {
        if let Err(error) = crate::config::auto_gc(&self.store) {
            eprintln!("WARNING: automatic garbage collection: {error}");
        }
    }
}

/// How a graph is solved.
#[derive(Debug, Clone, Default)]
pub struct SolveSettings {
    pub max_parallelism: Option<usize>,
    pub fail_fast: bool,
    pub policy: CachePolicy,
}

/// What solving produced.
pub struct Solved {
    pub outputs: HashMap<kiln_graph::NodeId, Output>,
    pub created_ms: HashMap<kiln_graph::NodeId, i64>,
    pub failures: Vec<(kiln_graph::NodeId, EngineError)>,
    pub misses: Vec<Miss>,
}

/// Where one image goes.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub tags: Vec<String>,
    pub outputs: Vec<OutputSpec>,
    pub source_date_epoch: Option<i64>,
    pub load: bool,
}

/// What was written, for `--iidfile` and `--metadata-file`.
pub struct ExportedImage {
    pub manifest_digest: String,
    pub config_digest: String,
    pub manifest_media_type: String,
    pub manifest_size: u64,
    pub names: Vec<String>,
}

impl ExportedImage {
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "containerimage.digest": self.manifest_digest,
            "containerimage.config.digest": self.config_digest,
            "containerimage.descriptor": {
                "mediaType": self.manifest_media_type,
                "digest": self.manifest_digest,
                "size": self.manifest_size,
            },
            "image.name": self.names.join(","),
        })
    }
}

fn write_outputs(
    store: &Store,
    built: &BuiltImage,
    request: &ExportRequest,
) -> Result<ExportedImage, Failure> {
    let mut names: Vec<String> = request.tags.clone();
    for output in &request.outputs {
        names.extend(output.names.iter().cloned());
    }
    let manifest_digest = imagestore::save(store, built, &names)?;
    let image_names: Vec<ImageName> = names
        .iter()
        .filter_map(|n| ImageName::parse(n).ok())
        .collect();
    for output in &request.outputs {
        let epoch = request.source_date_epoch;
        match &output.kind {
            OutputKind::Image | OutputKind::CacheOnly | OutputKind::Registry => {}
            OutputKind::Oci { dest, tar: true } => {
                to_file_or_stdout(store, dest, |d| write_oci_archive(built, d, &image_names))?
            }
            OutputKind::Oci { dest, tar: false } => write_oci_layout(built, dest, &image_names)?,
            OutputKind::Docker { dest } => to_file_or_stdout(store, dest, |d| {
                write_docker_archive(built, d, &image_names)
            })?,
            OutputKind::Local { dest } => export_local(&built.layers, dest)?,
            OutputKind::Tar { dest } => {
                to_file_or_stdout(store, dest, |d| export_rootfs_tar(&built.layers, d, epoch))?
            }
        }
    }
    if request.load {
        load_into_docker(built, &image_names)?;
    }
    Ok(ExportedImage {
        manifest_digest: manifest_digest.to_string(),
        config_digest: built.config_blob.descriptor.digest().to_string(),
        manifest_media_type: built.manifest_blob.descriptor.media_type().to_string(),
        manifest_size: built.manifest_blob.descriptor.size(),
        names,
    })
}

/// `dest=-` streams the archive to stdout (written to a temp file first, so a failed
/// export never sends half an archive); any other dest is written in place, atomically.
fn to_file_or_stdout(
    store: &Store,
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<(), kiln_exporter::ExportError>,
) -> Result<(), Failure> {
    if dest.as_os_str() != "-" {
        return Ok(write(dest)?);
    }
    let temp = store
        .tmp_dir()
        .join(format!("stdout-{}.tar", kiln_store::fsutil::random_hex(8)));
    let result = write(&temp).map_err(Failure::from).and_then(|()| {
        let mut file = std::fs::File::open(&temp)?;
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut file, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok(())
    });
    let _ = std::fs::remove_file(&temp);
    result
}

/// `--load`: hands a docker archive to a running docker daemon through the docker CLI.
fn load_into_docker(built: &BuiltImage, names: &[ImageName]) -> Result<(), Failure> {
    let socket = Path::new("/var/run/docker.sock");
    if !socket.exists() {
        return Err(Failure {
            message: "--load: no docker daemon is running (/var/run/docker.sock is missing); the image is in kiln's store".into(),
            code: 1,
        });
    }
    let dir = std::env::temp_dir().join(format!("kiln-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let archive = dir.join("image.tar");
    write_docker_archive(built, &archive, names)?;
    let status = std::process::Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(&archive)
        .status();
    let _ = std::fs::remove_dir_all(&dir);
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(Failure {
            message: format!("--load: docker load failed ({s})"),
            code: 1,
        }),
        Err(e) => Err(Failure {
            message: format!("--load: cannot run docker: {e}"),
            code: 1,
        }),
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
        let err = check_entitlements(&g, &[run], &[]).err().unwrap();
        assert!(
            err.message.contains("--allow network.host"),
            "{}",
            err.message
        );
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
