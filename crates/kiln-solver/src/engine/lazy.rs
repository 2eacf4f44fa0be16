//! Lazy filesystems: a stack of layer blobs on an optional snapshot, unpacked only when an
//! op needs to see the files. An image a build only copies layers from, or a chain of steps
//! answered from a remote cache, never touches the disk beyond the blobs an export needs.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_exporter::{Compression, LayerOptions};
use kiln_graph::{Node, NodeId};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::images::chain_id;
use super::{Engine, EngineError, Output};

/// Somewhere a layer blob can be read from that is not kiln's store (a remote cache, a
/// registry). Whatever it yields is checked against the blob's digest before use.
pub trait BlobSource: Send + Sync {
    /// Where blobs come from, for messages (`type=local,src=/cache`).
    fn describe(&self) -> String;
    /// The bytes of the blob with `digest` (`sha256:<hex>`).
    fn open_blob(&self, digest: &str, size: u64) -> Result<Box<dyn Read + Send>, String>;
    /// Writes the blob to `dest` itself, verified against `digest` and `size` and renamed
    /// into place, when the source can do so without a second copy; `Ok(false)` when it
    /// cannot (the bytes are then read with `open_blob` and checked by the store).
    fn fetch_into(
        &self,
        _digest: &str,
        _size: u64,
        _dest: &std::path::Path,
    ) -> Result<bool, String> {
        Ok(false)
    }
}

/// Where a layer's blob is.
#[derive(Clone)]
pub enum BlobLocation {
    /// In kiln's store (or another trusted local path): read as it is.
    Local(PathBuf),
    /// Fetched into the store's blob directory, verified, the first time it is needed.
    Remote(Arc<dyn BlobSource>),
}

/// The layer options a blob was written with; an export with the same options takes the
/// blob as it is, so its digest does not change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSettings {
    /// `gzip`, `zstd` or `uncompressed`.
    pub compression: String,
    #[serde(default)]
    pub level: Option<i32>,
    #[serde(default)]
    pub epoch: Option<i64>,
}

impl LayerSettings {
    pub fn of(options: &LayerOptions) -> Self {
        Self {
            compression: options.compression.name().to_string(),
            level: options.compression_level,
            epoch: options.source_date_epoch,
        }
    }

    /// The layer options these settings stand for; `None` for a compression kiln does not
    /// know.
    pub fn options(&self) -> Option<LayerOptions> {
        let compression = Compression::parse(&self.compression)?;
        Some(LayerOptions {
            compression,
            compression_level: self.level,
            source_date_epoch: self.epoch,
        })
    }
}

/// How to make a layer's filesystem when its blob cannot be had: run the op that made it
/// again on the same inputs. A remote cache record carries one, so a blob that is missing
/// or damaged costs a re-run, never a failed build or a wrong result.
pub struct Rerun {
    pub id: NodeId,
    pub node: Node,
    pub inputs: Vec<Output>,
    /// What answered the step (`cache record sha256:… from type=local,src=…`).
    pub origin: String,
    /// The re-run's result: a step runs again at most once per build.
    pub result: std::sync::Mutex<Option<Output>>,
}

/// One layer of a lazy filesystem.
#[derive(Clone)]
pub struct LazyLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Digest, media type and size of the blob.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub location: BlobLocation,
    /// The options kiln wrote the blob with; `None` for an image's own layers.
    pub written_with: Option<LayerSettings>,
    pub rerun: Option<Arc<Rerun>>,
    /// The cache record this layer came from: once unpacked, the store records it, so
    /// later builds hit locally without the remote cache.
    pub record: Option<Arc<ImportedRecord>>,
}

impl LazyLayer {
    /// A layer of an image, as it is.
    pub fn of_image(layer: &super::ImageLayer) -> Self {
        LazyLayer {
            diff_id: layer.diff_id.clone(),
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            size: layer.size,
            location: layer.location.clone(),
            written_with: None,
            rerun: None,
            record: None,
        }
    }
}

impl fmt::Debug for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::Local(path) => f.debug_tuple("Local").field(path).finish(),
            BlobLocation::Remote(source) => {
                f.debug_tuple("Remote").field(&source.describe()).finish()
            }
        }
    }
}

