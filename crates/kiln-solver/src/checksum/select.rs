//! Which context entries a selection covers, found the way the worker's COPY finds what
//! it reads: each source is cleaned as if rooted, the components before the first
//! wildcard are resolved inside the root (symlinks followed, clamped to the root), the
//! rest are matched one level at a time, and every match is resolved once more, its last
//! symlink followed too. A matched directory is taken with everything below it, minus
//! `.dockerignore` (relative to the root) and `--exclude` (relative to the source).
//!
//! When in doubt the selection covers more rather than less: a spare entry only costs a
//! cache miss, a missing one serves a stale result. So the directories above every match
//! and every symlink met on the way are covered too (`--parents` copies the former; the
//! latter decide where a source leads).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use kiln_frontend::dockerignore::{IgnoreMatcher, WalkState};

use super::ChecksumError;
use super::files::identity;
use super::parallel::parallel_in_order;
use kiln_store::FileIdentity;
use kiln_worker::fileop::pattern::{Pattern as ComponentPattern, has_wildcards};

/// What `lstat` said about one covered entry (keyed by its raw path below the root).
#[derive(Debug)]
pub(super) struct Found {
    pub meta: Stat,
    pub link_target: Option<Vec<u8>>,
}

/// The part of `lstat`'s answer checksums and fingerprints use: a third of the size of
/// [`Metadata`], which matters when a walk holds tens of thousands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    /// Type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub identity: FileIdentity,
}

impl Stat {
    pub fn of(meta: &Metadata) -> Stat {
        Stat {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev(),
            identity: identity(meta),
        }
    }

    fn kind(&self) -> u32 {
        self.mode & 0o170000
    }

    pub fn is_file(&self) -> bool {
        self.kind() == 0o100000
    }

    pub fn is_dir(&self) -> bool {
        self.kind() == 0o040000
    }

    pub fn is_symlink(&self) -> bool {
        self.kind() == 0o120000
    }
}

pub(super) struct Collector<'a> {
    root: &'a Path,
    ignore: &'a IgnoreMatcher,
    exclude: &'a IgnoreMatcher,
    /// Covered entries by raw relative path; sorted, so the digest does not depend on
    /// the order sources found them in.
    pub entries: BTreeMap<Vec<u8>, Found>,
    /// Directories whose listing was read, with what `lstat` said about each just before:
    /// a remembered file below one of them that the walk did not cover may have vanished,
    /// one elsewhere was merely not looked at.
    pub listed_dirs: HashMap<Vec<u8>, Stat>,
    /// Every path looked up by name (not found by a listing), with what `lstat` said.
    pub looked_up: Vec<(Vec<u8>, Option<Stat>)>,
    /// A source was resolved through a symlink: where it led depends on paths nobody
    /// recorded a lookup of, so no [stat plan](super::plan) can vouch for this walk.
    pub followed_symlink: bool,
}

impl<'a> Collector<'a> {
    pub(super) fn new(
        root: &'a Path,
        ignore: &'a IgnoreMatcher,
        exclude: &'a IgnoreMatcher,
    ) -> Self {
        Self {
            root,
            ignore,
            exclude,
            entries: BTreeMap::new(),
            listed_dirs: HashMap::new(),
            looked_up: Vec::new(),
            followed_symlink: false,
        }
    }

