//! The store: kiln's on-disk state shared by several kiln processes. It owns the SQLite
//! (WAL) metadata database, the content-addressed blob directory, the snapshot records,
//! cross-process locks and the atomic-write helpers.
//!
//! Layout under the root:
//! - `meta.db` — images and snapshots tables (see [`SCHEMA_VERSION`]);
//! - `blobs/sha256/<hex>` — blobs, only ever complete;
//! - `snapshots/<id>/` — layer directories, filled by the worker;
//! - `plans/<hex>` — stat plans of the whole-build short cuts (read in one go on every
//!   no-op build, which a large SQLite value is not);
//! - `tmp/` — work in progress (same filesystem, so finished work is renamed into place);
//! - `locks/` — flock files for [`Store::lock`].

mod blobs;
mod cache_mounts;
mod cache_records;
mod db;
mod digest;
mod error;
mod file_digests;
pub mod fsutil;
pub mod gc;
mod images;
mod lock;
mod pulled;
mod shortcuts;
mod snapshots;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

pub use cache_mounts::CacheMountRecord;
pub use cache_records::CacheRecord;
pub use db::SCHEMA_VERSION;
pub use digest::Digest;
pub use error::{Error, Result};
pub use file_digests::{FileDigestRecord, FileIdentity};
pub use images::ImageRecord;
pub use lock::ProcessLock;
pub use pulled::PulledImage;
pub use snapshots::{MAX_CHAIN_DEPTH, SnapshotRecord};

/// An open store. Cheap to share between threads (`&Store` or `Arc<Store>`); open one per
/// process, or several — each holds its own database connection.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens the store at `root`, creating the layout and migrating the schema as needed.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        for dir in ["blobs/sha256", "snapshots", "tmp", "locks", "plans"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(error::io_err("create dir", &p))?;
        }
        // Absolute so paths handed to runc and mount(2) mean the same after a chdir.
        let root = fs::canonicalize(root).map_err(error::io_err("resolve", root))?;
        // Creating the database, enabling WAL and migrating are one critical section across
        // processes; afterwards SQLite's own locking takes over.
        let conn = {
            let _guard = ProcessLock::acquire(root.join("locks/schema.lock"))?;
            db::open(&root.join("meta.db"))?
        };
        Ok(Store {
            root,
            conn: Mutex::new(conn),
        })
    }

    /// The root a kiln process uses when none is given on the command line: `KILN_ROOT`,
    /// else `/var/lib/kiln` for root, else `$XDG_DATA_HOME/kiln` (`~/.local/share/kiln`).
    pub fn default_root() -> Result<PathBuf> {
        if let Some(r) = std::env::var_os("KILN_ROOT").filter(|r| !r.is_empty()) {
            return Ok(PathBuf::from(r));
        }
        if effective_uid() == 0 {
            return Ok(PathBuf::from("/var/lib/kiln"));
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("kiln"));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(PathBuf::from(h).join(".local/share/kiln")),
            None => Err(Error::NoRoot),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Scratch space on the store's filesystem; finished work is renamed out of it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the store-wide lock called `name` (letters, digits, `-`, `_`), blocking until
    /// no other thread or process holds it.
    pub fn lock(&self, name: &str) -> Result<ProcessLock> {
        ProcessLock::acquire(self.lock_path(name)?)
    }

    /// Like [`Store::lock`] but returns `Ok(None)` instead of waiting.
    pub fn try_lock(&self, name: &str) -> Result<Option<ProcessLock>> {
        ProcessLock::try_acquire(self.lock_path(name)?)
    }

    /// Deletes `blob-*` temp files older than `max_age`, left by writers that died. Younger
    /// ones may belong to a live writer in another process.
    pub fn clean_tmp_blobs(&self, max_age: Duration) -> Result<usize> {
        let tmp = self.tmp_dir();
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(error::io_err("read dir", &tmp))? {
            let entry = entry.map_err(error::io_err("read dir", &tmp))?;
            if !entry.file_name().to_string_lossy().starts_with("blob-") {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age >= max_age);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn lock_path(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::InvalidLockName(name.to_owned()));
        }
        Ok(self.root.join("locks").join(format!("{name}.lock")))
    }

    /// The connection; a panic in another thread while holding it cannot leave SQLite in a
    /// bad state (transactions roll back on drop), so poisoning is ignored.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Effective uid without a libc dependency: the owner of `/proc/self`.
fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// A store in a fresh temporary directory, for tests (keep the directory alive).
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_layout_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root).unwrap();
        for p in ["blobs/sha256", "snapshots", "tmp", "locks", "meta.db"] {
            assert!(root.join(p).exists(), "{p} missing");
        }
        drop(store);
        let again = Store::open(&root).unwrap();
        let version: i64 = again
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = again
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn version_one_database_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("meta.db")).unwrap();
            conn.execute_batch(db::MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO snapshots (id, parent, created_ms, last_used_ms, size, label)
                 VALUES ('old', NULL, 1, 1, 5, 'from v1')",
                [],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let old = store.snapshot("old").unwrap().unwrap();
        assert_eq!(
            (old.label.as_str(), old.size, old.key),
            ("from v1", 5, None)
        );
        store.set_snapshot_key("old", "k").unwrap();
    }

    #[test]
    fn newer_schema_is_refused() {
        let (dir, store) = crate::temp_store();
        store
            .conn()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(store);
        assert!(matches!(
            Store::open(dir.path()),
            Err(Error::SchemaTooNew { .. })
        ));
    }

    #[test]
    fn lock_names_are_checked() {
        let (_dir, store) = crate::temp_store();
        assert!(store.lock("../x").is_err());
        let held = store.lock("gc").unwrap();
        assert!(store.try_lock("gc").unwrap().is_none());
        drop(held);
        assert!(store.try_lock("gc").unwrap().is_some());
    }
}
