//! Garbage collection: what the store holds ([`usage`]) and removing what is least
//! recently used and not kept by anything ([`prune`]), with buildkitd's policy knobs.
//!
//! Kept unless a policy says `all`: the parent chains of the snapshots each tagged image's
//! latest build ended on ([`Store::record_build_root`]). Always kept: blobs reachable from
//! the images table, snapshots under a live overlay mount and anything used in the last
//! [`IN_USE_GRACE`] (kiln has no daemon tracking which build holds what, so a snapshot
//! found by a cache lookup a moment ago may be about to be mounted). Cache mount
//! directories go only with `all` or with a policy that names their type and an age.
//! See `docs/gc.md`.

mod fsstat;
mod remove;
mod roots;
mod scan;
mod units;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use fsstat::{FsSpace, fs_space};
pub use roots::BuildRoot;
pub use units::{Space, format_size, parse_duration, parse_space};

use crate::Store;
use crate::fsutil::now_ms;

/// Anything used more recently than this is never collected: it may belong to a build
/// that is between finding it and mounting it.
pub const IN_USE_GRACE: Duration = Duration::from_secs(60);

/// Errors of usage accounting and pruning.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] crate::Error),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid size {0:?} (expected bytes, 512MB, 10GB or 20%)")]
    InvalidSize(String),
    #[error("invalid duration {0:?} (expected e.g. 90s, 48h or 1h30m)")]
    InvalidDuration(String),
    #[error("invalid record type {0:?} (expected regular, exec.cachemount or blob)")]
    InvalidKind(String),
    #[error("cannot read the size of the filesystem holding {}: {source}", path.display())]
    FsStat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl GcError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        GcError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a usage record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A layer directory under `snapshots/` (build steps and unpacked image layers).
    Snapshot,
    /// A `RUN --mount=type=cache` directory under `cache-mounts/`.
    CacheMount,
    /// A file under `blobs/sha256/`.
    Blob,
}

