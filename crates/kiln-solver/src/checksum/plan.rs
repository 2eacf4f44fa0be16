//! Stat plans: what a checksum's walk observed, recorded so that a later build can tell
//! "nothing this selection covers changed" with one `statx` per recorded path and no
//! listing, sorting, hashing or store lookup. The whole-build short cut checks these.
//!
//! A plan names every path the walk looked at: the sources looked up by name, every
//! directory whose listing was read (its stat taken *before* the listing), and every
//! covered entry; grouped by directory, each group with a digest of what `lstat` said
//! about its names (or that they were absent). Digests rather than the stat data keep a
//! plan small: it is read whole on every no-op build. The plan holds when each group's
//! names still stat to the same digest. That is enough because:
//! - a file's content, mode, owner and link target cannot change without its ctime
//!   changing, and ctime cannot be set back by any caller (the stat cache in `files.rs`
//!   places the same trust in stat data);
//! - a directory's listing cannot change (an entry created, removed or renamed) without
//!   its mtime and ctime changing, so an unchanged directory has the names it had, and
//!   what those names were filtered to (`.dockerignore`, `--exclude`, wildcards) is the
//!   same function of the same names and the same selection.
//!
//! No plan is made when a write could hide inside one timestamp tick (any stat within
//! [`RACY_WINDOW`] of the walk), when the walk saw one path two different ways (it
//! changed while being walked), or when a source was resolved through a symlink (the
//! resolution reads paths the plan does not record). The caller then checksums in full.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::files::{RACY_WINDOW, nanos_since_epoch};
use super::parallel::parallel_in_order;
use super::select::{Collector, Stat, cores};
use super::{Selection, canonical_root};
use kiln_store::FileIdentity;

const MAGIC: &[u8] = b"kiln stat plan v2\0";

/// Most paths checked by one work item; bounds how unevenly a huge directory splits.
const GROUP_LIMIT: usize = 256;

/// Names by the directory they are in (`""`: the root), each with what `lstat` said
/// (`None`: absent); the root itself is `"."` in `""`.
type Groups<'a> = BTreeMap<&'a [u8], Vec<(&'a [u8], Option<Stat>)>>;

/// A recorded plan and its digest (`plan:<sha256 hex>` of the bytes), by which the
/// store keeps one copy however many short cuts share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatPlan {
    pub digest: String,
    pub bytes: Arc<[u8]>,
}

impl StatPlan {
    fn new(bytes: Vec<u8>) -> StatPlan {
        StatPlan {
            digest: format!("plan:{}", hex::encode(Sha256::digest(&bytes))),
            bytes: bytes.into(),
        }
    }
}

/// The plan of what a walk that started at `walked_at` observed; `None` when its stat
/// data cannot vouch for the walk (see the module doc).
pub(super) fn of_walk(
    root: &Path,
    selection: &Selection,
    found: &Collector<'_>,
    walked_at: SystemTime,
) -> Option<StatPlan> {
    if found.followed_symlink {
        return None;
    }
    let settled_before = nanos_since_epoch(walked_at)? - RACY_WINDOW.as_nanos() as i64;
    let mut seen: BTreeMap<&[u8], Option<Stat>> = BTreeMap::new();
    let observed = found
        .looked_up
        .iter()
        .map(|(rel, stat)| (rel.as_slice(), *stat))
        .chain(
            found
                .listed_dirs
                .iter()
                .map(|(rel, s)| (rel.as_slice(), Some(*s))),
        )
        .chain(
            found
                .entries
                .iter()
                .map(|(rel, f)| (rel.as_slice(), Some(f.meta))),
        );
    for (rel, stat) in observed {
        if let Some(s) = stat
            && s.identity.mtime_ns.max(s.identity.ctime_ns) >= settled_before
        {
            return None;
        }
        if *seen.entry(rel).or_insert(stat) != stat {
            return None;
        }
    }
    let mut groups: Groups<'_> = BTreeMap::new();
    for (rel, stat) in seen {
        let (parent, name) = match rel.iter().rposition(|b| *b == b'/') {
            Some(at) => (&rel[..at], &rel[at + 1..]),
            None if rel.is_empty() => (rel, &b"."[..]),
            None => (&rel[..0], rel),
        };
        groups.entry(parent).or_default().push((name, stat));
    }
    Some(StatPlan::new(encode(root, selection, &groups)))
}

