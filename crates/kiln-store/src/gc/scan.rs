//! Taking stock of the store: every snapshot, blob and cache mount with its size, when it
//! was last used, and whether something keeps it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::{GcError, RecordKind, UsageRecord};
use crate::{Digest, MAX_CHAIN_DEPTH, Store};

/// Only blobs this small are read when looking for the digests a manifest, index or config
/// names; layers are larger and never JSON.
const MAX_SCANNED_BLOB: u64 = 4 << 20;

/// The stock of one store, with what pruning needs beyond the public records.
pub(super) struct Inventory {
    pub records: Vec<UsageRecord>,
    /// Snapshots kept by build roots of tagged images (with their ancestors).
    pub rooted: HashSet<String>,
    /// Snapshots under a live overlay mount (with their ancestors): never removed.
    pub mounted: HashSet<String>,
}

pub(super) fn inventory(store: &Store) -> Result<Inventory, GcError> {
    let snapshots = store.list_snapshots()?;
    let cache = store.cache_records()?;
    let images = store.list_images()?;
    let image_names: HashSet<&str> = images.iter().map(|i| i.name.as_str()).collect();
    let roots = store.build_roots()?;

    let parents: HashMap<&str, Option<&str>> = snapshots
        .iter()
        .map(|s| (s.id.as_str(), s.parent.as_deref()))
        .collect();
    let rooted = with_ancestors(
        roots
            .iter()
            .filter(|r| image_names.contains(r.name.as_str()))
            .map(|r| r.snapshot.as_str()),
        &parents,
    );
    let live = mounted_snapshot_ids();
    let mounted = with_ancestors(live.iter().map(String::as_str), &parents);

    let mut children: HashMap<&str, usize> = HashMap::new();
    for s in &snapshots {
        if let Some(p) = &s.parent {
            *children.entry(p.as_str()).or_default() += 1;
        }
    }
    let mut users: HashMap<&str, (usize, i64, Vec<&str>)> = HashMap::new();
    for r in &cache {
        if let Some(id) = &r.snapshot {
            let u = users.entry(id.as_str()).or_default();
            u.0 += 1;
            u.1 = u.1.max(r.last_used_ms);
            if !r.step.is_empty() {
                u.2.push(r.step.as_str());
            }
        }
    }
    for r in &roots {
        users.entry(r.snapshot.as_str()).or_default().0 += 1;
    }

    let mut records = Vec::new();
    for s in &snapshots {
        let (refs, used, steps) = users.get(s.id.as_str()).cloned().unwrap_or_default();
        let kids = children.get(s.id.as_str()).copied().unwrap_or(0);
        let mut size = s.size;
        if size == 0 {
            // Rows written before sizes were measured say 0; measure once and remember.
            let dir = store.snapshot_dir(&s.id)?;
            if dir.exists() {
                size = du(&dir)?.0;
                if size > 0 {
                    store.set_snapshot_size(&s.id, size)?;
                }
            }
        }
        let description = match steps.first() {
            Some(step) if steps.len() > 1 => format!("{step} (+{} more)", steps.len() - 1),
            Some(step) => (*step).to_owned(),
            None => s.label.clone(),
        };
        records.push(UsageRecord {
            id: s.id.clone(),
            kind: RecordKind::Snapshot,
            size,
            last_used_ms: s.last_used_ms.max(used),
            shared: kids > 0 || refs > 1,
            reclaimable: !rooted.contains(&s.id) && !mounted.contains(&s.id),
            in_use: mounted.contains(&s.id),
            parent: s.parent.clone(),
            description,
        });
    }

    let referenced = referenced_blobs(store, &images)?;
    for entry in read_dir_or_empty(&store.blobs_dir())? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(digest) = Digest::parse(&format!("sha256:{name}")) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        let users = referenced.get(&digest).copied().unwrap_or(0);
        records.push(UsageRecord {
            id: digest.to_string(),
            kind: RecordKind::Blob,
            size: meta.len(),
            last_used_ms: mtime_ms(&meta),
            shared: users > 1,
            reclaimable: users == 0,
            in_use: false,
            parent: None,
            description: if users == 0 {
                "blob no image refers to".to_owned()
            } else {
                format!("blob of {users} image(s)")
            },
        });
    }

    let mounts: HashMap<String, crate::CacheMountRecord> = store
        .cache_mounts()?
        .into_iter()
        .map(|m| (m.key.clone(), m))
        .collect();
    for entry in read_dir_or_empty(&store.root().join("cache-mounts"))? {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let key = entry.file_name().to_string_lossy().into_owned();
        // Last used: when a step last mounted it, or wrote to it (directories from before
        // use times were recorded have only the latter).
        let (size, newest_write_ms) = du(&path)?;
        let record = mounts.get(&key);
        let in_use = store.try_lock_cache_mount(&key)?.is_none();
        records.push(UsageRecord {
            id: key,
            kind: RecordKind::CacheMount,
            size,
            last_used_ms: record.map_or(newest_write_ms, |r| r.last_used_ms.max(newest_write_ms)),
            shared: false,
            reclaimable: !in_use,
            in_use,
            parent: None,
            description: match record {
                Some(r) => format!("RUN --mount=type=cache,id={}", r.id),
                None => "RUN --mount=type=cache directory".to_owned(),
            },
        });
    }

    Ok(Inventory {
        records,
        rooted,
        mounted,
    })
}

