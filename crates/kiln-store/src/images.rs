//! The images table: a name (`repo:tag`) points at a manifest digest.

use rusqlite::{OptionalExtension, params};

use crate::db::write_tx;
use crate::error::{Error, Result};
use crate::fsutil::now_ms;
use crate::{Digest, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub manifest: Digest,
    /// When the name was last pointed at this manifest, ms since the Unix epoch.
    pub created_ms: i64,
}

impl Store {
    /// Points `name` at `manifest`, replacing what it pointed at before.
    pub fn tag(&self, name: &str, manifest: &Digest) -> Result<()> {
        check_name(name)?;
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            tx.execute(
                "INSERT INTO images (name, manifest_digest, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                                                created_ms = excluded.created_ms",
                params![name, manifest.to_string(), now_ms()],
            )?;
            Ok(())
        })
    }

    pub fn resolve(&self, name: &str) -> Result<Option<ImageRecord>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT name, manifest_digest, created_ms FROM images WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(to_record).transpose()
    }

    /// All images, sorted by name.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name, manifest_digest, created_ms FROM images ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(to_record(row?)?);
        }
        Ok(out)
    }

    /// Removes a name; `Ok(false)` if it did not exist. The blobs stay (garbage collection
    /// decides what is unreferenced).
    pub fn remove_image(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        write_tx(&mut conn, |tx| {
            Ok(tx.execute("DELETE FROM images WHERE name = ?1", [name])? > 0)
        })
    }
}

fn to_record((name, digest, created_ms): (String, String, i64)) -> Result<ImageRecord> {
    Ok(ImageRecord {
        name,
        manifest: Digest::parse(&digest)?,
        created_ms,
    })
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidImageName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_resolve_retag_list_remove() {
        let (_dir, store) = crate::temp_store();
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        assert_eq!(store.resolve("app:1").unwrap(), None);
        store.tag("app:1", &a).unwrap();
        store.tag("base:latest", &a).unwrap();
        assert_eq!(store.resolve("app:1").unwrap().unwrap().manifest, a);
        store.tag("app:1", &b).unwrap();
        assert_eq!(store.resolve("app:1").unwrap().unwrap().manifest, b);
        let names: Vec<_> = store
            .list_images()
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["app:1", "base:latest"]);
        assert!(store.remove_image("app:1").unwrap());
        assert!(!store.remove_image("app:1").unwrap());
        assert_eq!(store.list_images().unwrap().len(), 1);
        assert!(store.tag("bad name", &a).is_err());
    }
}
