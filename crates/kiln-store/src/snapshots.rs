//! The snapshots table: one row per committed filesystem layer under `snapshots/<id>/`.
//!
//! The worker owns what is inside a snapshot directory; the store records who is whose
//! parent, how big it is, what made it, and when it was last used (for pruning).

use std::path::PathBuf;

use rusqlite::{OptionalExtension, Row, params};

use crate::Store;
use crate::db::write_tx;
use crate::error::{Error, Result};
use crate::fsutil::{now_ms, random_hex};

/// Deeper chains are refused: overlayfs itself stacks at most 500 lowerdirs, and the limit
/// turns a corrupted parent loop into an error instead of endless recursion.
pub const MAX_CHAIN_DEPTH: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub id: String,
    pub parent: Option<String>,
    pub created_ms: i64,
    pub last_used_ms: i64,
    /// Bytes of this layer alone (not its parents).
    pub size: u64,
    /// What made it, e.g. `RUN apt-get update` or `layer sha256:…`.
    pub label: String,
    /// Optional unique lookup key (e.g. an image layer's chain id or a build cache key).
    pub key: Option<String>,
}

impl Store {
    /// A fresh id, short on purpose: overlay mount options list every lower layer by path
    /// and must fit in one page.
    pub fn new_snapshot_id(&self) -> String {
        random_hex(6)
    }

    /// `snapshots/<id>`, the directory the worker fills.
    pub fn snapshot_dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.snapshots_dir().join(id))
    }

    /// Records a snapshot whose directory is already complete. The parent must exist.
    pub fn add_snapshot(
        &self,
        id: &str,
        parent: Option<&str>,
        size: u64,
        label: &str,
    ) -> Result<SnapshotRecord> {
        check_id(id)?;
        let now = now_ms();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            if let Some(p) = parent {
                let exists: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM snapshots WHERE id = ?1)",
                    [p],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Err(Error::SnapshotNotFound(p.to_owned()));
                }
            }
            let size_db = i64::try_from(size).unwrap_or(i64::MAX);
            match tx.execute(
                "INSERT INTO snapshots (id, parent, created_ms, last_used_ms, size, label)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                params![id, parent, now, size_db, label],
            ) {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(Error::SnapshotExists(id.to_owned()))
                }
                Err(e) => Err(e.into()),
            }
        })?;
        Ok(SnapshotRecord {
            id: id.to_owned(),
            parent: parent.map(str::to_owned),
            created_ms: now,
            last_used_ms: now,
            size,
            label: label.to_owned(),
            key: None,
        })
    }

    /// Gives snapshot `id` the lookup `key` (replacing its previous key). A key names at
    /// most one snapshot.
    pub fn set_snapshot_key(&self, id: &str, key: &str) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            match tx.execute(
                "UPDATE snapshots SET key = ?2 WHERE id = ?1",
                params![id, key],
            ) {
                Ok(0) => Err(Error::SnapshotNotFound(id.to_owned())),
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(Error::SnapshotKeyTaken(key.to_owned()))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The snapshot carrying lookup `key`, if any.
    pub fn snapshot_by_key(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(&format!("{SELECT} WHERE key = ?1"), [key], from_row)
            .optional()?)
    }

    pub fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(&format!("{SELECT} WHERE id = ?1"), [id], from_row)
            .optional()?)
    }

    /// The snapshot and all its ancestors, `id` first and the base layer last.
    pub fn snapshot_chain(&self, id: &str) -> Result<Vec<SnapshotRecord>> {
        let conn = self.conn();
        // Walk in one read transaction so a concurrent delete cannot tear the chain.
        let mut stmt = conn.prepare(&format!("{SELECT} WHERE id = ?1"))?;
        let mut chain: Vec<SnapshotRecord> = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(cur) = next {
            if chain.len() >= MAX_CHAIN_DEPTH {
                return Err(Error::SnapshotChainTooDeep(id.to_owned()));
            }
            let rec = stmt
                .query_row([&cur], from_row)
                .optional()?
                .ok_or(Error::SnapshotNotFound(cur))?;
            next = rec.parent.clone();
            chain.push(rec);
        }
        Ok(chain)
    }

    pub fn list_snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY created_ms, id"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn snapshot_children(&self, id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM snapshots WHERE parent = ?1 ORDER BY id")?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks snapshots as used now (for least-recently-used pruning).
    pub fn touch_snapshots(&self, ids: &[&str]) -> Result<()> {
        let now = now_ms();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            let mut stmt = tx.prepare("UPDATE snapshots SET last_used_ms = ?1 WHERE id = ?2")?;
            for id in ids {
                stmt.execute(params![now, id])?;
            }
            Ok(())
        })
    }

    /// Forgets a snapshot that nothing builds on, together with everything that points at
    /// it (its cache records and build root rows) in one transaction, so no row ever names
    /// a missing snapshot; the caller deletes its directory after. `Ok(false)` if it did
    /// not exist.
    pub fn remove_snapshot(&self, id: &str) -> Result<bool> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            let children: i64 = tx.query_row(
                "SELECT COUNT(*) FROM snapshots WHERE parent = ?1",
                [id],
                |r| r.get(0),
            )?;
            let children = u64::try_from(children).unwrap_or(0);
            if children > 0 {
                return Err(Error::SnapshotHasChildren {
                    id: id.to_owned(),
                    children,
                });
            }
            tx.execute("DELETE FROM cache_records WHERE snapshot = ?1", [id])?;
            tx.execute("DELETE FROM build_roots WHERE snapshot = ?1", [id])?;
            Ok(tx.execute("DELETE FROM snapshots WHERE id = ?1", [id])? > 0)
        })
    }
}

