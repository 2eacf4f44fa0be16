//! Opening the metadata database and migrating its schema.
//!
//! Several kiln processes share one `meta.db`: WAL lets readers run beside one writer, the
//! busy timeout makes writers queue instead of failing, and every write transaction starts
//! `IMMEDIATE` so two writers never both hold a read snapshot they then try to upgrade
//! (that deadlock returns SQLITE_BUSY at once, whatever the timeout).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

/// How long a writer waits for another process's transaction before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Schema steps; entry `i` moves the database from version `i` to `i + 1`. Append only:
/// a released step is never edited, because databases out there already ran it.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: images and snapshots.
    "CREATE TABLE images (
        name TEXT PRIMARY KEY NOT NULL,
        manifest_digest TEXT NOT NULL,
        created_ms INTEGER NOT NULL
     );
     CREATE TABLE snapshots (
        id TEXT PRIMARY KEY NOT NULL,
        parent TEXT REFERENCES snapshots(id),
        created_ms INTEGER NOT NULL,
        last_used_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        label TEXT NOT NULL
     );
     CREATE INDEX snapshots_parent ON snapshots(parent);",
    // 2: an optional unique lookup key per snapshot (an image layer's chain id, a cache
    //    key), so work already done is found again.
    "ALTER TABLE snapshots ADD COLUMN key TEXT;
     CREATE UNIQUE INDEX snapshots_key ON snapshots(key) WHERE key IS NOT NULL;",
    // 3: build cache records: an op's cache key -> the snapshot it produced, with the step
    //    it came from and the inputs that made the key, so a miss can say what changed.
    "CREATE TABLE cache_records (
        key TEXT PRIMARY KEY NOT NULL,
        snapshot TEXT,
        step TEXT NOT NULL,
        inputs TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        last_used_ms INTEGER NOT NULL
     );
     CREATE INDEX cache_records_step ON cache_records(step, created_ms);",
    // 4: content digests of build-context files with the stat data they were taken at,
    //    so an unchanged file is not read again (see `file_digests.rs`).
    "CREATE TABLE file_digests (
        root BLOB NOT NULL,
        path BLOB NOT NULL,
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (root, path)
     ) WITHOUT ROWID;",
    // 5: build roots: the snapshots the latest build of each image name ended on, which
    //    garbage collection keeps (with their parent chains) unless told to prune all.
    "CREATE TABLE build_roots (
        name TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (name, snapshot)
     ) WITHOUT ROWID;
     CREATE INDEX build_roots_snapshot ON build_roots(snapshot);",
    // 6: whole-build short cuts: a build request's fingerprint -> the image it made and
    //    the inputs (image digests, context checksums) that must still hold to reuse it.
    "CREATE TABLE build_shortcuts (
        fingerprint TEXT PRIMARY KEY NOT NULL,
        manifest_digest TEXT NOT NULL,
        inputs TEXT NOT NULL,
        created_ms INTEGER NOT NULL
     );",
    // 7: images resolved from registries: a reference (per platform) -> the manifest it
    //    named when last looked up and the repository its blobs are fetched from. The
    //    manifest and config blobs are stored; layers are fetched when first needed.
    "CREATE TABLE pulled_images (
        reference TEXT NOT NULL,
        platform TEXT NOT NULL,
        manifest_digest TEXT NOT NULL,
        repository TEXT NOT NULL,
        resolved_ms INTEGER NOT NULL,
        PRIMARY KEY (reference, platform)
     ) WITHOUT ROWID;
     CREATE INDEX pulled_images_manifest ON pulled_images(manifest_digest);",
    // 8: cache mount directories with the time a step last mounted each, for garbage
    //    collection's least-recently-used order.
    "CREATE TABLE cache_mounts (
        key TEXT PRIMARY KEY NOT NULL,
        id TEXT NOT NULL,
        last_used_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 9: which stat plans (files under `plans/`: what a context checksum's walk observed,
    //    checked by the short cut instead of walking again) each short cut refers to; a
    //    plan no short cut refers to is deleted with the last reference.
    "CREATE TABLE shortcut_plans (
        fingerprint TEXT NOT NULL,
        plan_digest TEXT NOT NULL,
        PRIMARY KEY (fingerprint, plan_digest)
     ) WITHOUT ROWID;
     CREATE INDEX shortcut_plans_plan ON shortcut_plans(plan_digest);",
];

/// The schema version this build of kiln writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Switching to WAL needs a moment of exclusive access; the caller holds the store's
    // schema lock so concurrent opens do not trip over each other here.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal(mode));
    }
    // NORMAL in WAL mode never corrupts; a power cut can lose the last commits, which for
    // build metadata only costs a rebuild.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // Up to date, the common case, needs no write lock (a no-op build opens the store
    // and must not queue behind a running build's writes).
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    write_tx(conn, |tx| {
        // Read inside the write lock: another process may have migrated since we looked.
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let done = usize::try_from(found).unwrap_or(0);
        for (i, step) in MIGRATIONS.iter().enumerate().skip(done) {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        Ok(())
    })
}

/// Runs `f` inside an IMMEDIATE transaction, committing on `Ok`.
pub(crate) fn write_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}
