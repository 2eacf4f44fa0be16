//! Build roots: for each image name, the snapshots its latest build ended on. Garbage
//! collection keeps them and their parent chains unless told to prune everything, so the
//! next build of a tagged image finds its cache however old it is.

use rusqlite::{OptionalExtension, params};

use crate::Store;
use crate::db::write_tx;
use crate::error::{Error, Result};
use crate::fsutil::now_ms;

/// One build root row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRoot {
    /// The image name as stored in the images table (e.g. `docker.io/library/app:latest`).
    pub name: String,
    pub snapshot: String,
    pub updated_ms: i64,
}

impl Store {
    /// Records that the latest build of image `name` ended on `snapshots` (the top of each
    /// final chain; ancestors may be listed too), replacing what the previous build of that
    /// name recorded. An empty list forgets the name. Every snapshot must exist.
    pub fn record_build_root(&self, name: &str, snapshots: &[&str]) -> Result<()> {
        let now = now_ms();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute("DELETE FROM build_roots WHERE name = ?1", [name])?;
            let mut exists = tx.prepare("SELECT EXISTS(SELECT 1 FROM snapshots WHERE id = ?1)")?;
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO build_roots (name, snapshot, updated_ms) VALUES (?1, ?2, ?3)",
            )?;
            for id in snapshots {
                if !exists.query_row([id], |r| r.get::<_, bool>(0))? {
                    return Err(Error::SnapshotNotFound((*id).to_owned()));
                }
                insert.execute(params![name, id, now])?;
            }
            Ok(())
        })
    }

    /// Forgets the build root of `name`; `Ok(false)` if there was none.
    pub fn remove_build_root(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            Ok(tx.execute("DELETE FROM build_roots WHERE name = ?1", [name])? > 0)
        })
    }

    /// Every build root row, by name then snapshot.
    pub fn build_roots(&self) -> Result<Vec<BuildRoot>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, snapshot, updated_ms FROM build_roots ORDER BY name, snapshot",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(BuildRoot {
                name: r.get(0)?,
                snapshot: r.get(1)?,
                updated_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets when snapshot `id` (and the cache records pointing at it) was last used, in ms
    /// since the epoch. For imports of old state and for tests of age-based pruning.
    pub fn set_snapshot_last_used(&self, id: &str, last_used_ms: i64) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            let n = tx.execute(
                "UPDATE snapshots SET last_used_ms = ?2 WHERE id = ?1",
                params![id, last_used_ms],
            )?;
            if n == 0 {
                return Err(Error::SnapshotNotFound(id.to_owned()));
            }
            tx.execute(
                "UPDATE cache_records SET last_used_ms = ?2 WHERE snapshot = ?1",
                params![id, last_used_ms],
            )?;
            Ok(())
        })
    }

    /// When snapshot `id` or a cache record pointing at it was last used; `None` if the
    /// snapshot is gone.
    pub(crate) fn snapshot_last_use(&self, id: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        let found: Option<i64> = conn
            .query_row(
                "SELECT MAX(s.last_used_ms, COALESCE(
                     (SELECT MAX(last_used_ms) FROM cache_records WHERE snapshot = s.id), 0))
                 FROM snapshots s WHERE s.id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found)
    }

    /// Stores a measured size for snapshot `id` (rows written without one say 0).
    pub(crate) fn set_snapshot_size(&self, id: &str, size: u64) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "UPDATE snapshots SET size = ?2 WHERE id = ?1",
                params![id, i64::try_from(size).unwrap_or(i64::MAX)],
            )?;
            Ok(())
        })
    }

    /// Removes cache records and build roots naming snapshots that no longer exist (left by
    /// a crash or by an older kiln that removed snapshots alone). Returns how many.
    pub(crate) fn forget_dangling_refs(&self) -> Result<usize> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            let a = tx.execute(
                "DELETE FROM cache_records WHERE snapshot IS NOT NULL
                 AND snapshot NOT IN (SELECT id FROM snapshots)",
                [],
            )?;
            let b = tx.execute(
                "DELETE FROM build_roots WHERE snapshot NOT IN (SELECT id FROM snapshots)",
                [],
            )?;
            Ok(a + b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_replace_per_name_and_need_existing_snapshots() {
        let (_dir, store) = crate::temp_store();
        store.add_snapshot("a", None, 1, "x").unwrap();
        store.add_snapshot("b", Some("a"), 1, "y").unwrap();
        store.record_build_root("app:1", &["a"]).unwrap();
        store.record_build_root("app:1", &["b"]).unwrap();
        let roots = store.build_roots().unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(
            (roots[0].name.as_str(), roots[0].snapshot.as_str()),
            ("app:1", "b")
        );
        assert!(matches!(
            store.record_build_root("app:1", &["zz"]),
            Err(Error::SnapshotNotFound(_))
        ));
        // The failed call changed nothing.
        assert_eq!(store.build_roots().unwrap().len(), 1);
        assert!(store.remove_build_root("app:1").unwrap());
        assert!(store.build_roots().unwrap().is_empty());
    }

    #[test]
    fn forgetting_a_snapshot_takes_its_records_and_roots_along() {
        let (_dir, store) = crate::temp_store();
        store.add_snapshot("a", None, 1, "x").unwrap();
        store.add_snapshot("b", Some("a"), 1, "y").unwrap();
        store.cache_insert("k", Some("b"), "step", "{}").unwrap();
        store.record_build_root("app:1", &["b"]).unwrap();
        assert!(store.remove_snapshot("a").is_err());
        assert!(store.remove_snapshot("b").unwrap());
        assert!(store.cache_records().unwrap().is_empty());
        assert!(store.build_roots().unwrap().is_empty());
        store.set_snapshot_last_used("a", 5).unwrap();
        assert_eq!(store.snapshot("a").unwrap().unwrap().last_used_ms, 5);
        store.cache_insert("k", Some("a"), "step", "{}").unwrap();
        assert!(store.snapshot_last_use("a").unwrap().unwrap() > 5);
        assert_eq!(store.snapshot_last_use("b").unwrap(), None);
    }
}
