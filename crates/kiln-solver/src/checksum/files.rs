//! Content digests of the covered files, read only when the store has no digest taken at
//! exactly the file's current stat data in this same context root.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_store::{Digest, FileDigestRecord, FileIdentity, Store};
use sha2::{Digest as _, Sha256};

use super::ChecksumError;
use super::parallel::parallel_in_order;
use super::select::{Collector, Stat};

/// A file whose timestamps are this close to the moment it was read is not remembered:
/// a write in the same clock tick (filesystem timestamps advance in ticks, up to a
/// second on some) would leave the stat data unchanged with different content.
pub(super) const RACY_WINDOW: Duration = Duration::from_secs(1);

/// Most threads reading files at once.
const MAX_READERS: usize = 8;

pub(super) struct ContentDigests {
    /// One per collected entry, in the collector's order; `None` for non-files.
    pub digests: Vec<Option<Digest>>,
    pub hashed: usize,
    pub reused: usize,
}

/// Digests of every regular file the collector covers, reusing remembered ones, then
/// brings the store's records for `root` up to date in one transaction.
pub(super) fn content_digests(
    store: &Store,
    root: &Path,
    found: &Collector<'_>,
) -> Result<ContentDigests, ChecksumError> {
    let mut remembered: HashMap<Vec<u8>, (FileIdentity, Digest)> = store
        .file_digests(root)?
        .into_iter()
        .map(|r| (r.path, (r.identity, r.digest)))
        .collect();
    let mut digests = Vec::with_capacity(found.entries.len());
    let mut to_read = Vec::new();
    let mut removed = Vec::new();
    for (at, (rel, entry)) in found.entries.iter().enumerate() {
        let record = remembered.remove(rel.as_slice());
        if !entry.meta.is_file() {
            if record.is_some() {
                removed.push(rel.clone());
            }
            digests.push(None);
            continue;
        }
        match record {
            Some((known, digest)) if known == entry.meta.identity => digests.push(Some(digest)),
            stale => {
                to_read.push((at, rel, &entry.meta, stale.is_some()));
                digests.push(None);
            }
        }
    }
    let reused = digests.iter().flatten().count();
    removed.extend(remembered.into_keys().filter(|rel| vanished(found, rel)));

    let results = read_all(root, &to_read)?;
    let mut upserts = Vec::new();
    for ((at, rel, _, had_record), read) in to_read.iter().zip(results) {
        match read.remember {
            Some(identity) => upserts.push(FileDigestRecord {
                path: rel.to_vec(),
                identity,
                digest: read.digest.clone(),
            }),
            None if *had_record => removed.push(rel.to_vec()),
            None => {}
        }
        digests[*at] = Some(read.digest);
    }
    store.update_file_digests(root, &upserts, &removed)?;
    Ok(ContentDigests {
        digests,
        hashed: to_read.len(),
        reused,
    })
}

/// Whether a remembered file the walk did not cover is gone. Only files below a listed
/// directory are looked at: elsewhere the walk did not go, so it cannot tell, and the
/// record stays (it is only ever trusted on an exact stat match anyway).
fn vanished(found: &Collector<'_>, rel: &[u8]) -> bool {
    let listed_above = rel
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(at, _)| &rel[..at])
        .chain([&rel[..0]])
        .any(|dir| found.listed_dirs.contains_key(dir));
    listed_above
        && matches!(
            std::fs::symlink_metadata(found.root().join(std::ffi::OsStr::from_bytes(rel))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        )
}

struct ReadResult {
    digest: Digest,
    /// The identity to remember the digest under; `None` when it must not be trusted.
    remember: Option<FileIdentity>,
}

/// Reads and hashes `files` on a few threads; results in the order of `files`.
fn read_all(
    root: &Path,
    files: &[(usize, &Vec<u8>, &Stat, bool)],
) -> Result<Vec<ReadResult>, ChecksumError> {
    let readers = super::select::cores().clamp(1, MAX_READERS);
    parallel_in_order(files, readers, |(_, rel, meta, _)| {
        read_one(&root.join(std::ffi::OsStr::from_bytes(rel)), meta)
    })
}

fn read_one(path: &Path, seen: &Stat) -> Result<ReadResult, ChecksumError> {
    let started = SystemTime::now();
    let mut file = File::open(path).map_err(ChecksumError::io("open", path))?;
    let before = file.metadata().map_err(ChecksumError::io("stat", path))?;
    // Not the file the walk saw (replaced, or now a symlink to elsewhere): hashing it
    // would describe something the walk did not cover.
    if (before.dev(), before.ino()) != (seen.identity.dev, seen.identity.ino) || !before.is_file() {
        return Err(ChecksumError::Changed {
            path: path.to_path_buf(),
        });
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ChecksumError::io("read", path)(e)),
        };
        hasher.update(&buf[..n]);
    }
    let after = file.metadata().map_err(ChecksumError::io("stat", path))?;
    let digest = Digest::from_hex(&hex::encode(hasher.finalize()))?;
    let (before, after) = (identity(&before), identity(&after));
    let settled = nanos_since_epoch(started).is_some_and(|now| {
        before.mtime_ns.max(before.ctime_ns) < now - RACY_WINDOW.as_nanos() as i64
    });
    Ok(ReadResult {
        digest,
        remember: (before == after && settled).then_some(before),
    })
}

pub(super) fn identity(meta: &Metadata) -> FileIdentity {
    FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
    }
}

pub(super) fn nanos_since_epoch(t: SystemTime) -> Option<i64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_frontend::dockerignore::IgnoreMatcher;

    #[test]
    fn vanished_only_when_a_listing_lacks_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/kept"), "x").unwrap();
        let none = IgnoreMatcher::default();
        let mut found = Collector::new(dir.path(), &none, &none);
        found.add_source("a").unwrap();
        assert!(!vanished(&found, b"a/b/kept"));
        assert!(vanished(&found, b"a/b/gone"));
        assert!(vanished(&found, b"a/gone/deeper"));
        // The root was not listed: "a" was named directly.
        assert!(!vanished(&found, b"other/file"));
        assert!(!vanished(&found, b"top"));
    }
}
