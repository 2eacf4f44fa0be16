//! The executor that makes graph ops real: snapshots for filesystems, runc for RUN, file
//! actions for COPY/ADD/WORKDIR, merges for `--link`, and image layers unpacked once and
//! shared by every build that uses them — only when an op needs to see the files: images
//! and remote cache hits stay lazy stacks of layer blobs until then.

pub mod cache;
mod exec;
pub mod export;
mod files;
mod http;
mod images;
pub mod lazy;
mod secrets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kiln_graph::{Node, NodeId, Op};
use kiln_store::Store;
use kiln_worker::runc::RuncExecutor;
use kiln_worker::{CancelToken, Snapshotter};

use crate::Executor;

pub use images::{ImageLayer, ImageLayers, chain_id};
pub use lazy::{BlobLocation, BlobSource, ImportedRecord, LayerSettings, LazyFs, LazyLayer, Rerun};
pub use secrets::{SecretSource, parse_secret_flag};

/// What an op produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A committed snapshot; `None` is the empty filesystem.
    Fs(Option<String>),
    /// A host directory read in place (a local context), with its ignore patterns.
    Dir {
        path: PathBuf,
        excludes: Vec<String>,
    },
    /// A filesystem not unpacked yet (an image, or steps a remote cache answered).
    Layers(Arc<LazyFs>),
}

impl Output {
    /// The snapshot of an unpacked filesystem; `None` for the empty filesystem, a
    /// directory, or a lazy filesystem (see [`Engine::materialize`]).
    pub fn snapshot(&self) -> Option<&str> {
        match self {
            Output::Fs(id) => id.as_deref(),
            Output::Dir { .. } | Output::Layers(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "process \"{command}\" did not complete successfully: exit code: {exit_code}{}",
        tail_text(.tail)
    )]
    RunFailed {
        command: String,
        exit_code: i32,
        tail: Vec<String>,
    },
    #[error("{0}")]
    Worker(#[from] kiln_worker::Error),
    #[error("{0}")]
    Store(#[from] kiln_store::Error),
    #[error("{0}")]
    FileOp(#[from] kiln_worker::fileop::FileOpError),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Input(String),
    /// A layer blob that could not be fetched, or whose content did not match its digests.
    #[error("layer {digest}: {message}")]
    Blob { digest: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut text = String::from("\nlast output:");
    for line in tail {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}

/// Everything ops need from outside the graph.
pub struct EngineConfig {
    /// Local contexts by source name, when the name is not already the directory's path.
    pub local_contexts: HashMap<String, PathBuf>,
    pub secrets: HashMap<String, SecretSource>,
    pub images: Arc<dyn ImageLayers>,
}

pub struct Engine {
    store: Arc<Store>,
    snapshotter: Snapshotter,
    runc: RuncExecutor,
    cancel: CancelToken,
    config: EngineConfig,
    warnings: Mutex<Vec<String>>,
}

impl Engine {
    pub fn new(store: Arc<Store>, config: EngineConfig, cancel: CancelToken) -> Self {
        let runc = RuncExecutor::new(&store);
        let snapshotter = Snapshotter::new(store.clone());
        Self {
            store,
            snapshotter,
            runc,
            cancel,
            config,
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Something the user should know that did not fail the build (a cache blob that had
    /// to be replaced by a re-run, a cache export that failed).
    pub fn warn(&self, message: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    /// The warnings so far, emptied.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `output` unpacked when it is lazy: the snapshot an op can mount.
    pub fn materialize(&self, output: &Output, label: &str) -> Result<Output, EngineError> {
        lazy::materialize(self, output, label)
    }

    /// Runs `node` without the cache and without a log (a re-run standing in for a cache
    /// blob that could not be used).
    pub(crate) fn execute_node(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[Output],
    ) -> Result<Output, EngineError> {
        self.execute(id, node, inputs, &|_| {})
    }

    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snapshotter
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn images(&self) -> &dyn ImageLayers {
        self.config.images.as_ref()
    }

    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}

impl Executor for Engine {
    type Output = Output;
    type Error = EngineError;

    fn execute(
        &self,
        _id: NodeId,
        node: &Node,
        inputs: &[Output],
        log: &dyn Fn(&str),
    ) -> Result<Output, EngineError> {
        let label = node.descriptions.first().cloned().unwrap_or_default();
        let materialized;
        let inputs = if matches!(node.op, Op::Exec(_) | Op::File(_) | Op::Merge) {
            materialized = inputs
                .iter()
                .map(|input| self.materialize(input, &label))
                .collect::<Result<Vec<_>, _>>()?;
            &materialized[..]
        } else {
            inputs
        };
        match &node.op {
            Op::Scratch => Ok(Output::Fs(None)),
            Op::Image(source) => images::image_output(self, source),
            Op::Local(local) => {
                if local.name.is_empty() {
                    return Err(EngineError::Input(
                        "this build has no local context (the Dockerfile came from stdin with context -)".into(),
                    ));
                }
                let path = self
                    .config
                    .local_contexts
                    .get(&local.name)
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(&local.name));
                Ok(Output::Dir {
                    path,
                    excludes: local.exclude.clone(),
                })
            }
            Op::Exec(exec) => exec::run(self, exec, inputs, &label, log),
            Op::File(file) => files::apply(self, file, inputs, &label),
            Op::Merge => files::merge(self, inputs, &label),
            Op::Http(http) => http::fetch(self, http, &label),
        }
    }
}
