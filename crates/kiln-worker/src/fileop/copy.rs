//! COPY and ADD: which sources, and where each one lands.
//!
//! BuildKit's rules, as the Dockerfile reference states them: a directory source copies
//! its contents; a file copied to a path ending in `/` or to an existing directory keeps
//! its name inside it, otherwise it becomes that path; several sources need a directory
//! destination; missing parent directories are created (0755, owned by the `--chown`
//! owner). With `--parents` each source keeps its path (after a `/./` pivot when there
//! is one), and the parent directories it needs are copied from the source. With ADD,
//! a local tar archive (recognised by content, optionally compressed) is extracted.

use std::path::Path;

use kiln_frontend::dockerignore::IgnoreMatcher;
use kiln_graph::CopyAction;

use super::InputRoot;
use super::archive;
use super::chmod::Chmod;
use super::error::FileOpError;
use super::paths::{clean_absolute, lstat, mkdir_all, resolve, shown};
use super::sources::{SourceLookup, SourceMatch};
use super::tree::TreeCopier;

pub(super) fn apply_copy(
    dest_root: &Path,
    action: &CopyAction,
    input: &InputRoot,
) -> Result<(), FileOpError> {
    let owner = super::resolve_owner(dest_root, action.owner.as_ref())?;
    let chmod = action.chmod.as_ref().map(Chmod::parse).transpose()?;
    let ignore = IgnoreMatcher::new(&input.excludes)?;
    let exclude = IgnoreMatcher::new(&action.exclude)?;
    let matches = expand_sources(action, input, &ignore, &exclude)?;

    let dest = clean_absolute(&action.dest);
    let dest_real = resolve(dest_root, &dest, true)?;
    if !action.create_dest_path {
        let parent_exists = dest_real
            .parent()
            .filter(|_| dest != "/")
            .map_or(Ok(true), |p| {
                lstat(p).map(|m| m.is_some_and(|m| m.is_dir()))
            })?;
        if !parent_exists {
            return Err(FileOpError::MissingParent { path: dest });
        }
    }
    let dest_is_dir = lstat(&dest_real)?.is_some_and(|m| m.is_dir());
    let into_dir = dest_is_dir || action.parents || ends_as_directory(&action.dest);
    if matches.len() > 1 && !into_dir {
        return Err(FileOpError::DestNotDirectory {
            dest: action.dest.clone(),
            count: matches.len(),
        });
    }

    for source in &matches {
        // One copier per source, as BuildKit copies each source separately: hard links
        // are kept within a source, not across sources.
        let mut copier = TreeCopier::new(&input.path, dest_root, &ignore, &exclude);
        copier.owner = owner;
        copier.chmod = chmod.as_ref();
        let src = resolve(&input.path, &source.named, action.follow_symlinks)?;
        let meta = lstat(&src)?.ok_or_else(|| FileOpError::SourceNotFound {
            pattern: source.named.clone(),
        })?;
        if action.unpack
            && meta.is_file()
            && let Some(compression) = archive::detect(&src)?
        {
            let dir = mkdir_all(dest_root, &dest, 0o755, owner)?;
            archive::extract(&src, compression, dest_root, &dir, owner)?;
            continue;
        }
        if action.parents {
            let target = copy_parent_dirs(&copier, input, dest_root, &dest, source, meta.is_dir())?;
            if meta.is_dir() {
                let dir = mkdir_all(dest_root, &target, 0o755, owner)?;
                copier.copy_dir_contents(&src, &dir)?;
            } else {
                let real = resolve(dest_root, &target, false)?;
                copier.copy_single(&src, &meta, &real)?;
            }
        } else if meta.is_dir() {
            let dir = mkdir_all(dest_root, &dest, 0o755, owner)?;
            copier.copy_dir_contents(&src, &dir)?;
        } else if into_dir {
            let dir = mkdir_all(dest_root, &dest, 0o755, owner)?;
            let name = source.named.rsplit('/').next().unwrap_or_default();
            copier.copy_single(&src, &meta, &dir.join(name))?;
        } else {
            let parent = dest.rsplit_once('/').map_or("/", |(p, _)| p);
            mkdir_all(dest_root, parent, 0o755, owner)?;
            // Like BuildKit, a destination that is a symlink is replaced at its target,
            // whose directory is created when missing.
            let real = resolve(dest_root, &dest, true)?;
            if let Some(real_parent) = real.parent() {
                mkdir_all(dest_root, &shown(dest_root, real_parent), 0o755, owner)?;
            }
            copier.copy_single(&src, &meta, &real)?;
        }
    }
    Ok(())
}

