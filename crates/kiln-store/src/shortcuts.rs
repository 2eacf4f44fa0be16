//! Whole-build short cuts: the image the last successful build of a request made, with
//! the inputs that must be unchanged for it to be the answer again, and the stat plans
//! (opaque bytes to the store) that tell cheaply whether its context reads are. Plans are
//! files named by their digest, written and deleted only while holding the database's
//! write lock, so a plan a committed short cut refers to is never deleted under it.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use crate::Store;
use crate::db::write_tx;
use crate::error::{Result, io_err};
use crate::fsutil::{now_ms, write_atomic};

impl Store {
    /// `(manifest digest, inputs JSON)` recorded for `fingerprint`.
    pub fn shortcut(&self, fingerprint: &str) -> Result<Option<(String, String)>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT manifest_digest, inputs FROM build_shortcuts WHERE fingerprint = ?1",
                [fingerprint],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    /// Records (or replaces) what `fingerprint` made. `plans` are `(digest, bytes)` of the
    /// stat plans its inputs refer to (digests `plan:<sha256 hex>`); bytes may be left out
    /// for a plan already stored, and a plan neither given nor stored is not referred to.
    pub fn record_shortcut(
        &self,
        fingerprint: &str,
        manifest_digest: &str,
        inputs: &str,
        plans: &[(&str, Option<&[u8]>)],
    ) -> Result<()> {
        let now = now_ms();
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "INSERT INTO build_shortcuts (fingerprint, manifest_digest, inputs, created_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(fingerprint) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                     inputs = excluded.inputs, created_ms = excluded.created_ms",
                params![fingerprint, manifest_digest, inputs, now],
            )?;
            let previous: Vec<String> = tx
                .prepare_cached("SELECT plan_digest FROM shortcut_plans WHERE fingerprint = ?1")?
                .query_map([fingerprint], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.execute(
                "DELETE FROM shortcut_plans WHERE fingerprint = ?1",
                [fingerprint],
            )?;
            for (digest, bytes) in plans {
                let Some(path) = self.plan_path(digest) else {
                    continue;
                };
                match bytes {
                    Some(bytes) if !path.exists() => write_atomic(&path, bytes)?,
                    None if !path.exists() => continue,
                    _ => {}
                }
                tx.execute(
                    "INSERT OR IGNORE INTO shortcut_plans (fingerprint, plan_digest)
                     VALUES (?1, ?2)",
                    params![fingerprint, digest],
                )?;
            }
            self.delete_unreferenced_plans(tx, &previous)
        })
    }

    /// The stat plan stored under `digest`.
    pub fn stat_plan(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.plan_path(digest) else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Forgets what `fingerprint` made. Rare, unlike recording, so it sweeps every plan
    /// file nothing refers to (and temp files of dead writers), as collection does.
    pub fn forget_shortcut(&self, fingerprint: &str) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "DELETE FROM build_shortcuts WHERE fingerprint = ?1",
                [fingerprint],
            )?;
            self.delete_orphan_plans(tx)
        })
    }

    /// Forgets the short cuts whose image no name points at any more (re-tagged or
    /// removed): they can never answer again, and each may hold a stat plan. Returns how
    /// many were forgotten.
    pub fn forget_dead_shortcuts(&self) -> Result<usize> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            let dead = tx.execute(
                "DELETE FROM build_shortcuts
                 WHERE manifest_digest NOT IN (SELECT manifest_digest FROM images)",
                [],
            )?;
            self.delete_orphan_plans(tx)?;
            Ok(dead)
        })
    }

    /// `plans/<hex>` for a well-formed plan digest; anything else names no file.
    fn plan_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("plan:")?;
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| self.root.join("plans").join(hex))
    }

    /// Deletes the files of those of `digests` no short cut refers to any more, inside the
    /// write transaction that dropped the references: no other process can refer to one
    /// meanwhile.
    fn delete_unreferenced_plans(
        &self,
        tx: &rusqlite::Transaction<'_>,
        digests: &[String],
    ) -> Result<()> {
        let mut referenced =
            tx.prepare_cached("SELECT 1 FROM shortcut_plans WHERE plan_digest = ?1 LIMIT 1")?;
        for digest in digests {
            let Some(path) = self.plan_path(digest) else {
                continue;
            };
            if referenced
                .query_row([digest], |_| Ok(()))
                .optional()?
                .is_none()
            {
                remove_plan_file(&path)?;
            }
        }
        Ok(())
    }

    /// Drops the references of forgotten short cuts, then deletes the plan files nothing
    /// refers to (and temp files of dead writers), inside the write transaction: no other
    /// process can refer to one meanwhile.
    fn delete_orphan_plans(&self, tx: &rusqlite::Transaction<'_>) -> Result<()> {
        tx.execute(
            "DELETE FROM shortcut_plans
             WHERE fingerprint NOT IN (SELECT fingerprint FROM build_shortcuts)",
            [],
        )?;
        let dir = self.root.join("plans");
        let entries = std::fs::read_dir(&dir).map_err(io_err("read directory", &dir))?;
        let mut referenced =
            tx.prepare_cached("SELECT 1 FROM shortcut_plans WHERE plan_digest = ?1 LIMIT 1")?;
        for entry in entries {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Anything else here is a temp file of a writer that died: plans are written
            // only under the write lock, which this transaction holds.
            let digest = format!("plan:{name}");
            let keep = self.plan_path(&digest).is_some()
                && referenced
                    .query_row([&digest], |_| Ok(()))
                    .optional()?
                    .is_some();
            if !keep {
                remove_plan_file(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn remove_plan_file(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn shortcuts_are_replaced_and_forgotten() {
        let (_dir, store) = crate::temp_store();
        assert!(store.shortcut("f").unwrap().is_none());
        store.record_shortcut("f", "sha256:a", "{}", &[]).unwrap();
        store.record_shortcut("f", "sha256:b", "[]", &[]).unwrap();
        assert_eq!(
            store.shortcut("f").unwrap(),
            Some(("sha256:b".into(), "[]".into()))
        );
        store.forget_shortcut("f").unwrap();
        assert!(store.shortcut("f").unwrap().is_none());
    }

    #[test]
    fn a_plan_lives_while_a_shortcut_refers_to_it() {
        let (_dir, store) = crate::temp_store();
        let one = format!("plan:{}", "1".repeat(64));
        let two = format!("plan:{}", "2".repeat(64));
        let plan: &[u8] = b"plan bytes";
        store
            .record_shortcut("f", "sha256:a", "{}", &[(&one, Some(plan))])
            .unwrap();
        // Shared by a second request; named without bytes, as already stored.
        store
            .record_shortcut("g", "sha256:b", "{}", &[(&one, None)])
            .unwrap();
        assert_eq!(store.stat_plan(&one).unwrap().as_deref(), Some(plan));
        // Replacing "f" with a plan-less record keeps the plan "g" still uses.
        store.record_shortcut("f", "sha256:a", "{}", &[]).unwrap();
        assert_eq!(store.stat_plan(&one).unwrap().as_deref(), Some(plan));
        store.forget_shortcut("g").unwrap();
        assert_eq!(store.stat_plan(&one).unwrap(), None);
        std::fs::write(store.root().join("plans/.x.tmp-dead"), "half").unwrap();
        store.forget_shortcut("f").unwrap();
        assert_eq!(
            std::fs::read_dir(store.root().join("plans"))
                .unwrap()
                .count(),
            0
        );
        // Naming a plan that is not stored records no dangling reference; a malformed
        // digest names no file at all.
        store
            .record_shortcut("h", "sha256:c", "{}", &[(&two, None)])
            .unwrap();
        assert_eq!(store.stat_plan(&two).unwrap(), None);
        store
            .record_shortcut("h", "sha256:c", "{}", &[("plan:../../meta.db", Some(plan))])
            .unwrap();
        assert_eq!(store.stat_plan("plan:../../meta.db").unwrap(), None);
    }

    #[test]
    fn re_recording_deletes_the_plan_it_no_longer_refers_to() {
        let (_dir, store) = crate::temp_store();
        let one = format!("plan:{}", "1".repeat(64));
        let two = format!("plan:{}", "2".repeat(64));
        store
            .record_shortcut("f", "sha256:a", "{}", &[(&one, Some(b"one"))])
            .unwrap();
        store
            .record_shortcut("f", "sha256:a", "{}", &[(&two, Some(b"two"))])
            .unwrap();
        assert_eq!(store.stat_plan(&one).unwrap(), None);
        assert_eq!(store.stat_plan(&two).unwrap().as_deref(), Some(&b"two"[..]));
        // Kept when recorded again unchanged.
        store
            .record_shortcut("f", "sha256:a", "{}", &[(&two, None)])
            .unwrap();
        assert_eq!(store.stat_plan(&two).unwrap().as_deref(), Some(&b"two"[..]));
    }

    #[test]
    fn short_cuts_to_images_no_name_points_at_are_forgotten() {
        let (_dir, store) = crate::temp_store();
        let manifest = |c: &str| crate::Digest::parse(&format!("sha256:{}", c.repeat(64))).unwrap();
        let (live, dead) = (manifest("a"), manifest("b"));
        let one = format!("plan:{}", "1".repeat(64));
        let two = format!("plan:{}", "2".repeat(64));
        store.tag("app:1", &dead).unwrap();
        let (live_text, dead_text) = (live.to_string(), dead.to_string());
        store
            .record_shortcut("old", &dead_text, "{}", &[(&two, Some(b"two"))])
            .unwrap();
        // The name moves on to a newer build.
        store.tag("app:1", &live).unwrap();
        store
            .record_shortcut("new", &live_text, "{}", &[(&one, Some(b"one"))])
            .unwrap();
        assert_eq!(store.forget_dead_shortcuts().unwrap(), 1);
        assert!(store.shortcut("old").unwrap().is_none());
        assert!(store.shortcut("new").unwrap().is_some());
        assert_eq!(store.stat_plan(&two).unwrap(), None);
        assert!(store.stat_plan(&one).unwrap().is_some());
    }
}
