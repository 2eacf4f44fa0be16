//! Content-addressed blobs under `blobs/sha256/<hex>`.
//!
//! A blob reaches its final path only by rename after its content is on disk and fsynced,
//! so whatever sits at a final path is complete; half-written data only ever lives under
//! `tmp/` and is removed on failure (or by `Store::clean_tmp` after a crash).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result, io_err};
use crate::fsutil::{fsync_dir, random_hex};
use crate::{Digest, Store};

impl Store {
    /// Final path of a blob (which may not exist yet).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores everything `reader` yields and returns its digest.
    pub fn put_blob(&self, reader: impl Read) -> Result<Digest> {
        self.put_blob_inner(reader, None)
    }

    /// Like [`Store::put_blob`] but refuses (and stores nothing) when the content does not
    /// hash to `expected`; use it for data fetched from elsewhere.
    pub fn put_blob_expecting(&self, reader: impl Read, expected: &Digest) -> Result<Digest> {
        self.put_blob_inner(reader, Some(expected))
    }

    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        self.put_blob(bytes)
    }

    pub fn put_blob_file(&self, path: &Path) -> Result<Digest> {
        let f = File::open(path).map_err(io_err("open", path))?;
        self.put_blob(f)
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.clone()),
            _ => io_err("open", &p)(e),
        })
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let mut f = self.open_blob(digest)?;
        f.read_to_end(&mut buf)
            .map_err(io_err("read", self.blob_path(digest)))?;
        Ok(buf)
    }

    /// Re-hashes a stored blob; `Err(DigestMismatch)` means the file was damaged on disk.
    pub fn verify_blob(&self, digest: &Digest) -> Result<()> {
        let f = self.open_blob(digest)?;
        let actual = hash_reader(f, io::sink()).map_err(io_err("read", self.blob_path(digest)))?;
        if &actual == digest {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            })
        }
    }

    /// Size in bytes of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let p = self.blob_path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Deletes a blob; `Ok(false)` if it was not there.
    pub fn remove_blob(&self, digest: &Digest) -> Result<bool> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    fn put_blob_inner(&self, reader: impl Read, expected: Option<&Digest>) -> Result<Digest> {
        let tmp = self.tmp_dir().join(format!("blob-{}", random_hex(8)));
        let result = self.write_blob_via(&tmp, reader, expected);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_blob_via(
        &self,
        tmp: &Path,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Digest> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(io_err("create", tmp))?;
        let digest = hash_reader(reader, &mut file).map_err(io_err("write", tmp))?;
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let final_path = self.blob_path(&digest);
        if final_path.is_file() {
            // Same digest, same bytes: another writer got there first.
            fs::remove_file(tmp).map_err(io_err("remove", tmp))?;
            return Ok(digest);
        }
        file.sync_all().map_err(io_err("fsync", tmp))?;
        drop(file);
        fs::rename(tmp, &final_path).map_err(io_err("rename", &final_path))?;
        fsync_dir(&self.blobs_dir())?;
        Ok(digest)
    }
}

/// Copies `reader` into `out` while hashing it.
fn hash_reader(mut reader: impl Read, mut out: impl Write) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    out.flush()?;
    Ok(Digest::from_hasher(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_read_back_and_verify() {
        let (_dir, store) = crate::temp_store();
        let d = store.put_blob_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::of_bytes(b"hello"));
        assert!(store.has_blob(&d));
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        store.verify_blob(&d).unwrap();
        assert_eq!(store.blob_size(&d).unwrap(), 5);
        // Storing again is a no-op that returns the same digest.
        assert_eq!(store.put_blob_bytes(b"hello").unwrap(), d);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn wrong_expected_digest_stores_nothing() {
        let (_dir, store) = crate::temp_store();
        let want = Digest::of_bytes(b"other");
        let err = store.put_blob_expecting(&b"hello"[..], &want).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!store.has_blob(&Digest::of_bytes(b"hello")));
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn verify_detects_damage() {
        let (_dir, store) = crate::temp_store();
        let d = store.put_blob_bytes(b"hello").unwrap();
        fs::write(store.blob_path(&d), b"jello").unwrap();
        assert!(matches!(
            store.verify_blob(&d),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn failing_reader_leaves_no_blob_and_no_temp() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("network gone"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let (_dir, store) = crate::temp_store();
        assert!(store.put_blob(Failing(3)).is_err());
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
    }
}
