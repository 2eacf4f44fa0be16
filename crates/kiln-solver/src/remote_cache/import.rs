//! `--cache-from`: the index (a source's record tags, and the records an image under the
//! source's own tag carries inline) is read once when the build starts; a step that misses
//! locally and whose key is in it gets its record (manifest and config, both small), and its
//! layer blob only when something needs the bytes.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};

use kiln_registry::media::sha256_digest;

use super::RemoteCacheError;
use super::inline::{image_config_ref, records_of_image};
use super::record::{RecordConfig, decode_manifest, key_of_tag, record_tag};
use super::storage::{BlobRef, CacheStorage};
use crate::engine::BlobSource;

/// One cache source with the keys it holds.
pub struct CacheImport {
    storage: Arc<dyn CacheStorage>,
    prefix: String,
    keys: HashSet<String>,
    /// Records carried by the image the source's own tag names (`type=inline` exports).
    inline: HashMap<String, RemoteRecord>,
    /// Records being fetched in the background, when the index is small enough.
    prefetch: Option<Arc<Prefetch>>,
}

/// A record found for a key.
#[derive(Debug, Clone)]
pub struct RemoteRecord {
    pub config: RecordConfig,
    pub layer: Option<BlobRef>,
}

impl CacheImport {
    /// Reads the index of `storage` for records under the tag `prefix`: record tags
    /// `{prefix}-{hex}`, and the inline records of an image tagged `prefix` itself.
    pub fn open(storage: Arc<dyn CacheStorage>, prefix: &str) -> Result<Self, RemoteCacheError> {
        let tags = storage.list_tags()?;
        let keys: HashSet<String> = tags
            .iter()
            .filter_map(|tag| key_of_tag(prefix, tag))
            .collect();
        let inline = if tags.iter().any(|t| t == prefix) {
            inline_records(storage.as_ref(), prefix)?
        } else {
            HashMap::new()
        };
        let prefetch = (!keys.is_empty() && keys.len() <= PREFETCH_LIMIT)
            .then(|| Prefetch::start(storage.clone(), prefix, &keys));
        Ok(Self {
            storage,
            prefix: prefix.to_string(),
            keys,
            inline,
            prefetch,
        })
    }

    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// Whether the index lists `key` (no I/O).
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains(key) || self.inline.contains_key(key)
    }

    /// The record of `key`; `None` when the source does not have it (any more).
    pub fn record(&self, key: &str) -> Result<Option<RemoteRecord>, RemoteCacheError> {
        if let Some(record) = self.inline.get(key) {
            return Ok(Some(record.clone()));
        }
        if !self.keys.contains(key) {
            return Ok(None);
        }
        if let Some(prefetch) = &self.prefetch
            && let Some(found) = prefetch.take(key)
        {
            return found.map_err(RemoteCacheError::Backend);
        }
        fetch_record(self.storage.as_ref(), &self.prefix, key)
    }

    /// Reads this source's blobs for lazy layers.
    pub fn blob_source(&self) -> Arc<dyn BlobSource> {
        Arc::new(StorageBlobs::new(self.storage.clone()))
    }
}

/// The record tagged for `key`, its config checked against its digest and its contents
/// against the key.
fn fetch_record(
    storage: &dyn CacheStorage,
    prefix: &str,
    key: &str,
) -> Result<Option<RemoteRecord>, RemoteCacheError> {
    let Some(manifest) = storage.get_manifest(&record_tag(prefix, key))? else {
        return Ok(None);
    };
    let (config_ref, layer) = decode_manifest(&manifest)?;
    let bytes = read_small_blob(storage, &config_ref)?;
    let config: RecordConfig = serde_json::from_slice(&bytes)
        .map_err(|e| RemoteCacheError::Format(format!("record config: {e}")))?;
    if config.key != key || config.layer.is_some() != layer.is_some() {
        return Err(RemoteCacheError::Format(format!(
            "the record tagged for {key} does not describe it"
        )));
    }
    Ok(Some(RemoteRecord { config, layer }))
}

/// A config-sized blob, checked against its digest.
fn read_small_blob(
    storage: &dyn CacheStorage,
    blob: &BlobRef,
) -> Result<Vec<u8>, RemoteCacheError> {
    let mut bytes = Vec::new();
    storage
        .open_blob(blob)?
        .take(1 << 24)
        .read_to_end(&mut bytes)
        .map_err(super::io_error(format!("read {}", blob.digest)))?;
    if sha256_digest(&bytes) != blob.digest {
        return Err(RemoteCacheError::Format(format!(
            "blob {} does not match its digest",
            blob.digest
        )));
    }
    Ok(bytes)
}