/// Every path the action's sources name, in order. A wildcard that matches nothing is
/// an error unless empty matches are allowed; wildcard matches that `--exclude`
/// matches (relative to the input root, or to the pivot with `--parents`) are dropped.
fn expand_sources(
    action: &CopyAction,
    input: &InputRoot,
    ignore: &IgnoreMatcher,
    exclude: &IgnoreMatcher,
) -> Result<Vec<SourceMatch>, FileOpError> {
    let lookup = SourceLookup {
        root: &input.path,
        ignore,
        allow_wildcard: action.allow_wildcard,
        follow_symlinks: action.follow_symlinks,
        parents: action.parents,
    };
    let mut all = Vec::new();
    for source in &action.sources {
        let found = lookup.expand(source)?;
        if found.is_empty() && !action.allow_empty_wildcard {
            return Err(FileOpError::SourceNotFound {
                pattern: source.clone(),
            });
        }
        all.extend(found.into_iter().filter(|m| {
            let path = if action.parents { &m.keep } else { &m.named };
            !(m.from_wildcard && exclude.matches(path))
        }));
    }
    Ok(all)
}

/// With `--parents`: creates the directories of `source.keep` under `dest` (its last
/// component too when the source is a directory) with the attributes of their source
/// directories, and returns the image path of the source's own target.
fn copy_parent_dirs(
    copier: &TreeCopier<'_>,
    input: &InputRoot,
    dest_root: &Path,
    dest: &str,
    source: &SourceMatch,
    source_is_dir: bool,
) -> Result<String, FileOpError> {
    let kept: Vec<&str> = source.keep.split('/').filter(|p| !p.is_empty()).collect();
    let named: Vec<&str> = source.named.split('/').filter(|p| !p.is_empty()).collect();
    let pivot = named.len().saturating_sub(kept.len());
    let mut target = dest.trim_end_matches('/').to_string();
    for (index, part) in kept.iter().enumerate() {
        target.push('/');
        target.push_str(part);
        if index + 1 == kept.len() && !source_is_dir {
            break;
        }
        let real = resolve(dest_root, &target, true)?;
        match lstat(&real)? {
            Some(meta) if meta.is_dir() => {}
            Some(_) => return Err(FileOpError::NotADirectory { path: target }),
            None => {
                let parent = target.rsplit_once('/').map_or("/", |(p, _)| p);
                mkdir_all(dest_root, parent, 0o755, copier.owner)?;
                let src_dir = resolve(&input.path, &named[..=pivot + index].join("/"), true)?;
                let src_meta = lstat(&src_dir)?.ok_or_else(|| FileOpError::SourceNotFound {
                    pattern: source.named.clone(),
                })?;
                std::fs::create_dir(&real).map_err(super::error::io_err("mkdir", &real))?;
                copier.copy_metadata(&src_dir, &src_meta, &real)?;
            }
        }
    }
    Ok(if target.is_empty() {
        "/".into()
    } else {
        target
    })
}

/// Whether the destination as written names a directory (`dir/`, `dir/.`, `.`).
fn ends_as_directory(dest: &str) -> bool {
    dest.ends_with('/') || dest.ends_with("/.") || dest == "."
}

#[cfg(test)]
mod tests {
    use super::ends_as_directory;

    #[test]
    fn directory_destinations() {
        assert!(ends_as_directory("/app/"));
        assert!(ends_as_directory("/app/."));
        assert!(!ends_as_directory("/app"));
    }
}
