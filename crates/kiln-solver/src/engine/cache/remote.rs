//! The cache's remote side: local misses answered from `--cache-from` records (lazy
//! layers on the parent's filesystem), and finished steps handed to `--cache-to`.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use kiln_graph::{Node, NodeId, Op};

use super::super::Output;
use super::super::lazy::{BlobLocation, ImportedRecord, LazyFs, LazyLayer, Rerun};
use super::{CachedEngine, Keyed, recorded};
use crate::remote_cache::{CacheImport, ExportItem};

impl CachedEngine<'_> {
    /// Answers local misses from `imports` too, and hands every finished step to
    /// `exports` (until [`CachedEngine::close_exports`]).
    pub fn with_remote(
        mut self,
        imports: Vec<Arc<CacheImport>>,
        exports: Option<Sender<ExportItem>>,
    ) -> Self {
        self.imports = imports;
        self.exports = Mutex::new(exports);
        self
    }

    /// No more steps go to the cache export: its worker can finish.
    pub fn close_exports(&self) {
        self.exports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Hands a finished step to the cache export, if there is one.
    pub(super) fn queue_export(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[Keyed],
        keyed: &Keyed,
        step: &str,
        stored: String,
    ) {
        let exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = exports.as_ref() else {
            return;
        };
        if !exportable(node) {
            return;
        }
        let _ = sender.send(ExportItem {
            node: id,
            key: keyed.key.clone(),
            step: step.to_string(),
            inputs: stored,
            parent: inputs.first().map(|i| i.key.clone()),
            output: keyed.output.clone(),
            created_ms: keyed.created_ms,
        });
    }

    /// A local miss answered by a `--cache-from` source: the parent's filesystem with the
    /// record's layer on top, its blob fetched only when something needs it. Returns the
    /// result and the stored key inputs.
    pub(super) fn remote_hit(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[Keyed],
        key: &str,
        step: &str,
    ) -> Option<(Keyed, String)> {
        if !exportable(node) {
            return None;
        }
        let parent = inputs.first();
        let parent_output = parent.map_or(Output::Fs(None), |p| p.output.clone());
        let parent_key = parent.map(|p| p.key.clone());
        for import in self.imports.iter().filter(|i| i.has(key)) {
            let origin = format!("cache record {key} from {}", import.describe());
            let record = match import.record(key) {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(error) => {
                    self.engine.warn(format!("{origin}: {error}; not used"));
                    continue;
                }
            };
            if record.config.parent != parent_key {
                self.engine
                    .warn(format!("{origin}: it builds on another step; not used"));
                continue;
            }
            let layer = match (&record.layer, &record.config.layer) {
                (Some(blob), Some(info)) => Some(LazyLayer {
                    diff_id: info.diff_id.clone(),
                    digest: blob.digest.clone(),
                    media_type: blob.media_type.clone(),
                    size: blob.size,
                    location: BlobLocation::Remote(import.blob_source()),
                    written_with: Some(info.settings.clone()),
                    rerun: Some(Arc::new(Rerun {
                        id,
                        node: node.clone(),
                        inputs: inputs.iter().map(|i| i.output.clone()).collect(),
                        origin: origin.clone(),
                        result: Mutex::new(None),
                    })),
                    record: Some(Arc::new(ImportedRecord {
                        key: key.to_string(),
                        step: step.to_string(),
                        inputs: record.config.inputs.clone(),
                        created_ms: record.config.created_ms,
                    })),
                }),
                _ => None,
            };
            let Some(lazy) = LazyFs::stacked(&parent_output, layer) else {
                continue;
            };
            let keyed = Keyed {
                output: Output::Layers(Arc::new(lazy)),
                key: key.to_string(),
                cached: true,
                created_ms: record.config.created_ms,
            };
            return Some((keyed, record.config.inputs));
        }
        None
    }
}

/// Recorded ops whose result is their first input's filesystem plus one diff, which is
/// what a remote record holds (a merge of more than one layer is not).
pub(super) fn exportable(node: &Node) -> bool {
    recorded(&node.op) && (!matches!(node.op, Op::Merge) || node.inputs.len() <= 2)
}