const SELECT: &str = "SELECT id, parent, created_ms, last_used_ms, size, label, key FROM snapshots";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SnapshotRecord> {
    Ok(SnapshotRecord {
        id: r.get(0)?,
        parent: r.get(1)?,
        created_ms: r.get(2)?,
        last_used_ms: r.get(3)?,
        size: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        label: r.get(5)?,
        key: r.get(6)?,
    })
}

/// Ids become directory names, so only a safe alphabet is allowed.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSnapshotId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_children_and_removal_order() {
        let (_dir, store) = crate::temp_store();
        let base = store.new_snapshot_id();
        let mid = store.new_snapshot_id();
        let top = store.new_snapshot_id();
        store.add_snapshot(&base, None, 10, "layer base").unwrap();
        store
            .add_snapshot(&mid, Some(&base), 20, "RUN one")
            .unwrap();
        store.add_snapshot(&top, Some(&mid), 30, "RUN two").unwrap();
        let chain: Vec<_> = store
            .snapshot_chain(&top)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(chain, [top.clone(), mid.clone(), base.clone()]);
        assert_eq!(
            store.snapshot_children(&base).unwrap(),
            std::slice::from_ref(&mid)
        );
        assert!(matches!(
            store.remove_snapshot(&mid),
            Err(Error::SnapshotHasChildren { .. })
        ));
        assert!(store.remove_snapshot(&top).unwrap());
        assert!(store.remove_snapshot(&mid).unwrap());
        assert!(matches!(
            store.snapshot_chain(&mid),
            Err(Error::SnapshotNotFound(_))
        ));
        assert_eq!(store.snapshot(&base).unwrap().unwrap().size, 10);
    }

    #[test]
    fn refuses_missing_parent_duplicate_and_unsafe_ids() {
        let (_dir, store) = crate::temp_store();
        assert!(matches!(
            store.add_snapshot("a", Some("nope"), 0, "x"),
            Err(Error::SnapshotNotFound(_))
        ));
        store.add_snapshot("a", None, 0, "x").unwrap();
        assert!(matches!(
            store.add_snapshot("a", None, 0, "x"),
            Err(Error::SnapshotExists(_))
        ));
        assert!(store.add_snapshot("../etc", None, 0, "x").is_err());
        assert!(store.snapshot_dir("a/b").is_err());
    }

    #[test]
    fn keys_find_snapshots_and_are_unique() {
        let (_dir, store) = crate::temp_store();
        store.add_snapshot("a", None, 0, "x").unwrap();
        store.add_snapshot("b", Some("a"), 0, "y").unwrap();
        assert_eq!(store.snapshot_by_key("sha256:chain").unwrap(), None);
        store.set_snapshot_key("a", "sha256:chain").unwrap();
        assert_eq!(
            store.snapshot_by_key("sha256:chain").unwrap().unwrap().id,
            "a"
        );
        assert!(matches!(
            store.set_snapshot_key("b", "sha256:chain"),
            Err(Error::SnapshotKeyTaken(_))
        ));
        assert!(matches!(
            store.set_snapshot_key("zz", "k"),
            Err(Error::SnapshotNotFound(_))
        ));
        store.set_snapshot_key("a", "other").unwrap();
        assert_eq!(store.snapshot_by_key("sha256:chain").unwrap(), None);
        assert_eq!(
            store.snapshot("a").unwrap().unwrap().key.as_deref(),
            Some("other")
        );
    }

    #[test]
    fn touch_updates_last_used() {
        let (_dir, store) = crate::temp_store();
        let rec = store.add_snapshot("a", None, 0, "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.touch_snapshots(&["a"]).unwrap();
        assert!(store.snapshot("a").unwrap().unwrap().last_used_ms > rec.last_used_ms);
    }
}