/// A remote cache record as the local cache will store it.
pub struct ImportedRecord {
    pub key: String,
    pub step: String,
    /// The key inputs (JSON text), for explanations.
    pub inputs: String,
    pub created_ms: i64,
}

/// A filesystem not unpacked yet: `layers` (bottom first) on `base`.
#[derive(Clone)]
pub struct LazyFs {
    /// The snapshot the layers go on; `None` is the empty filesystem.
    pub base: Option<String>,
    pub layers: Vec<LazyLayer>,
    /// Whether the last layer is the diff of the op that produced this output (a step
    /// answered from a remote cache) rather than something it inherited (an image's
    /// layers, or a step that changed nothing).
    pub own_top: bool,
}

impl LazyFs {
    /// The layer the producing op added, if it added one.
    pub fn own_layer(&self) -> Option<&LazyLayer> {
        if self.own_top {
            self.layers.last()
        } else {
            None
        }
    }

    /// `parent`'s filesystem with `layer` on top (or unchanged, marked as adding nothing,
    /// when `layer` is `None`). `None` when `parent` is not a filesystem.
    pub fn stacked(parent: &Output, layer: Option<LazyLayer>) -> Option<LazyFs> {
        let (base, mut layers) = match parent {
            Output::Fs(base) => (base.clone(), Vec::new()),
            Output::Layers(lazy) => (lazy.base.clone(), lazy.layers.clone()),
            Output::Dir { .. } => return None,
        };
        let own_top = layer.is_some();
        layers.extend(layer);
        Some(LazyFs {
            base,
            layers,
            own_top,
        })
    }
}

impl PartialEq for LazyFs {
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base
            && self.own_top == other.own_top
            && self.layers.len() == other.layers.len()
            && self
                .layers
                .iter()
                .zip(&other.layers)
                .all(|(a, b)| a.digest == b.digest && a.diff_id == b.diff_id)
    }
}

impl Eq for LazyFs {}

impl fmt::Debug for LazyFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyFs")
            .field("base", &self.base)
            .field(
                "layers",
                &self.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
            )
            .field("own_top", &self.own_top)
            .finish()
    }
}

/// Error for a blob that could not be had or did not match its digests.
pub(super) fn blob_error(layer: &LazyLayer, message: impl fmt::Display) -> EngineError {
    EngineError::Blob {
        digest: layer.digest.clone(),
        message: message.to_string(),
    }
}

/// The path of `layer`'s blob in kiln's store (or where it already is locally), fetching
/// and verifying it first when it comes from elsewhere.
pub(crate) fn local_blob(engine: &Engine, layer: &LazyLayer) -> Result<PathBuf, EngineError> {
    match &layer.location {
        BlobLocation::Local(path) => Ok(path.clone()),
        BlobLocation::Remote(source) => {
            let digest = kiln_store::Digest::parse(&layer.digest)
                .map_err(|e| blob_error(layer, format!("invalid digest: {e}")))?;
            let store = engine.store();
            if store.has_blob(&digest) {
                return Ok(store.blob_path(&digest));
            }
            let fetched = source
                .fetch_into(&layer.digest, layer.size, &store.blob_path(&digest))
                .map_err(|e| blob_error(layer, format!("{}: {e}", source.describe())))?;
            if fetched {
                return Ok(store.blob_path(&digest));
            }
            let reader = source
                .open_blob(&layer.digest, layer.size)
                .map_err(|e| blob_error(layer, format!("{}: {e}", source.describe())))?;
            store
                .put_blob_expecting(reader, &digest)
                .map_err(|e| blob_error(layer, format!("{}: {e}", source.describe())))?;
            Ok(store.blob_path(&digest))
        }
    }
}

/// `output` as something an op can read: a lazy filesystem is unpacked (each layer once per
/// chain, shared with every other build); anything else is returned as it is.
pub(crate) fn materialize(
    engine: &Engine,
    output: &Output,
    label: &str,
) -> Result<Output, EngineError> {
    match output {
        Output::Layers(lazy) => Ok(Output::Fs(materialize_fs(engine, lazy, label)?)),
        other => Ok(other.clone()),
    }
}

