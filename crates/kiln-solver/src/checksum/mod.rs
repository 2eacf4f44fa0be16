//! Exact checksums of what a build reads from a local context, for cache keys.
//!
//! A `COPY` from the context reads the entries its sources match (directories taken
//! whole) minus `.dockerignore` and `--exclude`. [`checksum`] finds those entries the way
//! the copy does and digests, per entry, its path, type, mode, owner, symlink target and
//! content — never its times, so touching a file keeps the cache. File contents come
//! from the store's `file_digests` records when a file's stat data is exactly what it
//! was when last hashed in the same context root, so an unchanged context is not read.
//!
//! Each checksum also carries a [stat plan](plan) of what its walk observed: the
//! whole-build short cut checks that ([`plan_holds`]) instead of checksumming again.

mod files;
mod parallel;
mod plan;
mod select;

use std::path::{Path, PathBuf};

use kiln_frontend::dockerignore::{IgnoreMatcher, PatternError};
use kiln_store::Store;
use sha2::{Digest as _, Sha256};

pub use plan::{StatPlan, plan_holds};
use select::Collector;

/// What part of a context a checksum covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// Sources as written, relative to the root; empty means the whole context.
    pub include: Vec<String>,
    /// `.dockerignore` lines.
    pub excludes: Vec<String>,
    /// `COPY --exclude` patterns.
    pub extra_excludes: Vec<String>,
    /// `--chmod` replaces modes, so they do not matter.
    pub ignore_mode: bool,
    /// Context files become root-owned, so owners do not matter.
    pub ignore_owner: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// Fifos and device nodes.
    Other,
}

/// One covered entry, as digested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySum {
    /// Relative to the root, `/`-separated (lossy for names that are not UTF-8; the
    /// digest uses the raw bytes).
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub link_target: Option<String>,
    /// `sha256:<hex>` of a regular file's content.
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextChecksum {
    /// `sha256:<hex>` over the entries in path order.
    pub digest: String,
    pub entries: Vec<EntrySum>,
    /// Files read and hashed by this call.
    pub files_hashed: usize,
    /// Files whose remembered digest was used without reading them.
    pub files_reused: usize,
    /// The [`StatPlan`] of what this checksum's walk observed; `None` when its stat data
    /// cannot vouch for the walk (something changed too recently, or a source was
    /// reached through a symlink).
    pub stat_plan: Option<StatPlan>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("build context {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{} changed while the build context was being checksummed", path.display())]
    Changed { path: PathBuf },
    #[error("resolving {path:?} in the build context: {source}")]
    Resolve {
        path: String,
        #[source]
        source: kiln_worker::Error,
    },
    #[error("invalid source pattern {pattern:?}: {problem}")]
    BadPattern { pattern: String, problem: String },
    #[error(".dockerignore: {0}")]
    Ignore(#[source] PatternError),
    #[error("--exclude: {0}")]
    Exclude(#[source] PatternError),
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
}

impl ChecksumError {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ChecksumError {
        let path = path.to_path_buf();
        move |source| ChecksumError::Io { op, path, source }
    }
}

/// Checksums the entries of the context at `root` that `selection` covers. Deterministic,
/// and safe to call from several threads or processes on the same root at once.
pub fn checksum(
    store: &Store,
    root: &Path,
    selection: &Selection,
) -> Result<ContextChecksum, ChecksumError> {
    let walked_at = std::time::SystemTime::now();
    let root = canonical_root(root)?;
    let (ignore, exclude) = matchers(selection)?;
    let found = collect(&root, selection, &ignore, &exclude)?;
    let stat_plan = plan::of_walk(&root, selection, &found, walked_at);
    let contents = files::content_digests(store, &root, &found)?;

    let mut hasher = Sha256::new();
    hasher.update(b"kiln context checksum v1\0");
    hasher.update([
        u8::from(selection.ignore_mode),
        u8::from(selection.ignore_owner),
    ]);
    let mut entries = Vec::with_capacity(found.entries.len());
    for ((rel, entry), content) in found.entries.iter().zip(&contents.digests) {
        let meta = &entry.meta;
        let kind = if meta.is_file() {
            EntryKind::File
        } else if meta.is_dir() {
            EntryKind::Dir
        } else if meta.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        let content = content.as_ref();
        field(&mut hasher, rel);
        // The full type bits, so a fifo and a device node differ too.
        hasher.update((meta.mode & 0o170000).to_le_bytes());
        if kind == EntryKind::Other {
            hasher.update(meta.rdev.to_le_bytes());
        }
        if !selection.ignore_mode {
            hasher.update((meta.mode & 0o7777).to_le_bytes());
        }
        if !selection.ignore_owner {
            hasher.update(meta.uid.to_le_bytes());
            hasher.update(meta.gid.to_le_bytes());
        }
        field(
            &mut hasher,
            entry.link_target.as_deref().unwrap_or_default(),
        );
        field(&mut hasher, content.map_or("", |d| d.hex()).as_bytes());
        entries.push(EntrySum {
            path: String::from_utf8_lossy(rel).into_owned(),
            kind,
            mode: meta.mode & 0o7777,
            uid: meta.uid,
            gid: meta.gid,
            link_target: entry
                .link_target
                .as_deref()
                .map(|t| String::from_utf8_lossy(t).into_owned()),
            content: content.map(ToString::to_string),
        });
    }
    Ok(ContextChecksum {
        digest: format!("sha256:{}", hex::encode(hasher.finalize())),
        entries,
        files_hashed: contents.hashed,
        files_reused: contents.reused,
        stat_plan,
    })
}

fn canonical_root(root: &Path) -> Result<PathBuf, ChecksumError> {
    let root = std::fs::canonicalize(root).map_err(ChecksumError::io("resolve", root))?;
    if !root.is_dir() {
        return Err(ChecksumError::NotADirectory(root));
    }
    Ok(root)
}

fn matchers(selection: &Selection) -> Result<(IgnoreMatcher, IgnoreMatcher), ChecksumError> {
    let ignore = IgnoreMatcher::new(&selection.excludes).map_err(ChecksumError::Ignore)?;
    let exclude = IgnoreMatcher::new(&selection.extra_excludes).map_err(ChecksumError::Exclude)?;
    Ok((ignore, exclude))
}

/// The entries `selection` covers, found the way the copy finds them.
fn collect<'a>(
    root: &'a Path,
    selection: &Selection,
    ignore: &'a IgnoreMatcher,
    exclude: &'a IgnoreMatcher,
) -> Result<Collector<'a>, ChecksumError> {
    let mut found = Collector::new(root, ignore, exclude);
    if selection.include.is_empty() {
        found.add_source(".")?;
    }
    for source in &selection.include {
        found.add_source(source)?;
    }
    Ok(found)
}

/// Length-prefixed, so no two different entry lists produce the same byte stream.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests;
