//! From a solved stage to an image: the base image's layer blobs as they are, then one
//! layer per history entry that changed the filesystem (empty diffs are dropped and their
//! entries marked `empty_layer`, as BuildKit does), and the config lowering described.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kiln_exporter::{
    ContainerConfig, Digest, Healthcheck, History, ImageConfig, LayerDescriptor, LayerOptions,
    LayerSource, MediaType, Timestamp, write_layer,
};
use kiln_graph::lower::{HistoryEntry, ImageState, LoweredStage};
use kiln_graph::{Graph, NodeId, Op};

use super::lazy::{
    BlobLocation, HashingReader, LayerSettings, LazyFs, LazyLayer, blob_error, local_blob,
    verify_diff_id,
};
use super::{Engine, EngineError, Output};

/// Layers and config of a stage's image.
pub struct StageImage {
    pub config: ImageConfig,
    pub layers: Vec<LayerDescriptor>,
    /// Each history entry's step and the index of its layer in `layers` (`None` when it
    /// changed nothing), in history order.
    pub entry_layers: Vec<(NodeId, Option<usize>)>,
}

pub fn stage_image(
    engine: &Engine,
    graph: &Graph,
    stage: &LoweredStage,
    outputs: &HashMap<NodeId, Output>,
    created_secs: i64,
    options: &LayerOptions,
) -> Result<StageImage, EngineError> {
    let mut layers = Vec::new();
    if let Some(base) = stage.base
        && let Some(Op::Image(source)) = graph.node(base).map(|n| &n.op)
    {
        let digest = source.digest.as_deref().unwrap_or_default();
        for layer in engine
            .images()
            .image_layers(digest)
            .map_err(EngineError::Input)?
        {
            // The bytes are needed now (the image store and every output read them).
            let path = local_blob(engine, &LazyLayer::of_image(&layer))?;
            layers.push(LayerDescriptor {
                media_type: MediaType::from(oci_layer_type(&layer.media_type)),
                digest: parse_digest(&layer.digest)?,
                size: layer.size,
                diff_id: parse_digest(&layer.diff_id)?,
                path,
            });
        }
    }
    let created = Timestamp::from_unix(options.source_date_epoch.unwrap_or(created_secs));
    let mut history = Vec::with_capacity(stage.image.history.len());
    let mut entry_layers = Vec::new();
    for entry in &stage.image.history {
        let mut empty = entry.empty_layer;
        if let Some(node) = entry.layer {
            let layer = match outputs.get(&node) {
                Some(output) => step_layer(engine, output, options)?,
                None => None,
            };
            // Empty diffs are dropped and their entries marked, as BuildKit does.
            empty = layer.is_none();
            entry_layers.push((node, layer.as_ref().map(|_| layers.len())));
            layers.extend(layer);
        }
        history.push(history_entry(entry, created, empty));
    }
    let mut config = image_config(&stage.image);
    config.created = Some(created);
    config.history = history;
    Ok(StageImage {
        config,
        layers,
        entry_layers,
    })
}

/// The layer of the diff a step's output adds (`None` when it adds nothing), written with
/// `options` or taken as it is when already written so: what a cache record carries.
pub(crate) fn step_layer(
    engine: &Engine,
    output: &Output,
    options: &LayerOptions,
) -> Result<Option<LayerDescriptor>, EngineError> {
    match output {
        Output::Layers(lazy) => lazy_layer(engine, lazy, options),
        Output::Fs(Some(id)) => {
            let dir = engine.snapshotter().fs_dir(id)?;
            if is_empty_dir(&dir) {
                return Ok(None);
            }
            snapshot_layer(engine, id, &dir, options).map(Some)
        }
        Output::Fs(None) | Output::Dir { .. } => Ok(None),
    }
}

fn history_entry(entry: &HistoryEntry, created: Timestamp, empty: bool) -> History {
    History {
        created: Some(created),
        created_by: entry.created_by.clone(),
        author: String::new(),
        comment: entry.comment.clone().unwrap_or_default(),
        empty_layer: empty,
    }
}

