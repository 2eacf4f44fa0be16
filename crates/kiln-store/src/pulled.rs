//! Images resolved from registries. A `FROM` of a registry image stores its manifest and
//! config and remembers which manifest the reference named; layers are fetched later, only
//! when a step needs the filesystem or an export needs the bytes. Later builds reuse the
//! resolution until `--pull` asks the registry again.

use rusqlite::{OptionalExtension, params};

use crate::db::write_tx;
use crate::error::Result;
use crate::fsutil::now_ms;
use crate::{Digest, Store};

/// What a reference resolved to when it was last looked up in its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    pub reference: String,
    pub platform: String,
    pub manifest: Digest,
    /// `registry/repository` the blobs come from.
    pub repository: String,
    pub resolved_ms: i64,
}

impl Store {
    pub fn record_pulled_image(
        &self,
        reference: &str,
        platform: &str,
        manifest: &Digest,
        repository: &str,
    ) -> Result<()> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "INSERT INTO pulled_images (reference, platform, manifest_digest, repository, resolved_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(reference, platform) DO UPDATE SET
                     manifest_digest = excluded.manifest_digest,
                     repository = excluded.repository,
                     resolved_ms = excluded.resolved_ms",
                params![reference, platform, manifest.to_string(), repository, now_ms()],
            )?;
            Ok(())
        })
    }

    pub fn pulled_image(&self, reference: &str, platform: &str) -> Result<Option<PulledImage>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT manifest_digest, repository, resolved_ms FROM pulled_images
                 WHERE reference = ?1 AND platform = ?2",
                params![reference, platform],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(manifest, repository, resolved_ms)| {
            Ok(PulledImage {
                reference: reference.to_owned(),
                platform: platform.to_owned(),
                manifest: Digest::parse(&manifest)?,
                repository,
                resolved_ms,
            })
        })
        .transpose()
    }

    /// The manifests `reference` resolved to when last looked up, one per platform.
    pub fn pulled_manifests_of(&self, reference: &str) -> Result<Vec<Digest>> {
        self.query_digests(
            "SELECT manifest_digest FROM pulled_images WHERE reference = ?1",
            [reference],
        )
    }

    /// The repository a pulled manifest's blobs can be fetched from, if it was pulled.
    pub fn pulled_repository(&self, manifest: &Digest) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT repository FROM pulled_images WHERE manifest_digest = ?1
                 ORDER BY resolved_ms DESC LIMIT 1",
                [manifest.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every pulled manifest digest: garbage collection keeps their blobs as it keeps
    /// images'.
    pub fn pulled_manifests(&self) -> Result<Vec<Digest>> {
        self.query_digests("SELECT DISTINCT manifest_digest FROM pulled_images", [])
    }

    /// The digests in the first column of `sql`'s rows.
    fn query_digests(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Digest>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
        rows.map(|row| Digest::parse(&row?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::Digest;

    #[test]
    fn a_new_resolution_replaces_the_old_one() {
        let (_dir, store) = crate::temp_store();
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        assert!(
            store
                .pulled_image("r/x:1", "linux/amd64")
                .unwrap()
                .is_none()
        );
        store
            .record_pulled_image("r/x:1", "linux/amd64", &a, "r/x")
            .unwrap();
        store
            .record_pulled_image("r/x:1", "linux/amd64", &b, "r/x")
            .unwrap();
        let found = store.pulled_image("r/x:1", "linux/amd64").unwrap().unwrap();
        assert_eq!(found.manifest, b);
        assert_eq!(found.repository, "r/x");
        assert!(
            store
                .pulled_image("r/x:1", "linux/arm64")
                .unwrap()
                .is_none()
        );
        assert_eq!(store.pulled_repository(&b).unwrap().as_deref(), Some("r/x"));
        assert_eq!(store.pulled_repository(&a).unwrap(), None);
        assert_eq!(store.pulled_manifests().unwrap(), vec![b.clone()]);
        assert_eq!(store.pulled_manifests_of("r/x:1").unwrap(), vec![b]);
        assert!(store.pulled_manifests_of("r/y:1").unwrap().is_empty());
    }
}
