//! A build session: one store, its images and an engine, solving graphs through the
//! cache and exporting stage results to images and outputs. `kiln build` runs one request
//! through it, `kiln bake` many targets in one graph.

mod export;
mod outputs;
mod policy;
mod push;
mod remote;
mod shortcut;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kiln_exporter::{Compression, ImageOptions, LayerOptions, ManifestFormat, build_image};
use kiln_graph::Graph;
use kiln_graph::lower::LoweredStage;
use kiln_store::Store;
use kiln_worker::CancelToken;

use crate::build::StoreImages;
use crate::engine::cache::{CachePolicy, CachedEngine, Miss};
use crate::engine::export::stage_image;
use crate::engine::{Engine, EngineConfig, EngineError, LayerSettings, Output, SecretSource};
use crate::remote_cache::{
    CacheImport, ExportReport, ExportTarget, InlineRecord, InlineRecords, export_records,
};
use crate::{Event, SolveOptions, solve};

pub use export::{ExportRequest, ExportedImage};
pub use outputs::{OutputKind, OutputSpec, parse_output};
pub use policy::{cache_policy, check_entitlements, step_scope};
pub use push::{PushReport, push_image};
pub use remote::{open_cache_exports, open_cache_imports};
pub use shortcut::{
    SINGLE_IMAGE, ShortcutInputs, fetches_urls, fingerprint_of, publish as publish_stored,
    remember_shortcut, shortcut,
};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("build cancelled")]
    Cancelled,
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Store(#[from] kiln_store::Error),
    #[error("{0}")]
    Worker(#[from] kiln_worker::Error),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Export(#[from] kiln_exporter::ExportError),
    #[error("{0}")]
    ImageStore(#[from] kiln_exporter::imagestore::ImageStoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Registry(String),
}

/// A store, its images and an engine, ready to solve graphs.
pub struct Session {
    pub store: Arc<Store>,
    pub images: Arc<StoreImages>,
    pub engine: Engine,
    cancel: CancelToken,
}

impl Session {
    /// Opens the store for a build, with images resolved by `images` (which may reach
    /// registries): containers and mounts a killed kiln left behind are cleaned up first.
    pub fn open_with_images(
        store: Arc<Store>,
        secrets: HashMap<String, SecretSource>,
        images: StoreImages,
    ) -> Result<Self, SessionError> {
        let runc = kiln_worker::runc::RuncExecutor::new(&store);
        kiln_worker::cleanup_stale(&store, &runc)?;
        let images = Arc::new(images);
        let cancel = CancelToken::new();
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

    /// Cancel this to stop the build (Ctrl-C): running containers are killed, nothing
    /// new starts.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Runs every op `roots` need through the cache; a cancelled build is an error with
    /// exit code 130. Returns the outcome with plain outputs and the misses explained.
    pub fn solve(
        &self,
        graph: &Graph,
        roots: &[kiln_graph::NodeId],
        events: &(dyn Fn(Event) + Sync),
        settings: &SolveSettings,
    ) -> Result<Solved, SessionError> {
        let stop = || self.cancel.is_cancelled();
        let options = SolveOptions {
            max_parallelism: settings
                .max_parallelism
                .unwrap_or_else(|| SolveOptions::default().max_parallelism),
            fail_fast: settings.fail_fast,
            cancelled: Some(&stop),
        };
        let (sender, receiver) = if settings.cache_exports.is_empty() {
            (None, None)
        } else {
            let (sender, receiver) = std::sync::mpsc::channel();
            (Some(sender), Some(receiver))
        };
        let cached = CachedEngine::new(&self.engine, settings.policy.clone())
            .with_remote(settings.cache_imports.clone(), sender);
        // Fail-fast also stops what is already running, as BuildKit does: the first
        // failure cancels the engine, which kills running containers.
        let failed = AtomicBool::new(false);
        let on_event = |event: Event| {
            if settings.fail_fast && matches!(event, Event::Failed { .. }) {
                failed.store(true, Ordering::SeqCst);
                self.cancel.cancel();
            }
            events(event);
        };
        // Records stream to `--cache-to` while the build runs; what finished is written
        // even when the build fails.
        let (outcome, report) = std::thread::scope(|scope| {
            let worker = receiver.map(|receiver| {
                scope.spawn(|| export_records(&self.engine, &settings.cache_exports, receiver))
            });
            let outcome = solve(graph, roots, &cached, &options, &on_event);
            cached.close_exports();
            let report = worker
                .map(|w| {
                    w.join().unwrap_or_else(|_| ExportReport {
                        errors: vec!["cache export stopped unexpectedly".into()],
                        ..ExportReport::default()
                    })
                })
                .unwrap_or_default();
            (outcome, report)
        });
        if self.cancel.is_cancelled() && !failed.load(Ordering::SeqCst) {
            return Err(SessionError::Cancelled);
        }
        Ok(Solved {
            cache_export: report,
            reads: cached.reads(),
            created_ms: outcome
                .outputs
                .iter()
                .map(|(id, keyed)| (*id, keyed.created_ms))
                .collect(),
            keys: outcome
                .outputs
                .iter()
                .map(|(id, keyed)| (*id, keyed.key.clone()))
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

    /// Warnings so far that did not fail the build (cache blobs that could not be used and
    /// the steps that ran again instead), emptied.
    pub fn take_warnings(&self) -> Vec<String> {
        self.engine.take_warnings()
    }

    /// Writes `stage`'s image to kiln's store and every requested output.
    pub fn export(
        &self,
        graph: &Graph,
        stage: &LoweredStage,
        solved: &Solved,
        request: &ExportRequest,
    ) -> Result<ExportedImage, SessionError> {
        check_outputs(request)?;
        if only_cache(request) {
            // `type=cacheonly`: the steps are in the cache; no image is made, so no base
            // layer is fetched for one.
            return Ok(ExportedImage::none());
        }
        // Garbage collection must not remove a layer blob this export found and reuses
        // before the image that references it is tagged.
        let _gc = self.store.lock("gc")?;
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
        let compression = request
            .outputs
            .iter()
            .find_map(|o| o.compression.as_deref())
            .and_then(Compression::parse)
            .unwrap_or(Compression::Gzip);
        let layer_options = LayerOptions {
            compression,
            compression_level: request.outputs.iter().find_map(|o| o.compression_level),
            source_date_epoch: request.source_date_epoch,
        };
        let mut image = stage_image(
            &self.engine,
            graph,
            stage,
            &solved.outputs,
            created_secs,
            &layer_options,
        )?;
        if request.inline_cache {
            let records = inline_records(graph, solved, &image.entry_layers, &layer_options);
            image.config.inline_cache = Some(serde_json::to_value(records).unwrap_or_default());
        }
        let built = build_image(
            &image.config,
            &image.layers,
            &ImageOptions {
                format: ManifestFormat::Oci,
                annotations: BTreeMap::new(),
                source_date_epoch: request.source_date_epoch,
            },
        )?;
        let mut exported = export::write_outputs(&self.store, &built, request)?;
        exported.pushed = self.push_outputs(&built, request)?;
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
}

/// Whether the build keeps nothing but the cache (`--output type=cacheonly`, no tag).
fn only_cache(request: &ExportRequest) -> bool {
    !request.outputs.is_empty()
        && request.tags.is_empty()
        && !request.load
        && request
            .outputs
            .iter()
            .all(|o| o.kind == OutputKind::CacheOnly)
}

/// The cache records of an image's own steps, to carry in its config.
fn inline_records(
    graph: &Graph,
    solved: &Solved,
    entry_layers: &[(kiln_graph::NodeId, Option<usize>)],
    options: &LayerOptions,
) -> InlineRecords {
    let records = entry_layers
        .iter()
        .filter_map(|(node, layer)| {
            let key = solved.keys.get(node)?;
            let parent = graph
                .node(*node)
                .and_then(|n| n.inputs.first())
                .and_then(|input| solved.keys.get(input))
                .cloned();
            Some(InlineRecord {
                key: key.clone(),
                parent,
                created_ms: solved.created_ms.get(node).copied().unwrap_or(0),
                layer: *layer,
            })
        })
        .collect();
    InlineRecords {
        settings: Some(LayerSettings::of(options)),
        records,
    }
}

/// Output combinations that cannot be written, refused before any work.
fn check_outputs(request: &ExportRequest) -> Result<(), SessionError> {
    let zstd = request
        .outputs
        .iter()
        .any(|o| o.compression.as_deref() == Some("zstd"));
    if zstd
        && request
            .outputs
            .iter()
            .any(|o| matches!(o.kind, OutputKind::Docker { .. }))
    {
        return Err(SessionError::Unsupported(
            "type=docker cannot carry zstd layers (docker's image format has no zstd layer type); \
             use compression=gzip or type=oci"
                .into(),
        ));
    }
    Ok(())
}

/// How a graph is solved.
#[derive(Clone, Default)]
pub struct SolveSettings {
    pub max_parallelism: Option<usize>,
    pub fail_fast: bool,
    pub policy: CachePolicy,
    /// `--cache-from` sources, in order.
    pub cache_imports: Vec<Arc<CacheImport>>,
    /// `--cache-to` destinations.
    pub cache_exports: Vec<Arc<ExportTarget>>,
}

/// What solving produced.
pub struct Solved {
    /// Every context read the build's keys were computed from.
    pub reads: Vec<crate::engine::cache::ContextRead>,
    pub outputs: HashMap<kiln_graph::NodeId, Output>,
    pub created_ms: HashMap<kiln_graph::NodeId, i64>,
    /// Each step's cache key.
    pub keys: HashMap<kiln_graph::NodeId, String>,
    pub failures: Vec<(kiln_graph::NodeId, EngineError)>,
    pub misses: Vec<Miss>,
    /// What `--cache-to` wrote, and its failures.
    pub cache_export: ExportReport,
}
