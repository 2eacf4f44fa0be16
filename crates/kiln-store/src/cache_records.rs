//! Build cache records: which snapshot an op with a given cache key produced. A record is
//! only trusted while its snapshot exists; a record whose snapshot was removed is dead.

use rusqlite::{OptionalExtension, Row, params};

use crate::Store;
use crate::db::write_tx;
use crate::error::Result;
use crate::fsutil::now_ms;

/// One cache record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    pub key: String,
    /// The snapshot the op produced; `None` for an op whose result is the empty filesystem.
    pub snapshot: Option<String>,
    /// A stable name of the step that made it (file, stage, position), for explanations.
    pub step: String,
    /// The inputs the key was computed from, as JSON, for explanations.
    pub inputs: String,
    pub created_ms: i64,
    pub last_used_ms: i64,
}

const SELECT: &str =
    "SELECT key, snapshot, step, inputs, created_ms, last_used_ms FROM cache_records";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CacheRecord> {
    Ok(CacheRecord {
        key: row.get(0)?,
        snapshot: row.get(1)?,
        step: row.get(2)?,
        inputs: row.get(3)?,
        created_ms: row.get(4)?,
        last_used_ms: row.get(5)?,
    })
}

impl Store {
    /// The live record for `key`, marking it used. A record whose snapshot is gone (a
    /// crash between removing a snapshot and its record, or GC) is removed and `None`.
    pub fn cache_lookup(&self, key: &str) -> Result<Option<CacheRecord>> {
        let found = {
            let conn = self.conn();
            conn.query_row(&format!("{SELECT} WHERE key = ?1"), [key], from_row)
                .optional()?
        };
        let Some(record) = found else { return Ok(None) };
        if let Some(id) = &record.snapshot
            && self.snapshot(id)?.is_none()
        {
            self.cache_remove(key)?;
            return Ok(None);
        }
        let now = now_ms();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "UPDATE cache_records SET last_used_ms = ?2 WHERE key = ?1",
                params![key, now],
            )?;
            Ok(())
        })?;
        if let Some(id) = &record.snapshot {
            drop(conn);
            self.touch_snapshots(&[id])?;
        }
        Ok(Some(CacheRecord {
            last_used_ms: now,
            ..record
        }))
    }

    /// Records that `key` produced `snapshot`. The snapshot must already be committed, so
    /// a record never points at something half-written.
    pub fn cache_insert(
        &self,
        key: &str,
        snapshot: Option<&str>,
        step: &str,
        inputs: &str,
    ) -> Result<()> {
        self.cache_insert_created(key, snapshot, step, inputs, now_ms())
    }

    /// Like [`Store::cache_insert`] for a result first made at `created_ms` elsewhere (a
    /// remote cache record): images built from it keep that date, and so their digest.
    pub fn cache_insert_created(
        &self,
        key: &str,
        snapshot: Option<&str>,
        step: &str,
        inputs: &str,
        created_ms: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "INSERT INTO cache_records (key, snapshot, step, inputs, created_ms, last_used_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(key) DO UPDATE SET snapshot = excluded.snapshot, last_used_ms = excluded.last_used_ms",
                params![key, snapshot, step, inputs, created_ms, now],
            )?;
            Ok(())
        })
    }

    /// The most recent record made by `step` whose key is not `except`.
    pub fn cache_latest_for_step(&self, step: &str, except: &str) -> Result<Option<CacheRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("{SELECT} WHERE step = ?1 AND key != ?2 ORDER BY created_ms DESC, rowid DESC LIMIT 1"),
                params![step, except],
                from_row,
            )
            .optional()?)
    }

    pub fn cache_remove(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            Ok(tx.execute("DELETE FROM cache_records WHERE key = ?1", [key])? > 0)
        })
    }

    pub fn cache_records(&self) -> Result<Vec<CacheRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY last_used_ms"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn records_live_only_while_their_snapshot_does() {
        let (_dir, store) = crate::temp_store();
        let id = store.new_snapshot_id();
        std::fs::create_dir_all(store.snapshot_dir(&id).unwrap()).unwrap();
        store.add_snapshot(&id, None, 0, "test").unwrap();
        store
            .cache_insert("k1", Some(&id), "Dockerfile#[a 1/2]", "{}")
            .unwrap();
        store
            .cache_insert("k0", None, "Dockerfile#[a 0/2]", "{}")
            .unwrap();
        assert_eq!(
            store
                .cache_lookup("k1")
                .unwrap()
                .unwrap()
                .snapshot
                .as_deref(),
            Some(id.as_str())
        );
        assert!(
            store
                .cache_lookup("k0")
                .unwrap()
                .unwrap()
                .snapshot
                .is_none()
        );
        assert!(store.cache_lookup("nope").unwrap().is_none());
        store
            .cache_insert("k2", Some(&id), "Dockerfile#[a 1/2]", "{\"x\":1}")
            .unwrap();
        let latest = store
            .cache_latest_for_step("Dockerfile#[a 1/2]", "k3")
            .unwrap()
            .unwrap();
        assert_eq!(latest.key, "k2");
        // A record whose snapshot is gone is dead and removed on lookup. (remove_snapshot
        // takes the records along; a crash or an older kiln left the row alone.)
        store
            .conn()
            .execute("DELETE FROM snapshots WHERE id = ?1", [&id])
            .unwrap();
        assert!(store.cache_lookup("k2").unwrap().is_none());
        assert!(store.cache_records().unwrap().iter().all(|r| r.key != "k2"));
    }
}
