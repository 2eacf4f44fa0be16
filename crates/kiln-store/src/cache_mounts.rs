//! `RUN --mount=type=cache` directories (`cache-mounts/<sha256 of id>`): when a step last
//! used each, and the lock a step holds while it does, so garbage collection takes them
//! least recently used first and never while one is mounted.

use rusqlite::params;

use crate::Store;
use crate::db::write_tx;
use crate::error::Result;
use crate::fsutil::now_ms;
use crate::lock::ProcessLock;

/// What the store knows about one cache mount directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMountRecord {
    /// The directory's name: the sha256 hex of `id`.
    pub key: String,
    /// The `id=` of the mount (its target path when none was given).
    pub id: String,
    /// When a step last mounted it, ms since the epoch.
    pub last_used_ms: i64,
}

impl Store {
    /// Marks the cache mount `key` as used now by a step, and holds its lock until the
    /// returned guard is dropped: exclusive for `sharing=private|locked` steps (which
    /// wait for each other), shared for `sharing=shared` ones. Garbage collection needs
    /// the lock exclusively, so it never removes a mount a step holds.
    pub fn use_cache_mount(&self, key: &str, id: &str, exclusive: bool) -> Result<ProcessLock> {
        let path = self.lock_path(&cache_mount_lock(key))?;
        let lock = if exclusive {
            ProcessLock::acquire(path)?
        } else {
            ProcessLock::acquire_shared(path)?
        };
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "INSERT INTO cache_mounts (key, id, last_used_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET id = excluded.id,
                     last_used_ms = MAX(last_used_ms, excluded.last_used_ms)",
                params![key, id, now_ms()],
            )?;
            Ok(())
        })?;
        Ok(lock)
    }

    /// Takes the lock of cache mount `key` for removing it; `Ok(None)` while a step
    /// holds it.
    pub fn try_lock_cache_mount(&self, key: &str) -> Result<Option<ProcessLock>> {
        self.try_lock(&cache_mount_lock(key))
    }

    /// Every cache mount a step has used (directories made before use times were kept
    /// have none).
    pub fn cache_mounts(&self) -> Result<Vec<CacheMountRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT key, id, last_used_ms FROM cache_mounts ORDER BY key")?;
        let rows = stmt.query_map([], |r| {
            Ok(CacheMountRecord {
                key: r.get(0)?,
                id: r.get(1)?,
                last_used_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Forgets cache mount `key` (its directory was removed).
    pub fn forget_cache_mount(&self, key: &str) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute("DELETE FROM cache_mounts WHERE key = ?1", [key])?;
            Ok(())
        })
    }
}

/// The lock name of a cache mount: its key's first half is unique enough and keeps lock
/// file names short.
fn cache_mount_lock(key: &str) -> String {
    format!("cache-{}", key.get(..32).unwrap_or(key))
}

#[cfg(test)]
mod tests {

    #[test]
    fn use_is_recorded_and_shared_users_exclude_removal() {
        let (_dir, store) = crate::temp_store();
        let key = "cd".repeat(32);
        let first = store.use_cache_mount(&key, "/root/.cache", false).unwrap();
        let second = store.use_cache_mount(&key, "/root/.cache", false).unwrap();
        let records = store.cache_mounts().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].id, "/root/.cache");
        assert!(records[0].last_used_ms > 0);
        assert!(store.try_lock_cache_mount(&key).unwrap().is_none());
        drop(first);
        assert!(store.try_lock_cache_mount(&key).unwrap().is_none());
        drop(second);
        assert!(store.try_lock_cache_mount(&key).unwrap().is_some());
        store.forget_cache_mount(&key).unwrap();
        assert!(store.cache_mounts().unwrap().is_empty());
    }
}
