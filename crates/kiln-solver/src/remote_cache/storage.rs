//! Where records live. An implementation only moves bytes — tags, manifests and blobs —
//! so that an OCI image layout directory and a registry behave alike.

use std::io::Read;
use std::path::Path;

use super::{RemoteCacheError, io_error};

/// A content-addressed blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

/// The operations the remote cache needs from a place that stores OCI manifests and blobs
/// by tag (a registry repository, an OCI layout directory). Implementations must not
/// rewrite a shared object other than the tag they are asked to put: parallel writers
/// each add their own tags, and the index is the set of tags.
pub trait CacheStorage: Send + Sync {
    /// Where this is, for messages (`type=local,dest=/cache`).
    fn describe(&self) -> String;
    /// Every tag stored (the index of records).
    fn list_tags(&self) -> Result<Vec<String>, RemoteCacheError>;
    /// The manifest `tag` names, `None` when there is no such tag.
    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>, RemoteCacheError>;
    /// The bytes of a blob. The caller checks them against `blob.digest`.
    fn open_blob(&self, blob: &BlobRef) -> Result<Box<dyn Read + Send>, RemoteCacheError>;
    fn has_blob(&self, blob: &BlobRef) -> Result<bool, RemoteCacheError>;
    /// Writes a blob to `dest` itself, verified and renamed into place, when that saves a
    /// copy; `Ok(false)` when the caller should read it with `open_blob` instead.
    fn fetch_into(&self, _blob: &BlobRef, _dest: &Path) -> Result<bool, RemoteCacheError> {
        Ok(false)
    }
    /// Stores a blob whose content hashes to `blob.digest`.
    fn put_blob(&self, blob: &BlobRef, content: &mut dyn Read) -> Result<(), RemoteCacheError>;
    /// Stores the blob held in the file at `path`; storage that can send a file as it is
    /// overrides this to skip the copy `put_blob` would make.
    fn put_blob_file(&self, blob: &BlobRef, path: &Path) -> Result<(), RemoteCacheError> {
        let mut file =
            std::fs::File::open(path).map_err(io_error(format!("open {}", path.display())))?;
        self.put_blob(blob, &mut file)
    }
    /// Stores `manifest` (of `media_type`) under `tag`, after every blob it names.
    fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(), RemoteCacheError>;
}
