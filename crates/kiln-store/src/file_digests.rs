//! The file_digests table: the content digest of a build-context file together with the
//! stat data it was taken at, so the next checksum of the same context can trust the
//! digest of a file whose stat data is unchanged instead of reading it again.
//!
//! Records are keyed by the context root's canonical path and the file's path below it:
//! a record is only ever consulted for the root it was taken in, because stat data alone
//! (same size, same times) says nothing about content in another directory.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rusqlite::params;

use crate::db::write_tx;
use crate::error::Result;
use crate::{Digest, Store};

/// What identifies one version of a file without reading it. Any write changes the
/// ctime, and replacing the file changes the inode, so an exact match of all fields means
/// the content is the one that was hashed (given the caller only records files whose
/// timestamps are older than the clock's granularity; see the solver's checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// One remembered file digest; `path` is the raw bytes of the path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigestRecord {
    pub path: Vec<u8>,
    pub identity: FileIdentity,
    pub digest: Digest,
}

impl Store {
    /// Every record of the context at `root` (a canonical path), in one query. A record
    /// whose digest column is unreadable is skipped: it only costs a re-read.
    pub fn file_digests(&self, root: &Path) -> Result<Vec<FileDigestRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest
             FROM file_digests WHERE root = ?1",
        )?;
        let rows = stmt.query_map([root.as_os_str().as_bytes()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                FileIdentity {
                    // SQLite integers are i64; the casts keep every bit both ways.
                    dev: r.get::<_, i64>(1)? as u64,
                    ino: r.get::<_, i64>(2)? as u64,
                    size: r.get::<_, i64>(3)? as u64,
                    mtime_ns: r.get(4)?,
                    ctime_ns: r.get(5)?,
                },
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, identity, digest) = row?;
            if let Ok(digest) = Digest::parse(&digest) {
                out.push(FileDigestRecord {
                    path,
                    identity,
                    digest,
                });
            }
        }
        Ok(out)
    }

    /// Writes `upserts` and deletes the records at `removed` (raw relative paths) for the
    /// context at `root`, in one transaction.
    pub fn update_file_digests(
        &self,
        root: &Path,
        upserts: &[FileDigestRecord],
        removed: &[Vec<u8>],
    ) -> Result<()> {
        if upserts.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let root = root.as_os_str().as_bytes();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO file_digests
                    (root, path, dev, ino, size, mtime_ns, ctime_ns, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(root, path) DO UPDATE SET
                    dev = excluded.dev, ino = excluded.ino, size = excluded.size,
                    mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
                    digest = excluded.digest",
            )?;
            for record in upserts {
                let id = &record.identity;
                insert.execute(params![
                    root,
                    record.path,
                    id.dev as i64,
                    id.ino as i64,
                    id.size as i64,
                    id.mtime_ns,
                    id.ctime_ns,
                    record.digest.to_string(),
                ])?;
            }
            let mut delete =
                tx.prepare_cached("DELETE FROM file_digests WHERE root = ?1 AND path = ?2")?;
            for path in removed {
                delete.execute(params![root, path])?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, ino: u64, content: &[u8]) -> FileDigestRecord {
        FileDigestRecord {
            path: path.as_bytes().to_vec(),
            identity: FileIdentity {
                dev: u64::MAX,
                ino,
                size: content.len() as u64,
                mtime_ns: -5,
                ctime_ns: 1_700_000_000_123_456_789,
            },
            digest: Digest::of_bytes(content),
        }
    }

    #[test]
    fn records_round_trip_per_root_and_are_replaced_and_removed() {
        let (_dir, store) = crate::temp_store();
        let (a, b) = (Path::new("/ctx/a"), Path::new("/ctx/b"));
        let one = record("x/one", 1, b"one");
        let two = record("two", 2, b"two");
        store
            .update_file_digests(a, &[one.clone(), two.clone()], &[])
            .unwrap();
        store
            .update_file_digests(b, &[record("x/one", 1, b"other")], &[])
            .unwrap();

        let mut got = store.file_digests(a).unwrap();
        got.sort_by(|l, r| l.path.cmp(&r.path));
        assert_eq!(got, vec![two.clone(), one.clone()]);
        assert_eq!(
            store.file_digests(b).unwrap()[0].digest,
            Digest::of_bytes(b"other")
        );

        let newer = record("x/one", 9, b"changed");
        store
            .update_file_digests(a, std::slice::from_ref(&newer), &[b"two".to_vec()])
            .unwrap();
        assert_eq!(store.file_digests(a).unwrap(), vec![newer]);
        assert_eq!(store.file_digests(b).unwrap().len(), 1);
        assert!(store.file_digests(Path::new("/ctx")).unwrap().is_empty());
    }
}