/// The inline records of the image `tag` names, if it is an image.
fn inline_records(
    storage: &dyn CacheStorage,
    tag: &str,
) -> Result<HashMap<String, RemoteRecord>, RemoteCacheError> {
    let Some(manifest) = storage.get_manifest(tag)? else {
        return Ok(HashMap::new());
    };
    let Some(config_ref) = image_config_ref(&manifest) else {
        return Ok(HashMap::new());
    };
    let config = read_small_blob(storage, &config_ref)?;
    records_of_image(&manifest, &config)
}

/// An index of at most this many records is fetched whole, in the background, as soon as
/// it is read: a round trip per step would otherwise add up on the critical path. A larger
/// one (a long-lived shared ref) is read record by record, on demand.
const PREFETCH_LIMIT: usize = 256;

/// Fetches running at once.
const PREFETCH_THREADS: usize = 8;

type Fetched = Result<Option<RemoteRecord>, String>;

enum Slot {
    Queued,
    Running,
    Done(Box<Fetched>),
}

/// Background fetches of an index's records. A lookup takes a finished record, waits for
/// one in flight, or fetches one not started yet itself: prefetching never makes a lookup
/// slower than fetching directly.
struct Prefetch {
    storage: Arc<dyn CacheStorage>,
    prefix: String,
    slots: Mutex<HashMap<String, Slot>>,
    done: Condvar,
}

impl Prefetch {
    fn start(storage: Arc<dyn CacheStorage>, prefix: &str, keys: &HashSet<String>) -> Arc<Self> {
        let prefetch = Arc::new(Prefetch {
            storage,
            prefix: prefix.to_string(),
            slots: Mutex::new(keys.iter().map(|k| (k.clone(), Slot::Queued)).collect()),
            done: Condvar::new(),
        });
        for _ in 0..PREFETCH_THREADS.min(keys.len()) {
            let worker = prefetch.clone();
            std::thread::spawn(move || while worker.run_next() {});
        }
        prefetch
    }

    /// Fetches one queued record; `false` when none is left.
    fn run_next(&self) -> bool {
        let key = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let Some((key, slot)) = slots.iter_mut().find(|(_, s)| matches!(s, Slot::Queued))
            else {
                return false;
            };
            *slot = Slot::Running;
            key.clone()
        };
        let fetched = self.fetch(&key);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.insert(key, Slot::Done(Box::new(fetched)));
        self.done.notify_all();
        true
    }

    fn fetch(&self, key: &str) -> Fetched {
        // A panic must still settle the slot, or a lookup waiting on it would never wake.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fetch_record(self.storage.as_ref(), &self.prefix, key).map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err(format!("fetching the record of {key} panicked")))
    }

    /// The record of `key` (`None` when the key is not prefetched).
    fn take(&self, key: &str) -> Option<Fetched> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match slots.get(key)? {
                Slot::Done(fetched) => return Some((**fetched).clone()),
                Slot::Running => {
                    slots = self.done.wait(slots).unwrap_or_else(|p| p.into_inner());
                }
                Slot::Queued => {
                    slots.insert(key.to_string(), Slot::Running);
                    drop(slots);
                    let fetched = self.fetch(key);
                    let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
                    slots.insert(key.to_string(), Slot::Done(Box::new(fetched.clone())));
                    self.done.notify_all();
                    return Some(fetched);
                }
            }
        }
    }
}

/// A storage's blobs as the source of lazy layers: cache records' layers, or a pulled
/// base image's layers in its registry repository.
pub(crate) struct StorageBlobs {
    storage: Arc<dyn CacheStorage>,
    /// Where the blobs are, for messages.
    place: String,
}

impl StorageBlobs {
    pub(crate) fn new(storage: Arc<dyn CacheStorage>) -> Self {
        let place = storage.describe();
        Self::named(storage, place)
    }

    /// Blobs that messages name by `place` rather than by the storage's description.
    pub(crate) fn named(storage: Arc<dyn CacheStorage>, place: String) -> Self {
        Self { storage, place }
    }
}

impl BlobSource for StorageBlobs {
    fn describe(&self) -> String {
        self.place.clone()
    }

    fn open_blob(&self, digest: &str, size: u64) -> Result<Box<dyn Read + Send>, String> {
        let blob = BlobRef {
            media_type: String::new(),
            digest: digest.to_string(),
            size,
        };
        self.storage.open_blob(&blob).map_err(|e| e.to_string())
    }

    fn fetch_into(&self, digest: &str, size: u64, dest: &std::path::Path) -> Result<bool, String> {
        let blob = BlobRef {
            media_type: String::new(),
            digest: digest.to_string(),
            size,
        };
        self.storage
            .fetch_into(&blob, dest)
            .map_err(|e| e.to_string())
    }
}
