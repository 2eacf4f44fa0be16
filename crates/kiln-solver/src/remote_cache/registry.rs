//! Records in a registry repository: each record is a manifest under its own tag, so the
//! tag list is the index and parallel writers never overwrite one another; blobs are
//! uploaded only when the repository lacks them.

use std::io::Read;
use std::path::{Path, PathBuf};

use kiln_registry::{Client, Descriptor, Reference};

use super::RemoteCacheError;
use super::storage::{BlobRef, CacheStorage};

/// Blobs up to this size are read into memory.
const IN_MEMORY_LIMIT: u64 = 1 << 20;

pub struct RegistryStorage {
    client: Client,
    /// The repository (its tag, if any, is the records' tag prefix, handled by the caller).
    repository: Reference,
    /// Scratch space on the store's filesystem for blobs in transit.
    tmp_dir: PathBuf,
}

impl RegistryStorage {
    pub fn new(
        client: Client,
        reference: &str,
        tmp_dir: PathBuf,
    ) -> Result<Self, RemoteCacheError> {
        let parsed = Reference::parse(reference).map_err(backend)?;
        let repository = Reference {
            tag: None,
            digest: None,
            ..parsed
        };
        Ok(Self {
            client,
            repository,
            tmp_dir,
        })
    }

    fn temp_path(&self, digest: &str) -> PathBuf {
        self.tmp_dir.join(format!(
            "blob-cache-{}-{}-{}",
            digest.trim_start_matches("sha256:"),
            std::process::id(),
            kiln_store::fsutil::random_hex(4)
        ))
    }
}

/// Downloads a blob (verified by the client against its digest and size) to `tmp` and
/// renames it to `dest`: one write, one hash, whatever the blob's size.
fn fetch_and_place(
    client: &Client,
    repository: &Reference,
    descriptor: &Descriptor,
    tmp: &Path,
    dest: &Path,
) -> Result<(), String> {
    client
        .fetch_blob(repository, descriptor, tmp)
        .map_err(|e| e.to_string())?;
    std::fs::rename(tmp, dest).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        format!("store blob {}: {e}", descriptor.digest)
    })
}

fn backend(error: kiln_registry::RegistryError) -> RemoteCacheError {
    RemoteCacheError::Backend(error.to_string())
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> RemoteCacheError + '_ {
    move |source| RemoteCacheError::Io {
        context: context.to_string(),
        source,
    }
}

impl CacheStorage for RegistryStorage {
    fn describe(&self) -> String {
        format!("type=registry,ref={}", self.repository.name())
    }

    fn list_tags(&self) -> Result<Vec<String>, RemoteCacheError> {
        self.client.list_tags(&self.repository).map_err(backend)
    }

    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>, RemoteCacheError> {
        Ok(self
            .client
            .get_manifest(&self.repository.with_tag(tag))
            .map_err(backend)?
            .map(|m| m.bytes))
    }

    fn open_blob(&self, blob: &BlobRef) -> Result<Box<dyn Read + Send>, RemoteCacheError> {
        let descriptor = Descriptor::new(&blob.media_type, &blob.digest, blob.size);
        // Record configs are small: memory, not a synced temp file, is the place for them.
        if blob.size <= IN_MEMORY_LIMIT {
            let bytes = self
                .client
                .fetch_blob_bytes(&self.repository, &descriptor, IN_MEMORY_LIMIT)
                .map_err(backend)?;
            return Ok(Box::new(std::io::Cursor::new(bytes)));
        }
        let path = self.temp_path(&blob.digest);
        self.client
            .fetch_blob(&self.repository, &descriptor, &path)
            .map_err(backend)?;
        let file = std::fs::File::open(&path).map_err(io("open fetched blob"));
        // The open file stays readable once its name is gone: nothing is left behind.
        let _ = std::fs::remove_file(&path);
        Ok(Box::new(file?))
    }

    fn fetch_into(&self, blob: &BlobRef, dest: &Path) -> Result<bool, RemoteCacheError> {
        let descriptor = Descriptor::new(&blob.media_type, &blob.digest, blob.size);
        fetch_and_place(
            &self.client,
            &self.repository,
            &descriptor,
            &self.temp_path(&blob.digest),
            dest,
        )
        .map_err(RemoteCacheError::Backend)?;
        Ok(true)
    }

    fn has_blob(&self, blob: &BlobRef) -> Result<bool, RemoteCacheError> {
        self.client
            .blob_exists(&self.repository, &blob.digest)
            .map_err(backend)
    }

    fn put_blob(&self, blob: &BlobRef, content: &mut dyn Read) -> Result<(), RemoteCacheError> {
        let path = self.temp_path(&blob.digest);
        let result = (|| {
            let mut file = std::fs::File::create(&path).map_err(io("write blob to push"))?;
            std::io::copy(content, &mut file).map_err(io("write blob to push"))?;
            drop(file);
            self.put_blob_file(blob, &path)
        })();
        let _ = std::fs::remove_file(&path);
        result
    }

    /// `push_blob` checks whether the repository has the blob before it sends anything.
    fn put_blob_file(&self, blob: &BlobRef, path: &Path) -> Result<(), RemoteCacheError> {
        let descriptor = Descriptor::new(&blob.media_type, &blob.digest, blob.size);
        self.client
            .push_blob(&self.repository, &descriptor, path, &[])
            .map_err(backend)?;
        Ok(())
    }

    fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(), RemoteCacheError> {
        self.client
            .push_manifest(&self.repository.with_tag(tag), media_type, manifest)
            .map_err(backend)?;
        Ok(())
    }
}