impl RecordKind {
    /// Reads a `type=` filter value: buildkit's names (`regular`, `exec.cachemount`) or
    /// kiln's (`snapshot`, `cache-mount`, `blob`).
    pub fn parse(text: &str) -> Result<RecordKind, GcError> {
        match text {
            "regular" | "snapshot" => Ok(RecordKind::Snapshot),
            "exec.cachemount" | "cache-mount" => Ok(RecordKind::CacheMount),
            "blob" => Ok(RecordKind::Blob),
            other => Err(GcError::InvalidKind(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Snapshot => "snapshot",
            RecordKind::CacheMount => "exec.cachemount",
            RecordKind::Blob => "blob",
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filter as buildkit writes them, `KEY==VALUE` or `KEY=VALUE`, split into key and value;
/// `None` without either sign.
pub fn split_filter(filter: &str) -> Option<(&str, &str)> {
    filter.split_once("==").or_else(|| filter.split_once('='))
}

/// One thing taking space in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Snapshot id, `sha256:<hex>` of a blob, or a cache mount directory's name.
    pub id: String,
    pub kind: RecordKind,
    /// Bytes on disk (a snapshot: this layer alone, not its parents).
    pub size: u64,
    /// Last use, ms since the epoch (a snapshot: it or any cache record pointing at it).
    pub last_used_ms: i64,
    /// Other things depend on it: a snapshot other snapshots build on or that several
    /// records use, a blob several images share.
    pub shared: bool,
    /// Whether `kiln prune` without `--all` could remove it (not kept by a build root, a
    /// mount or an image).
    pub reclaimable: bool,
    /// Under a live overlay mount right now.
    pub in_use: bool,
    pub parent: Option<String>,
    /// The step that made it, or the snapshot's label.
    pub description: String,
}

/// Everything the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Least recently used first.
    pub records: Vec<UsageRecord>,
    pub total: u64,
    pub reclaimable: u64,
}

/// What to collect; the fields mean what buildkitd's gc policy settings mean.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrunePolicy {
    /// Also collect what build roots keep and cache mount directories.
    pub all: bool,
    /// Only collect what was last used longer ago than this (`--filter until=`).
    pub keep_duration: Option<Duration>,
    /// Never collect below this much total usage.
    pub reserved_space: Option<Space>,
    /// Collect until total usage is at most this.
    pub max_used_space: Option<Space>,
    /// Collect until the store's filesystem has this much free.
    pub min_free_space: Option<Space>,
    /// `--keep-storage`, the older name of `reserved_space` (the larger of both counts).
    pub keep_storage: Option<Space>,
    /// Only these kinds (`--filter type=`); empty means all.
    pub kinds: Vec<RecordKind>,
}

impl PrunePolicy {
    fn needs_fs(&self) -> bool {
        let pct = |s: &Option<Space>| matches!(s, Some(Space::Percent(_)));
        self.min_free_space.is_some()
            || pct(&self.reserved_space)
            || pct(&self.max_used_space)
            || pct(&self.keep_storage)
    }

    /// Total usage to collect down to, or `None` to collect every candidate.
    fn target(&self, total: u64, fs: Option<FsSpace>) -> Option<u64> {
        let fs_total = fs.map_or(0, |f| f.total);
        let resolve = |s: &Option<Space>| s.map(|s| s.resolve(fs_total));
        let floor = match (resolve(&self.reserved_space), resolve(&self.keep_storage)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut ceiling = resolve(&self.max_used_space);
        if let (Some(want), Some(fs)) = (resolve(&self.min_free_space), fs) {
            // Removing n bytes frees n bytes: usage may stay at total + free - want.
            let limit = total.saturating_add(fs.free).saturating_sub(want);
            ceiling = Some(ceiling.map_or(limit, |c| c.min(limit)));
        }
        match (ceiling, floor) {
            (None, floor) => floor,
            (Some(c), floor) => Some(c.max(floor.unwrap_or(0))),
        }
    }

    fn allows_kind(&self, kind: RecordKind) -> bool {
        let listed = self.kinds.is_empty() || self.kinds.contains(&kind);
        match kind {
            // Cache mounts hold what a step chose to keep between builds (package caches,
            // compiler caches); only an explicit request or old age lets them go.
            RecordKind::CacheMount => {
                self.all
                    || (self.kinds.contains(&RecordKind::CacheMount)
                        && self.keep_duration.is_some())
            }
            _ => listed,
        }
    }
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// In removal order.
    pub removed: Vec<UsageRecord>,
    pub reclaimed: u64,
}

impl PruneReport {
    pub fn extend(&mut self, other: PruneReport) {
        self.removed.extend(other.removed);
        self.reclaimed += other.reclaimed;
    }
}

/// Everything the store holds, least recently used first. Measures and stores the size
/// of snapshots recorded without one.
pub fn usage(store: &Store) -> Result<Usage, GcError> {
    let mut records = scan::inventory(store)?.records;
    records.sort_by(|a, b| (a.last_used_ms, &a.id).cmp(&(b.last_used_ms, &b.id)));
    let total = records.iter().map(|r| r.size).sum();
    let reclaimable = records
        .iter()
        .filter(|r| r.reclaimable)
        .map(|r| r.size)
        .sum();
    Ok(Usage {
        records,
        total,
        reclaimable,
    })
}

/// Removes what `policy` allows, least recently used first, until its size limits are met.
/// Snapshots go leaves first, each with its cache records in one transaction.
pub fn prune(store: &Store, policy: &PrunePolicy) -> Result<PruneReport, GcError> {
    prune_policies(store, std::slice::from_ref(policy))
}

/// [`prune`] with each policy in turn, under one hold of the gc lock and with the
/// housekeeping (trash, dangling references, dead short cuts, orphan directories) done
/// once: policies remove only rows and files that leave nothing for it to do again.
pub fn prune_policies(store: &Store, policies: &[PrunePolicy]) -> Result<PruneReport, GcError> {
    let _gc = store.lock("gc")?;
    remove::empty_trash(store)?;
    store.forget_dangling_refs()?;
    store.forget_dead_shortcuts()?;
    let mut report = remove::orphan_dirs(store)?;
    let mut inv: Option<scan::Inventory> = None;
    for policy in policies {
        // A policy that removed something changed sizes, parents and roots: take stock
        // again. One that removed nothing left the stock as it was.
        let current = match inv.take() {
            Some(inv) => inv,
            None => scan::inventory(store)?,
        };
        let removed = apply_policy(store, &current, policy)?;
        if removed.removed.is_empty() {
            inv = Some(current);
        }
        report.extend(removed);
    }
    Ok(report)
}

/// One policy's removals from the stock `inv` taken under the gc lock.
fn apply_policy(
    store: &Store,
    inv: &scan::Inventory,
    policy: &PrunePolicy,
) -> Result<PruneReport, GcError> {
    let mut report = PruneReport::default();
    let now = now_ms();
    let fs = if policy.needs_fs() {
        Some(fs_space(store.root())?)
    } else {
        None
    };
    let mut total: u64 = inv.records.iter().map(|r| r.size).sum();
    let target = policy.target(total, fs);

    // A snapshot is as recent as anything built on it, and goes after its children.
    let snaps: Vec<&UsageRecord> = inv
        .records
        .iter()
        .filter(|r| r.kind == RecordKind::Snapshot)
        .collect();
    let parent_of: HashMap<&str, &str> = snaps
        .iter()
        .filter_map(|r| Some((r.id.as_str(), r.parent.as_deref()?)))
        .collect();
    let depth = |id: &str| {
        let (mut d, mut cur) = (0usize, id);
        while let Some(p) = parent_of.get(cur) {
            d += 1;
            cur = p;
            if d > crate::MAX_CHAIN_DEPTH {
                break;
            }
        }
        d
    };
    let mut by_depth: Vec<(&UsageRecord, usize)> =
        snaps.iter().map(|r| (*r, depth(&r.id))).collect();
    by_depth.sort_by_key(|a| std::cmp::Reverse(a.1));
    let mut effective: HashMap<&str, i64> = snaps
        .iter()
        .map(|r| (r.id.as_str(), r.last_used_ms))
        .collect();
    let mut children: HashMap<&str, usize> = HashMap::new();
    for (r, _) in &by_depth {
        if let Some(p) = r.parent.as_deref() {
            let mine = effective.get(r.id.as_str()).copied().unwrap_or(0);
            if let Some(e) = effective.get_mut(p) {
                *e = (*e).max(mine);
            }
            *children.entry(p).or_default() += 1;
        }
    }
    let depths: HashMap<&str, usize> = by_depth.iter().map(|(r, d)| (r.id.as_str(), *d)).collect();

    let grace_ms = i64::try_from(IN_USE_GRACE.as_millis()).unwrap_or(i64::MAX);
    let keep_ms = policy
        .keep_duration
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut candidates: Vec<(&UsageRecord, i64, usize)> = inv
        .records
        .iter()
        .filter(|r| policy.allows_kind(r.kind))
        .filter(|r| match r.kind {
            RecordKind::Snapshot => {
                !inv.mounted.contains(&r.id) && (policy.all || !inv.rooted.contains(&r.id))
            }
            RecordKind::Blob => r.reclaimable,
            RecordKind::CacheMount => !r.in_use,
        })
        .map(|r| {
            let used = effective
                .get(r.id.as_str())
                .copied()
                .unwrap_or(r.last_used_ms);
            (r, used, depths.get(r.id.as_str()).copied().unwrap_or(0))
        })
        .filter(|(_, used, _)| now.saturating_sub(*used) >= grace_ms)
        .filter(|(_, used, _)| keep_ms.is_none_or(|k| now.saturating_sub(*used) >= k))
        .collect();
    candidates.sort_by(|a, b| {
        (a.1, std::cmp::Reverse(a.2), &a.0.id).cmp(&(b.1, std::cmp::Reverse(b.2), &b.0.id))
    });

    for (record, _, _) in candidates {
        if target.is_some_and(|t| total <= t) {
            break;
        }
        if record.kind == RecordKind::Snapshot
            && children.get(record.id.as_str()).copied().unwrap_or(0) > 0
        {
            continue;
        }
        if !remove::remove(store, record)? {
            continue;
        }
        total = total.saturating_sub(record.size);
        if let Some(p) = record.parent.as_deref()
            && let Some(n) = children.get_mut(p)
        {
            *n = n.saturating_sub(1);
        }
        report.reclaimed += record.size;
        report.removed.push(record.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