/// The layer a lazy output's op added, `None` when it added none. A blob written with the
/// export's own options is taken as it is (fetched into the store if it is remote);
/// otherwise, or when the blob cannot be had, the filesystem is unpacked (re-running the
/// step if need be) and its diff written as for any snapshot.
fn lazy_layer(
    engine: &Engine,
    lazy: &Arc<LazyFs>,
    options: &LayerOptions,
) -> Result<Option<LayerDescriptor>, EngineError> {
    let Some(own) = lazy.own_layer() else {
        return Ok(None);
    };
    if own.written_with.as_ref() == Some(&LayerSettings::of(options)) {
        // A blob from elsewhere (a cache record) matched its digest when fetched; its
        // diff_id is the record's word, checked here before it goes into an image config.
        let checked = local_blob(engine, own).and_then(|path| {
            if matches!(own.location, BlobLocation::Remote(_)) {
                check_diff_id(own, &path)?;
            }
            Ok(path)
        });
        match checked {
            Ok(path) => {
                return Ok(Some(LayerDescriptor {
                    media_type: MediaType::from(own.media_type.as_str()),
                    digest: parse_digest(&own.digest)?,
                    size: own.size,
                    diff_id: parse_digest(&own.diff_id)?,
                    path,
                }));
            }
            // Unpacking below meets the same blob and re-runs the step instead.
            Err(EngineError::Blob { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let Some(id) = engine
        .materialize(&Output::Layers(lazy.clone()), "")?
        .snapshot()
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let dir = engine.snapshotter().fs_dir(&id)?;
    if is_empty_dir(&dir) {
        return Ok(None);
    }
    snapshot_layer(engine, &id, &dir, options).map(Some)
}

/// Fails with a `Blob` error (which costs a re-run, not the build) unless the blob at
/// `path` uncompresses to a tar whose digest is `layer`'s diff_id.
fn check_diff_id(layer: &LazyLayer, path: &Path) -> Result<(), EngineError> {
    let file = std::fs::File::open(path).map_err(|e| blob_error(layer, e))?;
    let tar = kiln_exporter::decompressed(file).map_err(|e| blob_error(layer, e))?;
    verify_diff_id(layer, HashingReader::new(tar))
}

/// Remembers that the diff of snapshot `id` is `layer`'s blob (at `path`) for `options`,
/// so exports with those options take that blob instead of writing their own.
pub(crate) fn remember_layer(
    engine: &Engine,
    id: &str,
    options: &LayerOptions,
    layer: &LazyLayer,
    path: &Path,
) -> Result<(), EngineError> {
    let store = engine.store();
    let digest = kiln_store::Digest::parse(&layer.digest)?;
    if !store.has_blob(&digest) {
        // The blob lives elsewhere on disk (a trusted local path): the memo must name a
        // blob of the store, so it is copied in.
        store.put_blob_file(path)?;
    }
    let known = LayerMemo {
        media_type: layer.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        diff_id: layer.diff_id.clone(),
    };
    let text = serde_json::to_vec(&known).unwrap_or_default();
    kiln_store::fsutil::write_atomic(&memo_path(engine, id, options)?, &text)?;
    Ok(())
}

fn memo_path(
    engine: &Engine,
    id: &str,
    options: &LayerOptions,
) -> Result<std::path::PathBuf, EngineError> {
    Ok(engine.snapshotter().fs_dir(id)?.with_file_name(format!(
        "layer-{:?}-{}-{}.json",
        options.compression,
        options.compression_level.unwrap_or(-1),
        options.source_date_epoch.unwrap_or(-1)
    )))
}

/// The layer of a snapshot's diff, written once per compression and epoch: the blob goes
/// straight into the store's blob directory (content-addressed, written atomically) and a
/// small memo beside the snapshot finds it again, so a rebuild never re-tars a layer.
pub(crate) fn snapshot_layer(
    engine: &Engine,
    id: &str,
    diff: &Path,
    options: &LayerOptions,
) -> Result<LayerDescriptor, EngineError> {
    let memo = memo_path(engine, id, options)?;
    let store = engine.store();
    if let Ok(text) = std::fs::read(&memo)
        && let Ok(known) = serde_json::from_slice::<LayerMemo>(&text)
        && let Ok(digest) = kiln_store::Digest::parse(&known.digest)
        && store.has_blob(&digest)
    {
        return Ok(LayerDescriptor {
            media_type: MediaType::from(known.media_type.as_str()),
            digest: parse_digest(&known.digest)?,
            size: known.size,
            diff_id: parse_digest(&known.diff_id)?,
            path: store.blob_path(&digest),
        });
    }
    let layer = write_layer(LayerSource::OverlayDiff(diff), options, &store.blobs_dir())
        .map_err(export_error)?;
    let known = LayerMemo {
        media_type: layer.media_type.to_string(),
        digest: layer.digest.to_string(),
        size: layer.size,
        diff_id: layer.diff_id.to_string(),
    };
    let text = serde_json::to_vec(&known).unwrap_or_default();
    kiln_store::fsutil::write_atomic(&memo, &text)?;
    Ok(layer)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LayerMemo {
    media_type: String,
    digest: String,
    size: u64,
    diff_id: String,
}

fn image_config(image: &ImageState) -> ImageConfig {
    let c = &image.config;
    let nanos = |v: Option<u64>| v.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
    ImageConfig {
        architecture: image.architecture.clone(),
        os: image.os.clone(),
        variant: image.variant.clone().unwrap_or_default(),
        author: image.author.clone().unwrap_or_default(),
        config: ContainerConfig {
            user: c.user.clone().unwrap_or_default(),
            exposed_ports: c.exposed_ports.clone(),
            env: c.env.clone(),
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            volumes: c.volumes.clone(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            labels: c.labels.clone(),
            stop_signal: c.stop_signal.clone().unwrap_or_default(),
            args_escaped: false,
            healthcheck: c.healthcheck.as_ref().map(|h| Healthcheck {
                test: h.test.clone(),
                interval: nanos(h.interval),
                timeout: nanos(h.timeout),
                start_period: nanos(h.start_period),
                start_interval: nanos(h.start_interval),
                retries: h.retries.map_or(0, i64::from),
            }),
            on_build: c.on_build.clone(),
            shell: c.shell.clone().unwrap_or_default(),
        },
        ..ImageConfig::default()
    }
}

/// kiln writes OCI manifests: a base layer pulled with a Docker media type is the same
/// bytes under its OCI name.
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        other => other,
    }
}

pub(crate) fn is_empty_dir(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(true)
}

fn parse_digest(text: &str) -> Result<Digest, EngineError> {
    kiln_exporter::parse_sha256(text).map_err(export_error)
}

fn export_error(error: kiln_exporter::ExportError) -> EngineError {
    EngineError::Input(error.to_string())
}
