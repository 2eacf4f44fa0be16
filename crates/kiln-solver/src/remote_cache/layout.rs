//! An OCI image layout directory as cache storage (`type=local`): `oci-layout`,
//! `index.json` listing one manifest per record tag (`org.opencontainers.image.ref.name`),
//! and `blobs/sha256/<hex>`. Blobs are written to a temp file and renamed; `index.json` is
//! read, changed and renamed into place under an exclusive lock, so processes exporting to
//! one directory at once all land.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kiln_registry::media::sha256_digest;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::storage::{BlobRef, CacheStorage};
use super::{RemoteCacheError, io_error};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

pub struct LocalLayoutStorage {
    dir: PathBuf,
}

impl LocalLayoutStorage {
    /// The layout at `dir`; created when `create` (an export), else it must exist.
    pub fn open(dir: &Path, create: bool) -> Result<Self, RemoteCacheError> {
        if create {
            fs::create_dir_all(dir.join("blobs/sha256"))
                .map_err(io_error(format!("create {}", dir.display())))?;
            let marker = dir.join("oci-layout");
            if !marker.exists() {
                kiln_store::fsutil::write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
        } else if !dir.join("index.json").is_file() {
            return Err(RemoteCacheError::Spec(format!(
                "{} is not an OCI image layout (no index.json)",
                dir.display()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, RemoteCacheError> {
        let digest = kiln_store::Digest::parse(digest)
            .map_err(|_| RemoteCacheError::Format(format!("invalid blob digest {digest:?}")))?;
        Ok(self.dir.join("blobs/sha256").join(digest.hex()))
    }

    fn index(&self) -> Result<Value, RemoteCacheError> {
        let path = self.dir.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RemoteCacheError::Format(format!("{}: not valid JSON: {e}", path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(json!({
                "schemaVersion": 2,
                "mediaType": INDEX_MEDIA_TYPE,
                "manifests": [],
            })),
            Err(e) => Err(io_error(format!("read {}", path.display()))(e)),
        }
    }

    fn entries(index: &Value) -> impl Iterator<Item = &Value> {
        index
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry.get("annotations")?.get(REF_NAME)?.as_str()
}

impl CacheStorage for LocalLayoutStorage {
    fn describe(&self) -> String {
        format!("type=local,dest={}", self.dir.display())
    }

    fn list_tags(&self) -> Result<Vec<String>, RemoteCacheError> {
        let index = self.index()?;
        Ok(Self::entries(&index)
            .filter_map(ref_name)
            .map(str::to_string)
            .collect())
    }

    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>, RemoteCacheError> {
        let index = self.index()?;
        let Some(entry) = Self::entries(&index).find(|e| ref_name(e) == Some(tag)) else {
            return Ok(None);
        };
        let digest = entry.get("digest").and_then(Value::as_str).unwrap_or("");
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).map_err(io_error(format!("read {}", path.display())))?;
        if sha256_digest(&bytes) != digest {
            return Err(RemoteCacheError::Format(format!(
                "manifest {digest} of tag {tag} does not match its digest"
            )));
        }
        Ok(Some(bytes))
    }

    fn open_blob(&self, blob: &BlobRef) -> Result<Box<dyn Read + Send>, RemoteCacheError> {
        let path = self.blob_path(&blob.digest)?;
        let file = File::open(&path).map_err(io_error(format!("open {}", path.display())))?;
        Ok(Box::new(file))
    }

    fn has_blob(&self, blob: &BlobRef) -> Result<bool, RemoteCacheError> {
        let path = self.blob_path(&blob.digest)?;
        Ok(fs::metadata(&path).is_ok_and(|m| m.len() == blob.size))
    }

    fn put_blob(&self, blob: &BlobRef, content: &mut dyn Read) -> Result<(), RemoteCacheError> {
        let path = self.blob_path(&blob.digest)?;
        if self.has_blob(blob)? {
            return Ok(());
        }
        let temp = path.with_file_name(format!(".tmp-{}", kiln_store::fsutil::random_hex(8)));
        let result = (|| {
            let mut file =
                File::create(&temp).map_err(io_error(format!("create {}", temp.display())))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = content
                    .read(&mut buf)
                    .map_err(io_error(format!("read blob {}", blob.digest)))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])
                    .map_err(io_error(format!("write {}", temp.display())))?;
            }
            let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
            if actual != blob.digest {
                return Err(RemoteCacheError::Format(format!(
                    "blob {} has digest {actual}",
                    blob.digest
                )));
            }
            file.sync_all()
                .map_err(io_error(format!("sync {}", temp.display())))?;
            fs::rename(&temp, &path).map_err(io_error(format!("rename {}", path.display())))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(), RemoteCacheError> {
        let blob = BlobRef {
            media_type: media_type.to_string(),
            digest: sha256_digest(manifest),
            size: manifest.len() as u64,
        };
        self.put_blob(&blob, &mut &manifest[..])?;
        // Read-modify-write under the lock: a concurrent writer's tags are kept.
        let _lock = kiln_store::ProcessLock::acquire(self.dir.join("index.json.lock"))?;
        let mut index = self.index()?;
        let entry = json!({
            "mediaType": media_type,
            "digest": blob.digest,
            "size": blob.size,
            "annotations": { REF_NAME: tag },
        });
        let manifests = index
            .as_object_mut()
            .ok_or_else(|| RemoteCacheError::Format("index.json is not an object".into()))?
            .entry("manifests")
            .or_insert_with(|| json!([]));
        let list = manifests
            .as_array_mut()
            .ok_or_else(|| RemoteCacheError::Format("index.json manifests is not a list".into()))?;
        list.retain(|e| ref_name(e) != Some(tag));
        list.push(entry);
        let text = serde_json::to_vec(&index).unwrap_or_default();
        kiln_store::fsutil::write_atomic(&self.dir.join("index.json"), &text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(bytes: &[u8]) -> BlobRef {
        BlobRef {
            media_type: "application/octet-stream".into(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn blobs_and_tags_round_trip_and_bad_blobs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LocalLayoutStorage::open(&dir.path().join("cache"), true).unwrap();
        let data = b"layer bytes";
        layout.put_blob(&blob(data), &mut &data[..]).unwrap();
        assert!(layout.has_blob(&blob(data)).unwrap());
        let mut back = Vec::new();
        layout
            .open_blob(&blob(data))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let wrong = layout.put_blob(&blob(b"other"), &mut &data[..]);
        assert!(wrong.is_err());
        assert!(!layout.has_blob(&blob(b"other")).unwrap());

        layout.put_manifest("t-1", "m", b"{\"a\":1}").unwrap();
        layout.put_manifest("t-2", "m", b"{\"a\":2}").unwrap();
        layout.put_manifest("t-1", "m", b"{\"a\":3}").unwrap();
        let mut tags = layout.list_tags().unwrap();
        tags.sort();
        assert_eq!(tags, ["t-1", "t-2"]);
        assert_eq!(layout.get_manifest("t-1").unwrap().unwrap(), b"{\"a\":3}");
        assert_eq!(layout.get_manifest("t-3").unwrap(), None);
    }

    #[test]
    fn a_missing_layout_is_an_error_for_import() {
        let dir = tempfile::tempdir().unwrap();
        let error = LocalLayoutStorage::open(&dir.path().join("none"), false)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("not an OCI image layout"),
            "{error}"
        );
    }

    #[test]
    fn parallel_writers_merge_their_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        LocalLayoutStorage::open(&path, true).unwrap();
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let path = path.clone();
                scope.spawn(move || {
                    let layout = LocalLayoutStorage::open(&path, true).unwrap();
                    for n in 0..10 {
                        let body = format!("{{\"w\":{writer},\"n\":{n}}}");
                        layout
                            .put_manifest(&format!("t-{writer}-{n}"), "m", body.as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        let layout = LocalLayoutStorage::open(&path, false).unwrap();
        assert_eq!(layout.list_tags().unwrap().len(), 40);
    }
}