fn materialize_fs(
    engine: &Engine,
    lazy: &LazyFs,
    label: &str,
) -> Result<Option<String>, EngineError> {
    let mut parent = lazy.base.clone();
    // Above a local snapshot the chain starts from that snapshot's id, so equal layers on
    // different bases never share a snapshot.
    let mut chain = lazy.base.clone();
    for layer in &lazy.layers {
        let id = chain_id(chain.as_deref(), &layer.diff_id);
        match apply_once(engine, parent.as_deref(), &id, layer, label) {
            Ok(snapshot) => {
                if let Some(record) = &layer.record {
                    engine.store().cache_insert_created(
                        &record.key,
                        Some(&snapshot),
                        &record.step,
                        &record.inputs,
                        record.created_ms,
                    )?;
                }
                parent = Some(snapshot);
                chain = Some(id);
            }
            Err(error) => {
                let (EngineError::Blob { digest, message }, Some(rerun)) = (&error, &layer.rerun)
                else {
                    return Err(error);
                };
                let mut result = rerun.result.lock().unwrap_or_else(|p| p.into_inner());
                let output = match result.as_ref() {
                    Some(output) => output.clone(),
                    None => {
                        engine.warn(format!(
                            "{}: layer {digest} cannot be used ({message}); the step ran again",
                            rerun.origin
                        ));
                        let output = engine.execute_node(rerun.id, &rerun.node, &rerun.inputs)?;
                        *result = Some(output.clone());
                        output
                    }
                };
                parent = output.snapshot().map(str::to_string);
                // What the re-run made is its own: nothing above it may be shared by chain.
                chain = parent.clone();
            }
        }
    }
    Ok(parent)
}

/// The snapshot of `layer` on `parent`, known by its chain id: one process unpacks a given
/// chain, others wait and then find it.
fn apply_once(
    engine: &Engine,
    parent: Option<&str>,
    chain: &str,
    layer: &LazyLayer,
    label: &str,
) -> Result<String, EngineError> {
    let store = engine.store();
    let key = format!("layer:{chain}");
    let short = chain
        .trim_start_matches("sha256:")
        .get(..32)
        .unwrap_or_default();
    let _guard = store.lock(&format!("unpack-{short}"))?;
    if let Some(found) = store.snapshot_by_key(&key)? {
        return Ok(found.id);
    }
    let path = local_blob(engine, layer)?;
    let blob = std::fs::File::open(&path).map_err(|e| blob_error(layer, e))?;
    let tar = kiln_exporter::decompressed(blob).map_err(|e| blob_error(layer, e))?;
    let mut hashing = HashingReader::new(tar);
    let applied = engine
        .snapshotter()
        .apply_layer(parent, &mut hashing, label);
    let record = match applied {
        Ok((record, _)) => record,
        // Bytes from elsewhere that are not a layer are the source's fault: like a digest
        // mismatch, they cost a re-run rather than the build.
        Err(error) if matches!(layer.location, BlobLocation::Remote(_)) => {
            return Err(blob_error(layer, error));
        }
        Err(error) => return Err(error.into()),
    };
    if let Err(error) = verify_diff_id(layer, hashing) {
        let _ = engine.snapshotter().remove(&record.id);
        return Err(error);
    }
    store.set_snapshot_key(&record.id, &key)?;
    if let Some(options) = layer.written_with.as_ref().and_then(LayerSettings::options) {
        // Later exports with the same options take this very blob: the digest stays.
        super::export::remember_layer(engine, &record.id, &options, layer, &path)?;
    }
    Ok(record.id)
}

/// Reads the rest of `hashing` and checks that the whole uncompressed tar has `layer`'s
/// diff_id; if not, a `Blob` error (which costs a re-run, not the build).
pub(super) fn verify_diff_id<R: Read>(
    layer: &LazyLayer,
    mut hashing: HashingReader<R>,
) -> Result<(), EngineError> {
    // A tar reader may stop at the end-of-archive marker: hash whatever padding follows.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| blob_error(layer, e))?;
    let diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    if diff_id != layer.diff_id {
        return Err(blob_error(
            layer,
            format!(
                "its content has diff_id {diff_id}, not {} as recorded",
                layer.diff_id
            ),
        ));
    }
    Ok(())
}

/// Hashes what passes through (the uncompressed tar, for its diff_id).
pub(super) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
