//! Whole-build short cuts: the image the last successful build of a request made, with
//! the inputs that must be unchanged for it to be the answer again.

use rusqlite::{OptionalExtension, params};

use crate::Store;
use crate::db::write_tx;
use crate::error::Result;
use crate::fsutil::now_ms;

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

    pub fn record_shortcut(
        &self,
        fingerprint: &str,
        manifest_digest: &str,
        inputs: &str,
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
            Ok(())
        })
    }

    pub fn forget_shortcut(&self, fingerprint: &str) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "DELETE FROM build_shortcuts WHERE fingerprint = ?1",
                [fingerprint],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn shortcuts_are_replaced_and_forgotten() {
        let (_dir, store) = crate::temp_store();
        assert!(store.shortcut("f").unwrap().is_none());
        store.record_shortcut("f", "sha256:a", "{}").unwrap();
        store.record_shortcut("f", "sha256:b", "[]").unwrap();
        assert_eq!(
            store.shortcut("f").unwrap(),
            Some(("sha256:b".into(), "[]".into()))
        );
        store.forget_shortcut("f").unwrap();
        assert!(store.shortcut("f").unwrap().is_none());
    }
}