    /// Adds what `source` (as written in the Dockerfile) covers. A source that matches
    /// nothing adds nothing: the copy itself reports that.
    pub(super) fn add_source(&mut self, source: &str) -> Result<(), ChecksumError> {
        // A `/./` pivot (COPY --parents) disappears with the `.` component; without
        // knowing the pivot, --exclude is not applied to wildcard matches themselves.
        let pivoted = source.contains("/./");
        let components = clean_components(source);
        let Some(first_wildcard) = components.iter().position(|c| has_wildcards(c)) else {
            return self.add_named(&components.join("/"));
        };
        let patterns = components[first_wildcard..]
            .iter()
            .map(|c| ComponentPattern::compile(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| ChecksumError::BadPattern {
                pattern: source.to_string(),
                problem,
            })?;
        let prefix = components[..first_wildcard].join("/");
        self.add_symlinks_on(&prefix)?;
        let base = self.resolve(&prefix, true)?;
        let mut named = Vec::new();
        if let Some(meta) = self.lstat(&base)?.filter(|m| m.is_dir()) {
            self.match_levels(&base, Stat::of(&meta), &prefix, &patterns, &mut named)?;
        }
        for name in named {
            if !(pivoted || self.exclude.is_empty()) && self.exclude.matches(&name) {
                continue;
            }
            self.add_named(&name)?;
        }
        Ok(())
    }

    /// Lexically sorted names below `dir` matching `patterns`, one pattern per level;
    /// only real directories are entered between levels.
    fn match_levels(
        &mut self,
        dir: &Path,
        dir_meta: Stat,
        named_dir: &str,
        patterns: &[ComponentPattern],
        out: &mut Vec<String>,
    ) -> Result<(), ChecksumError> {
        let Some((pattern, deeper)) = patterns.split_first() else {
            return Ok(());
        };
        self.listed_dirs.insert(self.relative(dir), dir_meta);
        let mut names: Vec<String> = read_names(dir)?
            .into_iter()
            // A name that is not UTF-8 cannot be written in a Dockerfile pattern.
            .filter_map(|n| n.into_string().ok())
            .filter(|n| pattern.matches(n))
            .collect();
        names.sort();
        for name in names {
            let named = match named_dir {
                "" => name.clone(),
                parent => format!("{parent}/{name}"),
            };
            let path = dir.join(&name);
            if deeper.is_empty() {
                out.push(named);
            } else if let Some(meta) = self.lstat(&path)?.filter(|m| m.is_dir()) {
                self.match_levels(&path, Stat::of(&meta), &named, deeper, out)?;
            }
        }
        Ok(())
    }

    /// Adds the entry a source names (following symlinks as the copy does), the
    /// symlinks on the way, its parent directories and, for a directory, its contents.
    fn add_named(&mut self, named: &str) -> Result<(), ChecksumError> {
        self.add_symlinks_on(named)?;
        let real = self.resolve(named, true)?;
        let Some(meta) = self.lstat(&real)? else {
            return Ok(());
        };
        let rel = self.relative(&real);
        if rel.is_empty() {
            let below = self.walk(&real, &rel, Stat::of(&meta))?;
            self.add_walked(below);
            return Ok(());
        }
        let context_rel = String::from_utf8_lossy(&rel).into_owned();
        // Reached through a symlink, the worker may read the target even when the target
        // itself is ignored (it checks the link's name for wildcard matches), so the
        // target is covered whatever .dockerignore says about it.
        let lexical = clean_components(named).join("/");
        let through_link = rel != lexical.as_bytes();
        let ignored = !through_link && self.ignore.matches(&context_rel);
        if !meta.is_dir() {
            if !ignored {
                self.add_parents(&rel)?;
                self.insert(rel, meta, &real)?;
            }
            return Ok(());
        }
        if ignored && self.ignore.excludes_everything_below(&context_rel) {
            return Ok(());
        }
        let below = self.walk(&real, &rel, Stat::of(&meta))?;
        if ignored && below.is_empty() {
            return Ok(());
        }
        self.add_parents(&rel)?;
        self.insert(rel, meta, &real)?;
        self.add_walked(below);
        Ok(())
    }

    /// Adds walked entries; into an empty map in one bulk build rather than one search
    /// per entry (a whole context is tens of thousands).
    fn add_walked(&mut self, below: Vec<(Vec<u8>, Found)>) {
        if self.entries.is_empty() {
            self.entries = below.into_iter().collect();
        } else {
            for (rel, found) in below {
                self.entries.entry(rel).or_insert(found);
            }
        }
    }

    /// What is below `dir` (which `lstat` saw as `meta`), in order (directories before
    /// their contents).
    fn walk(
        &mut self,
        dir: &Path,
        rel: &[u8],
        meta: Stat,
    ) -> Result<Vec<(Vec<u8>, Found)>, ChecksumError> {
        let mut walked = Walked::default();
        let start = WalkAt {
            dir,
            rel,
            meta,
            source_rel: "",
            ignore_state: None,
            exclude_state: None,
        };
        let spare_cores = cores() > 1;
        self.walk_below(&start, spare_cores, &mut walked)?;
        self.listed_dirs.extend(walked.listed);
        Ok(walked.entries)
    }

    /// Lists and `lstat`s what is below `at`. With `fan_out`, the first level holding
    /// several directories is walked on one thread per core: an unchanged context is
    /// checked by this walk alone, and `lstat` is most of its time.
    fn walk_below(
        &self,
        at: &WalkAt<'_>,
        fan_out: bool,
        out: &mut Walked,
    ) -> Result<(), ChecksumError> {
        let dir = at.dir;
        // Each child by its path below the root (its name is the tail), so a name is not
        // allocated twice; sorting these sorts by name, as the prefix is shared.
        let name_at = if at.rel.is_empty() {
            0
        } else {
            at.rel.len() + 1
        };
        let mut children = Vec::new();
        for entry in fs::read_dir(dir).map_err(ChecksumError::io("read directory", dir))? {
            let entry = entry.map_err(ChecksumError::io("read directory", dir))?;
            match entry.metadata() {
                Ok(meta) => children.push((
                    join_rel(at.rel, entry.file_name().as_bytes()),
                    Stat::of(&meta),
                    meta.file_type(),
                )),
                // Removed since the listing: as if it had not been there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ChecksumError::io("stat", &entry.path())(e)),
            }
        }
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.listed.push((at.rel.to_vec(), at.meta));
        // Directories to descend into, in order.
        let mut subdirs = Vec::new();
        for (child_rel, meta, file_type) in children {
            let name = std::ffi::OsStr::from_bytes(&child_rel[name_at..]);
            // Paths as text only when a pattern needs them (the common case has none).
            let child_source_rel = if self.exclude.is_empty() {
                String::new()
            } else {
                let lossy = name.to_string_lossy();
                match at.source_rel {
                    "" => lossy.into_owned(),
                    parent => format!("{parent}/{lossy}"),
                }
            };
            let context_rel = if self.ignore.is_empty() {
                String::new()
            } else {
                String::from_utf8_lossy(&child_rel).into_owned()
            };
            let (ignored, child_ignore) = walk_match(self.ignore, &context_rel, at.ignore_state);
            let (excluded, child_exclude) =
                walk_match(self.exclude, &child_source_rel, at.exclude_state);
            if !meta.is_dir() {
                if !ignored && !excluded && !file_type.is_socket() {
                    let link_target = if file_type.is_symlink() {
                        read_link(&dir.join(name))?
                    } else {
                        None
                    };
                    out.entries.push((child_rel, Found { meta, link_target }));
                }
                continue;
            }
            let skip_whole = (ignored && self.ignore.excludes_everything_below(&context_rel))
                || (excluded && self.exclude.excludes_everything_below(&child_source_rel));
            if skip_whole {
                continue;
            }
            subdirs.push(Subdir {
                path: dir.join(name),
                rel: child_rel,
                source_rel: child_source_rel,
                meta,
                left_out: ignored || excluded,
                ignore_state: child_ignore,
                exclude_state: child_exclude,
            });
        }
        if fan_out && subdirs.len() > 1 {
            return self.walk_subdirs_in_parallel(subdirs, out);
        }
        for subdir in subdirs {
            // Straight into `out`: the directory first, taken back out if it was left
            // out and nothing below it was brought back.
            let before = out.entries.len();
            out.entries.push((
                subdir.rel.clone(),
                Found {
                    meta: subdir.meta,
                    link_target: None,
                },
            ));
            self.walk_below(&subdir.at(), fan_out, out)?;
            if subdir.left_out && out.entries.len() == before + 1 {
                out.entries.pop();
            }
        }
        Ok(())
    }

    fn walk_subdir(&self, subdir: &Subdir, fan_out: bool) -> Result<Walked, ChecksumError> {
        let mut below = Walked::default();
        self.walk_below(&subdir.at(), fan_out, &mut below)?;
        Ok(below)
    }

    /// Walks `subdirs` on a few threads, taking the next one as each finishes; the
    /// results are put back in order.
    fn walk_subdirs_in_parallel(
        &self,
        subdirs: Vec<Subdir>,
        out: &mut Walked,
    ) -> Result<(), ChecksumError> {
        let threads = cores().clamp(1, MAX_WALKERS);
        let walked =
            parallel_in_order(&subdirs, threads, |subdir| self.walk_subdir(subdir, false))?;
        for (subdir, below) in subdirs.into_iter().zip(walked) {
            out.append(subdir, below);
        }
        Ok(())
    }

    /// Covers every symlink met while resolving `named`, since each decides where the
    /// source leads.
    fn add_symlinks_on(&mut self, named: &str) -> Result<(), ChecksumError> {
        let mut prefix = String::new();
        for component in named.split('/').filter(|c| !c.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            let real = self.resolve(&prefix, false)?;
            match self.lstat(&real)? {
                Some(meta) if meta.file_type().is_symlink() => {
                    self.followed_symlink = true;
                    let rel = self.relative(&real);
                    if !rel.is_empty() && !self.entries.contains_key(&rel) {
                        self.add_parents(&rel)?;
                        self.insert(rel, meta, &real)?;
                    }
                }
                Some(_) => {}
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Covers the directories above `rel` (not the root).
    fn add_parents(&mut self, rel: &[u8]) -> Result<(), ChecksumError> {
        for (at, _) in rel.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let parent = &rel[..at];
            if self.entries.contains_key(parent) {
                continue;
            }
            let real = self.root.join(std::ffi::OsStr::from_bytes(parent));
            if let Some(meta) = self.lstat(&real)? {
                self.insert(parent.to_vec(), meta, &real)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, rel: Vec<u8>, meta: Metadata, real: &Path) -> Result<(), ChecksumError> {
        let link_target = read_link_if(real, &meta)?;
        self.entries.entry(rel).or_insert(Found {
            meta: Stat::of(&meta),
            link_target,
        });
        Ok(())
    }

    /// `lstat` of a path inside the root, remembered in [`Self::looked_up`].
    fn lstat(&mut self, real: &Path) -> Result<Option<Metadata>, ChecksumError> {
        let meta = match fs::symlink_metadata(real) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ChecksumError::io("stat", real)(e)),
        };
        self.looked_up
            .push((self.relative(real), meta.as_ref().map(Stat::of)));
        Ok(meta)
    }

    fn resolve(&self, named: &str, follow_last: bool) -> Result<PathBuf, ChecksumError> {
        kiln_worker::resolve_in_root(self.root, Path::new(named), follow_last).map_err(|source| {
            ChecksumError::Resolve {
                path: named.to_string(),
                source,
            }
        })
    }

    pub(super) fn root(&self) -> &Path {
        self.root
    }

    fn relative(&self, real: &Path) -> Vec<u8> {
        real.strip_prefix(self.root)
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_default()
    }
}

/// Most threads walking a context at once.
const MAX_WALKERS: usize = 8;

/// The cores this process may use, asked once (the answer reads cgroup files, and a
/// bake checks dozens of contexts).
pub(super) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Where a walk is: the directory, its path below the root and below the copied source,
/// and the pattern states of its parents.
struct WalkAt<'a> {
    dir: &'a Path,
    rel: &'a [u8],
    /// What `lstat` said about `dir` before it was listed.
    meta: Stat,
    source_rel: &'a str,
    ignore_state: Option<&'a WalkState>,
    exclude_state: Option<&'a WalkState>,
}

/// A directory met by a walk, to descend into.
struct Subdir {
    path: PathBuf,
    rel: Vec<u8>,
    source_rel: String,
    meta: Stat,
    /// Ignored or excluded itself: kept only for what is brought back below it.
    left_out: bool,
    ignore_state: Option<WalkState>,
    exclude_state: Option<WalkState>,
}

impl Subdir {
    fn at(&self) -> WalkAt<'_> {
        WalkAt {
            dir: &self.path,
            rel: &self.rel,
            meta: self.meta,
            source_rel: &self.source_rel,
            ignore_state: self.ignore_state.as_ref(),
            exclude_state: self.exclude_state.as_ref(),
        }
    }
}

/// What a walk found: entries in order, and the directories it listed.
#[derive(Default)]
struct Walked {
    entries: Vec<(Vec<u8>, Found)>,
    listed: Vec<(Vec<u8>, Stat)>,
}

impl Walked {
    /// Adds `subdir` followed by what was found below it; a left-out directory only when
    /// something below it was brought back.
    fn append(&mut self, subdir: Subdir, below: Walked) {
        self.listed.extend(below.listed);
        if subdir.left_out && below.entries.is_empty() {
            return;
        }
        self.entries.push((
            subdir.rel,
            Found {
                meta: subdir.meta,
                link_target: None,
            },
        ));
        self.entries.extend(below.entries);
    }
}

/// `matches_in_walk`, skipped entirely for an empty matcher (the common case).
fn walk_match(
    matcher: &IgnoreMatcher,
    path: &str,
    parent: Option<&WalkState>,
) -> (bool, Option<WalkState>) {
    if matcher.is_empty() {
        return (false, None);
    }
    let (hit, state) = matcher.matches_in_walk(path, parent);
    (hit, Some(state))
}

/// Source components after cleaning it as an absolute path: `.` and empty parts
/// dropped, `..` removing the part before it and stopping at the root.
fn clean_components(source: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts
}

fn join_rel(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

fn read_names(dir: &Path) -> Result<Vec<std::ffi::OsString>, ChecksumError> {
    fs::read_dir(dir)
        .map_err(ChecksumError::io("read directory", dir))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(ChecksumError::io("read directory", dir))
}

fn read_link_if(path: &Path, meta: &Metadata) -> Result<Option<Vec<u8>>, ChecksumError> {
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    read_link(path)
}

fn read_link(path: &Path) -> Result<Option<Vec<u8>>, ChecksumError> {
    let target = fs::read_link(path).map_err(ChecksumError::io("read link", path))?;
    Ok(Some(target.into_os_string().into_encoded_bytes()))
}
