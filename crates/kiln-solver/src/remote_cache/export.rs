//! `--cache-to`: records stream out while the build runs. The cache engine hands each
//! finished step (ran or cached) to a worker thread that writes its layer blob, then the
//! blob, the config and last the manifest under the record's tag — so a record is never
//! visible before what it names. A failed build still exported every step that finished.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use kiln_exporter::LayerOptions;
use kiln_graph::NodeId;
use kiln_registry::media::OCI_MANIFEST;

use super::RemoteCacheError;
use super::record::{self, RecordConfig, RecordLayer, key_of_tag, record_tag};
use super::storage::{BlobRef, CacheStorage};
use crate::engine::export::step_layer;
use crate::engine::{Engine, LayerSettings, Output};

/// One destination of `--cache-to`.
pub struct ExportTarget {
    pub storage: Arc<dyn CacheStorage>,
    /// The ref's tag; records are tagged `{prefix}-{hex of key}`.
    pub prefix: String,
    /// How layer blobs are written (compression, `SOURCE_DATE_EPOCH`).
    pub options: LayerOptions,
    /// The steps whose records go here: the image's layers (`mode=min`) or every step
    /// (`mode=max`).
    pub nodes: HashSet<NodeId>,
    /// `ignore-error=false`: a failed export fails the build instead of warning.
    pub fail_on_error: bool,
}

/// A step that finished, as the cache engine saw it.
pub struct ExportItem {
    pub node: NodeId,
    pub key: String,
    pub step: String,
    /// The key inputs as stored (JSON text).
    pub inputs: String,
    /// The key of the step whose filesystem this one builds on.
    pub parent: Option<String>,
    pub output: Output,
    pub created_ms: i64,
}

/// What an export run did.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub written: usize,
    /// One message per failure.
    pub errors: Vec<String>,
    /// Whether a failure happened on a target that must not fail silently.
    pub fatal: bool,
}

/// After this many failures a destination is given up for the rest of the build.
const MAX_FAILURES: usize = 3;

/// Receives finished steps until the sender is dropped, writing each record to the targets
/// that want it and do not list it already.
pub fn export_records(
    engine: &Engine,
    targets: &[Arc<ExportTarget>],
    items: Receiver<ExportItem>,
) -> ExportReport {
    let mut report = ExportReport::default();
    // The keys each destination lists; `None` once it is given up.
    let mut listed: Vec<Option<HashSet<String>>> = targets
        .iter()
        .map(|target| match target.storage.list_tags() {
            Ok(tags) => Some(
                tags.iter()
                    .filter_map(|t| key_of_tag(&target.prefix, t))
                    .collect(),
            ),
            Err(error) => {
                report.fail(target, format!("cannot list records: {error}"));
                None
            }
        })
        .collect();
    let mut failures = vec![0; targets.len()];
    for item in items {
        for (index, target) in targets.iter().enumerate() {
            let Some(keys) = listed[index].as_mut() else {
                continue;
            };
            if !target.nodes.contains(&item.node) || keys.contains(&item.key) {
                continue;
            }
            match write_record(engine, target, &item) {
                Ok(()) => {
                    keys.insert(item.key.clone());
                    report.written += 1;
                }
                Err(error) => {
                    report.fail(target, format!("{}: {error}", item.step));
                    failures[index] += 1;
                    if failures[index] == MAX_FAILURES {
                        report.fail(target, "giving up on this destination".into());
                        listed[index] = None;
                    }
                }
            }
        }
    }
    report
}

impl ExportReport {
    fn fail(&mut self, target: &ExportTarget, message: String) {
        self.errors.push(format!(
            "cache export to {}: {message}",
            target.storage.describe()
        ));
        self.fatal |= target.fail_on_error;
    }
}

fn write_record(
    engine: &Engine,
    target: &ExportTarget,
    item: &ExportItem,
) -> Result<(), RemoteCacheError> {
    let layer = step_layer(engine, &item.output, &target.options)
        .map_err(|e| RemoteCacheError::Backend(format!("writing the layer: {e}")))?;
    let storage = target.storage.as_ref();
    let layer_ref = match &layer {
        Some(layer) => {
            let blob = BlobRef {
                media_type: layer.media_type.to_string(),
                digest: layer.digest.to_string(),
                size: layer.size,
            };
            storage.put_blob_file(&blob, &layer.path)?;
            Some(blob)
        }
        None => None,
    };
    let config = RecordConfig {
        key: item.key.clone(),
        step: item.step.clone(),
        created_ms: item.created_ms,
        inputs: item.inputs.clone(),
        parent: item.parent.clone(),
        layer: layer.as_ref().map(|l| RecordLayer {
            diff_id: l.diff_id.to_string(),
            settings: LayerSettings::of(&target.options),
        }),
    };
    let encoded = record::encode(&config, layer_ref.as_ref());
    storage.put_blob(&encoded.config_ref, &mut &encoded.config[..])?;
    storage.put_manifest(
        &record_tag(&target.prefix, &item.key),
        OCI_MANIFEST,
        &encoded.manifest,
    )
}
