//! `--cache-from`: the index (a source's record tags) is read once when the build starts;
//! a step that misses locally and whose key is in it gets its record (manifest and config,
//! both small), and its layer blob only when something needs the bytes.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

use super::RemoteCacheError;
use super::record::{self, RecordConfig, decode_manifest, key_of_tag, record_tag};
use super::storage::{BlobRef, CacheStorage};
use crate::engine::BlobSource;

/// One cache source with the keys it holds.
pub struct CacheImport {
    storage: Arc<dyn CacheStorage>,
    prefix: String,
    keys: HashSet<String>,
}

/// A record found for a key.
#[derive(Debug, Clone)]
pub struct RemoteRecord {
    pub config: RecordConfig,
    pub layer: Option<BlobRef>,
}

impl CacheImport {
    /// Reads the index of `storage` for records under the tag `prefix`.
    pub fn open(storage: Arc<dyn CacheStorage>, prefix: &str) -> Result<Self, RemoteCacheError> {
        let keys = storage
            .list_tags()?
            .iter()
            .filter_map(|tag| key_of_tag(prefix, tag))
            .collect();
        Ok(Self {
            storage,
            prefix: prefix.to_string(),
            keys,
        })
    }

    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// Whether the index lists `key` (no I/O).
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// The record of `key`; `None` when the source does not have it (any more).
    pub fn record(&self, key: &str) -> Result<Option<RemoteRecord>, RemoteCacheError> {
        if !self.has(key) {
            return Ok(None);
        }
        let Some(manifest) = self.storage.get_manifest(&record_tag(&self.prefix, key))? else {
            return Ok(None);
        };
        let (config_ref, layer) = decode_manifest(&manifest)?;
        let mut bytes = Vec::new();
        self.storage
            .open_blob(&config_ref)?
            .take(1 << 24)
            .read_to_end(&mut bytes)
            .map_err(super::io_error(format!(
                "read record config {}",
                config_ref.digest
            )))?;
        if record::digest_of(&bytes) != config_ref.digest {
            return Err(RemoteCacheError::Format(format!(
                "record config {} does not match its digest",
                config_ref.digest
            )));
        }
        let config: RecordConfig = serde_json::from_slice(&bytes)
            .map_err(|e| RemoteCacheError::Format(format!("record config: {e}")))?;
        if config.key != key || config.layer.is_some() != layer.is_some() {
            return Err(RemoteCacheError::Format(format!(
                "the record tagged for {key} does not describe it"
            )));
        }
        Ok(Some(RemoteRecord { config, layer }))
    }

    /// Reads this source's blobs for lazy layers.
    pub fn blob_source(&self) -> Arc<dyn BlobSource> {
        Arc::new(StorageBlobs(self.storage.clone()))
    }
}

struct StorageBlobs(Arc<dyn CacheStorage>);

impl BlobSource for StorageBlobs {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn open_blob(&self, digest: &str, size: u64) -> Result<Box<dyn Read + Send>, String> {
        let blob = BlobRef {
            media_type: String::new(),
            digest: digest.to_string(),
            size,
        };
        self.0.open_blob(&blob).map_err(|e| e.to_string())
    }
}