/// The given snapshots and every ancestor of them.
fn with_ancestors<'a>(
    start: impl Iterator<Item = &'a str>,
    parents: &HashMap<&'a str, Option<&'a str>>,
) -> HashSet<String> {
    let mut out = HashSet::new();
    for id in start {
        let mut cur = Some(id);
        let mut depth = 0;
        while let Some(c) = cur {
            // A parent loop (corruption) must not hang the collector.
            if !out.insert(c.to_owned()) || depth > MAX_CHAIN_DEPTH {
                break;
            }
            depth += 1;
            cur = parents.get(c).copied().flatten();
        }
    }
    out
}

/// Blobs reachable from the images table, each with how many images reach it. Manifests
/// and indexes are JSON that names its children by digest; every `sha256:<hex>` in them is
/// taken as a reference, which can only keep more than needed, never less.
fn referenced_blobs(
    store: &Store,
    images: &[crate::ImageRecord],
) -> Result<HashMap<Digest, usize>, GcError> {
    let mut counts: HashMap<Digest, usize> = HashMap::new();
    let mut manifests: HashSet<Digest> = HashSet::new();
    // Base images pulled from registries count as images: their blobs are what later
    // builds use offline, until `--pull` asks the registry again.
    let pulled = store.pulled_manifests()?;
    for manifest in images.iter().map(|i| &i.manifest).chain(pulled.iter()) {
        // Several names of one manifest are one image.
        if !manifests.insert(manifest.clone()) {
            continue;
        }
        let mut seen = HashSet::new();
        let mut queue = vec![manifest.clone()];
        while let Some(d) = queue.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            *counts.entry(d.clone()).or_default() += 1;
            queue.extend(digests_in(store, &d));
        }
    }
    Ok(counts)
}

fn digests_in(store: &Store, digest: &Digest) -> Vec<Digest> {
    let path = store.blob_path(digest);
    let Ok(file) = fs::File::open(&path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if file
        .take(MAX_SCANNED_BLOB + 1)
        .read_to_end(&mut bytes)
        .is_err()
        || bytes.len() as u64 > MAX_SCANNED_BLOB
        || bytes.first() != Some(&b'{')
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    text.match_indices("sha256:")
        .filter_map(|(i, _)| text.get(i..i + 71))
        .filter_map(|s| Digest::parse(s).ok())
        .collect()
}

/// Snapshot ids named in the options of overlay mounts of this mount namespace: layers a
/// running build is using right now, in any kiln process.
fn mounted_snapshot_ids() -> HashSet<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut ids = HashSet::new();
    for line in text.lines().filter(|l| l.contains(" overlay ")) {
        for (i, _) in line.match_indices("snapshots/") {
            let rest = &line[i + "snapshots/".len()..];
            if let Some(end) = rest.find('/')
                && rest[end..].starts_with("/fs")
            {
                ids.insert(rest[..end].to_owned());
            }
        }
    }
    ids
}

/// Bytes allocated under `path` (hard links once) and the latest mtime seen, in ms.
pub(super) fn du(path: &Path) -> Result<(u64, i64), GcError> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut newest = 0i64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(GcError::io("stat", &p, e)),
        };
        newest = newest.max(mtime_ms(&meta));
        if meta.nlink() < 2 || meta.is_dir() || seen.insert((meta.dev(), meta.ino())) {
            total = total.saturating_add(meta.blocks().saturating_mul(512));
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&p).map_err(|e| GcError::io("read dir", &p, e))? {
                stack.push(entry.map_err(|e| GcError::io("read dir", &p, e))?.path());
            }
        }
    }
    Ok((total, newest))
}

fn mtime_ms(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>, GcError> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GcError::io("read dir", dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(GcError::io("read dir", dir, e)),
    }
}
