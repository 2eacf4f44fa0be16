//! Removing one thing safely. Rows go before files: a snapshot's row, its cache records and
//! build roots leave in one transaction, then its directory is renamed into `tmp/gc-*` (one
//! atomic step, so no reader sees half a layer) and deleted. A crash at any point leaves
//! at worst a `tmp/gc-*` directory, which the next prune empties.

use std::fs;
use std::path::Path;

use super::scan::du;
use super::{GcError, RecordKind, UsageRecord};
use crate::fsutil::{now_ms, random_hex};
use crate::{Digest, Error, Store};

const TRASH_PREFIX: &str = "gc-";

/// Removes `record`; `Ok(false)` when it changed since it was counted (used again, gained
/// a child, locked by a running step) or is already gone, and so was left alone.
pub(super) fn remove(store: &Store, record: &UsageRecord) -> Result<bool, GcError> {
    match record.kind {
        RecordKind::Snapshot => remove_snapshot(store, record),
        RecordKind::Blob => {
            let digest = Digest::parse(&record.id)?;
            Ok(store.remove_blob(&digest)?)
        }
        RecordKind::CacheMount => remove_cache_mount(store, record),
    }
}

fn remove_snapshot(store: &Store, record: &UsageRecord) -> Result<bool, GcError> {
    let dir = store.snapshot_dir(&record.id)?;
    // The snapshotter commits and removes under this lock too.
    let _guard = store.lock("snapshots")?;
    // Gone, or used by a build (a cache hit touches the record) since it was counted.
    match store.snapshot_last_use(&record.id)? {
        Some(used) if used <= record.last_used_ms => {}
        _ => return Ok(false),
    }
    match store.remove_snapshot(&record.id) {
        Ok(existed) => {
            to_trash(store, &dir)?;
            Ok(existed)
        }
        Err(Error::SnapshotHasChildren { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn remove_cache_mount(store: &Store, record: &UsageRecord) -> Result<bool, GcError> {
    let name = record.id.as_str();
    // The solver names these sha256 hex; anything else under cache-mounts/ is not ours.
    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(false);
    }
    // Every step using a cache mount holds this lock (shared or exclusive) while it runs.
    let Some(_lock) = store.try_lock_cache_mount(name)? else {
        return Ok(false);
    };
    // Mounted since it was counted: no longer the least recently used.
    let used_since = store
        .cache_mounts()?
        .iter()
        .any(|m| m.key == name && m.last_used_ms > record.last_used_ms);
    let dir = store.root().join("cache-mounts").join(name);
    if used_since || !dir.exists() {
        return Ok(false);
    }
    to_trash(store, &dir)?;
    store.forget_cache_mount(name)?;
    Ok(true)
}

/// Snapshot directories without a row: a crash between moving a finished layer into place
/// and recording it. Removed under the snapshot lock, which that window holds.
pub(super) fn orphan_dirs(store: &Store) -> Result<super::PruneReport, GcError> {
    let mut report = super::PruneReport::default();
    let dir = store.snapshots_dir();
    let names: Vec<String> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => return Err(GcError::io("read dir", &dir, e)),
    };
    if names.is_empty() {
        return Ok(report);
    }
    let _guard = store.lock("snapshots")?;
    let known: std::collections::HashSet<String> =
        store.list_snapshots()?.into_iter().map(|s| s.id).collect();
    for name in names.into_iter().filter(|n| !known.contains(n)) {
        let path = dir.join(&name);
        let (size, last_used_ms) = du(&path)?;
        to_trash(store, &path)?;
        report.reclaimed += size;
        report.removed.push(UsageRecord {
            id: name,
            kind: RecordKind::Snapshot,
            size,
            last_used_ms,
            shared: false,
            reclaimable: true,
            in_use: false,
            parent: None,
            description: "snapshot directory without a record".to_owned(),
        });
    }
    Ok(report)
}

/// Moves `path` out of sight in one rename, then deletes it.
fn to_trash(store: &Store, path: &Path) -> Result<(), GcError> {
    let trash = store
        .tmp_dir()
        .join(format!("{TRASH_PREFIX}{}-{}", now_ms(), random_hex(4)));
    match fs::rename(path, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(GcError::io("rename", path, e)),
    }
    remove_tree(&trash)
}

/// Deletes what earlier prunes left in `tmp/gc-*` (a crash or a permission error).
pub(super) fn empty_trash(store: &Store) -> Result<(), GcError> {
    let tmp = store.tmp_dir();
    let entries = fs::read_dir(&tmp).map_err(|e| GcError::io("read dir", &tmp, e))?;
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(TRASH_PREFIX)
        {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), GcError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(GcError::io("remove", path, e)),
    }
}