fn encode(root: &Path, selection: &Selection, groups: &Groups<'_>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, root.as_os_str().as_bytes());
    put_bytes(&mut out, &serde_json::to_vec(selection).unwrap_or_default());
    let chunks: Vec<_> = groups
        .iter()
        .flat_map(|(parent, children)| children.chunks(GROUP_LIMIT).map(move |c| (*parent, c)))
        .collect();
    put_u32(&mut out, chunks.len());
    for (parent, children) in chunks {
        let mut group = Vec::new();
        group.extend_from_slice(parent);
        group.push(0);
        put_u32(&mut group, children.len());
        let mut stats = Sha256::new();
        for (name, stat) in children {
            group.extend_from_slice(name);
            group.push(0);
            digest_stat(&mut stats, stat.as_ref());
        }
        group.extend_from_slice(&stats.finalize());
        put_bytes(&mut out, &group);
    }
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Adds what `lstat` said about one name (`None`: absent) to its group's digest.
fn digest_stat(hasher: &mut Sha256, stat: Option<&Stat>) {
    let Some(stat) = stat else {
        hasher.update([0]);
        return;
    };
    let id = &stat.identity;
    let mut bytes = [0u8; 1 + 4 * 3 + 8 * 6];
    bytes[0] = 1;
    bytes[1..5].copy_from_slice(&stat.mode.to_le_bytes());
    bytes[5..9].copy_from_slice(&stat.uid.to_le_bytes());
    bytes[9..13].copy_from_slice(&stat.gid.to_le_bytes());
    bytes[13..21].copy_from_slice(&stat.rdev.to_le_bytes());
    bytes[21..29].copy_from_slice(&id.dev.to_le_bytes());
    bytes[29..37].copy_from_slice(&id.ino.to_le_bytes());
    bytes[37..45].copy_from_slice(&id.size.to_le_bytes());
    bytes[45..53].copy_from_slice(&id.mtime_ns.to_le_bytes());
    bytes[53..61].copy_from_slice(&id.ctime_ns.to_le_bytes());
    hasher.update(bytes);
}

/// Reads a plan's bytes; every read is checked, so a damaged plan reads as `None`.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<usize> {
        let raw = self.take(4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    }

    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }

    /// A NUL-terminated name, terminator included (ready for a system call).
    fn name(&mut self) -> Option<&'a CStr> {
        let end = self.bytes.iter().position(|b| *b == 0)?;
        CStr::from_bytes_with_nul(self.take(end + 1)?).ok()
    }
}

/// Whether everything `plan` recorded of `selection` in `root` still stats the same, so
/// a checksum taken now would equal the one the plan was recorded with. Any doubt (a
/// damaged plan, an error other than a recorded absence) answers `false`.
pub fn plan_holds(root: &Path, selection: &Selection, plan: &[u8]) -> bool {
    let Some((root, groups)) = parse_header(root, selection, plan) else {
        return false;
    };
    let Ok(root) = std::fs::File::open(root) else {
        return false;
    };
    let root = root.as_raw_fd();
    let threads = cores().min(groups.len() / 4 + 1);
    parallel_in_order(&groups, threads, |group| {
        if group_holds(root, group) {
            Ok(())
        } else {
            Err(())
        }
    })
    .is_ok()
}

/// The canonical root and the groups of a plan recorded for this root and selection.
fn parse_header<'a>(
    root: &Path,
    selection: &Selection,
    plan: &'a [u8],
) -> Option<(PathBuf, Vec<&'a [u8]>)> {
    let mut reader = Reader { bytes: plan };
    if reader.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let canonical = canonical_root(root).ok()?;
    if reader.sized()? != canonical.as_os_str().as_bytes() {
        return None;
    }
    if reader.sized()? != serde_json::to_vec(selection).ok()?.as_slice() {
        return None;
    }
    let count = reader.u32()?;
    let groups = (0..count)
        .map(|_| reader.sized())
        .collect::<Option<Vec<_>>>()?;
    reader.bytes.is_empty().then_some((canonical, groups))
}

fn group_holds(root: libc::c_int, group: &[u8]) -> bool {
    let mut reader = Reader { bytes: group };
    let (Some(parent), Some(count)) = (reader.name(), reader.u32()) else {
        return false;
    };
    // `None`: the directory is missing, so each of its names is absent.
    let dir = match open_dir(root, parent) {
        Ok(dir) => Some(dir),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(_) => return false,
    };
    let dirfd = dir.as_ref().map(AsRawFd::as_raw_fd);
    let mut stats = Sha256::new();
    for _ in 0..count {
        let Some(name) = reader.name() else {
            return false;
        };
        let now = match dirfd.map(|fd| statx(fd, name)) {
            Some(Ok(stat)) => Some(stat),
            None => None,
            Some(Err(e)) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Some(Err(_)) => return false,
        };
        digest_stat(&mut stats, now.as_ref());
    }
    reader.bytes == stats.finalize().as_slice()
}

/// `parent` below the root (empty: the root itself) as a directory handle; not through
/// a symlink, which a recorded directory never is.
fn open_dir(root: libc::c_int, parent: &CStr) -> std::io::Result<OwnedFd> {
    let path = if parent.is_empty() { c"." } else { parent };
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated and outlives the call; a returned descriptor is
    // owned by nothing else.
    let fd = unsafe { libc::openat(root, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `lstat` of `name` in `dirfd`, as the walk records it (the same device numbering as
/// the standard library's, so recorded and fresh values compare).
fn statx(dirfd: libc::c_int, name: &CStr) -> std::io::Result<Stat> {
    let mask = libc::STATX_TYPE
        | libc::STATX_MODE
        | libc::STATX_UID
        | libc::STATX_GID
        | libc::STATX_INO
        | libc::STATX_SIZE
        | libc::STATX_MTIME
        | libc::STATX_CTIME;
    // SAFETY: an all-zero statx is a valid value of the plain-data struct.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `buf` is writable and both outlive the call.
    let rc = unsafe {
        libc::statx(
            dirfd,
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            &mut buf,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let nanos =
        |t: libc::statx_timestamp| t.tv_sec.saturating_mul(1_000_000_000) + i64::from(t.tv_nsec);
    Ok(Stat {
        mode: u32::from(buf.stx_mode),
        uid: buf.stx_uid,
        gid: buf.stx_gid,
        rdev: libc::makedev(buf.stx_rdev_major, buf.stx_rdev_minor),
        identity: FileIdentity {
            dev: libc::makedev(buf.stx_dev_major, buf.stx_dev_minor),
            ino: buf.stx_ino,
            size: buf.stx_size,
            mtime_ns: nanos(buf.stx_mtime),
            ctime_ns: nanos(buf.stx_ctime),
        },
    })
}

#[cfg(test)]
mod tests;
