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

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use kiln_frontend::dockerignore::{IgnoreMatcher, WalkState};

use super::ChecksumError;
use kiln_worker::fileop::pattern::{Pattern as ComponentPattern, has_wildcards};

/// What `lstat` said about one covered entry (keyed by its raw path below the root).
#[derive(Debug)]
pub(super) struct Found {
    pub meta: Metadata,
    pub link_target: Option<Vec<u8>>,
}

pub(super) struct Collector<'a> {
    root: &'a Path,
    ignore: &'a IgnoreMatcher,
    exclude: &'a IgnoreMatcher,
    /// Covered entries by raw relative path; sorted, so the digest does not depend on
    /// the order sources found them in.
    pub entries: BTreeMap<Vec<u8>, Found>,
    /// Directories whose listing was read: a remembered file below one of them that the
    /// walk did not cover may have vanished, one elsewhere was merely not looked at.
    pub listed_dirs: HashSet<Vec<u8>>,
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
            listed_dirs: HashSet::new(),
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
        if lstat(&base)?.is_some_and(|m| m.is_dir()) {
            self.match_levels(&base, &prefix, &patterns, &mut named)?;
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
        &self,
        dir: &Path,
        named_dir: &str,
        patterns: &[ComponentPattern],
        out: &mut Vec<String>,
    ) -> Result<(), ChecksumError> {
        let Some((pattern, deeper)) = patterns.split_first() else {
            return Ok(());
        };
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
            } else if lstat(&path)?.is_some_and(|m| m.is_dir()) {
                self.match_levels(&path, &named, deeper, out)?;
            }
        }
        Ok(())
    }

    /// Adds the entry a source names (following symlinks as the copy does), the
    /// symlinks on the way, its parent directories and, for a directory, its contents.
    fn add_named(&mut self, named: &str) -> Result<(), ChecksumError> {
        self.add_symlinks_on(named)?;
        let real = self.resolve(named, true)?;
        let Some(meta) = lstat(&real)? else {
            return Ok(());
        };
        let rel = self.relative(&real);
        if rel.is_empty() {
            let mut below = Vec::new();
            self.walk(&real, &rel, "", None, None, &mut below)?;
            self.entries.extend(below);
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
        let mut below = Vec::new();
        self.walk(&real, &rel, "", None, None, &mut below)?;
        if ignored && below.is_empty() {
            return Ok(());
        }
        self.add_parents(&rel)?;
        self.insert(rel, meta, &real)?;
        self.entries.extend(below);
        Ok(())
    }

    /// Appends what is below `dir` to `out`, in order. `source_rel` is `dir` relative to
    /// the copied source, which `--exclude` patterns are matched against.
    fn walk(
        &mut self,
        dir: &Path,
        rel: &[u8],
        source_rel: &str,
        ignore_state: Option<&WalkState>,
        exclude_state: Option<&WalkState>,
        out: &mut Vec<(Vec<u8>, Found)>,
    ) -> Result<(), ChecksumError> {
        let mut children = Vec::new();
        for entry in fs::read_dir(dir).map_err(ChecksumError::io("read directory", dir))? {
            let entry = entry.map_err(ChecksumError::io("read directory", dir))?;
            let path = entry.path();
            match entry.metadata() {
                Ok(meta) => children.push((entry.file_name(), path, meta)),
                // Removed since the listing: as if it had not been there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ChecksumError::io("stat", &path)(e)),
            }
        }
        children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.listed_dirs.insert(rel.to_vec());
        for (name, path, meta) in children {
            let child_rel = join_rel(rel, name.as_bytes());
            let name = name.to_string_lossy();
            let child_source_rel = match source_rel {
                "" => name.into_owned(),
                parent => format!("{parent}/{name}"),
            };
            let context_rel = String::from_utf8_lossy(&child_rel).into_owned();
            let (ignored, child_ignore) = walk_match(self.ignore, &context_rel, ignore_state);
            let (excluded, child_exclude) =
                walk_match(self.exclude, &child_source_rel, exclude_state);
            if !meta.is_dir() {
                if !ignored && !excluded && !meta.file_type().is_socket() {
                    let link_target = read_link_if(&path, &meta)?;
                    out.push((child_rel, Found { meta, link_target }));
                }
                continue;
            }
            let skip_whole = (ignored && self.ignore.excludes_everything_below(&context_rel))
                || (excluded && self.exclude.excludes_everything_below(&child_source_rel));
            if skip_whole {
                continue;
            }
            let at = out.len();
            out.push((
                child_rel.clone(),
                Found {
                    meta,
                    link_target: None,
                },
            ));
            self.walk(
                &path,
                &child_rel,
                &child_source_rel,
                child_ignore.as_ref(),
                child_exclude.as_ref(),
                out,
            )?;
            // A left-out directory is copied only for the entries brought back below it.
            if (ignored || excluded) && out.len() == at + 1 {
                out.pop();
            }
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
            match lstat(&real)? {
                Some(meta) if meta.file_type().is_symlink() => {
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
            if let Some(meta) = lstat(&real)? {
                self.insert(parent.to_vec(), meta, &real)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, rel: Vec<u8>, meta: Metadata, real: &Path) -> Result<(), ChecksumError> {
        let link_target = read_link_if(real, &meta)?;
        self.entries
            .entry(rel)
            .or_insert(Found { meta, link_target });
        Ok(())
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
    let target = fs::read_link(path).map_err(ChecksumError::io("read link", path))?;
    Ok(Some(target.into_os_string().into_encoded_bytes()))
}

fn lstat(path: &Path) -> Result<Option<Metadata>, ChecksumError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ChecksumError::io("stat", path)(e)),
    }
}
