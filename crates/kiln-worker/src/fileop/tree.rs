//! Copying one source entry, recursively, `cp -a` style: modes, times, owners (or the
//! `--chown` owner), extended attributes, symlinks as symlinks and hard links as hard
//! links. `--chmod` applies to every copied entry, directories included.
//!
//! Below a resolved target directory only plain directories are entered: an existing
//! symlink where a directory is copied is an error, and an existing non-directory where
//! a file is copied is replaced, so nothing is written through a symlink.

use std::collections::HashMap;
use std::fs::{self, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln_frontend::dockerignore::{IgnoreMatcher, WalkState};

use super::chmod::Chmod;
use super::error::{FileOpError, io_err};
use super::paths::{lstat, shown};
use crate::sys;

/// Copies entries from one input into the destination root.
pub(super) struct TreeCopier<'a> {
    pub input_root: &'a Path,
    pub dest_root: &'a Path,
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<&'a Chmod>,
    /// The input's `.dockerignore`, matched against paths relative to the input root.
    pub ignore: &'a IgnoreMatcher,
    /// `--exclude`, matched against paths relative to the copied source.
    pub exclude: &'a IgnoreMatcher,
    /// Where each multiply linked source inode was first written.
    links: HashMap<(u64, u64), PathBuf>,
}

/// Ignore and exclude state of a directory being walked.
#[derive(Default)]
struct Walk {
    source_rel: String,
    ignore: Option<WalkState>,
    exclude: Option<WalkState>,
}

impl<'a> TreeCopier<'a> {
    pub(super) fn new(
        input_root: &'a Path,
        dest_root: &'a Path,
        ignore: &'a IgnoreMatcher,
        exclude: &'a IgnoreMatcher,
    ) -> Self {
        Self {
            input_root,
            dest_root,
            owner: None,
            chmod: None,
            ignore,
            exclude,
            links: HashMap::new(),
        }
    }

    /// Copies what is inside the directory `src` into the existing directory `target`,
    /// leaving `target`'s own attributes alone.
    pub(super) fn copy_dir_contents(
        &mut self,
        src: &Path,
        target: &Path,
    ) -> Result<(), FileOpError> {
        self.copy_children(src, target, &Walk::default())
            .map(|_| ())
    }

    /// Copies the non-directory `src` to `target`, replacing what is there.
    pub(super) fn copy_single(
        &mut self,
        src: &Path,
        meta: &Metadata,
        target: &Path,
    ) -> Result<(), FileOpError> {
        self.copy_leaf(src, meta, target).map(|_| ())
    }

    /// Copies the children of `src` into `target`; returns how many entries were written.
    fn copy_children(
        &mut self,
        src: &Path,
        target: &Path,
        walk: &Walk,
    ) -> Result<usize, FileOpError> {
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(io_err("read directory", src))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err("read directory", src))?;
        names.sort();
        let mut written = 0;
        for name in names {
            let child_src = src.join(&name);
            let child_target = target.join(&name);
            let source_rel = match walk.source_rel.as_str() {
                "" => name.to_string_lossy().into_owned(),
                parent => format!("{parent}/{}", name.to_string_lossy()),
            };
            let context_rel = child_src
                .strip_prefix(self.input_root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (ignored, ignore_state) = self
                .ignore
                .matches_in_walk(&context_rel, walk.ignore.as_ref());
            let (excluded, exclude_state) = self
                .exclude
                .matches_in_walk(&source_rel, walk.exclude.as_ref());
            let Some(meta) = lstat(&child_src)? else {
                continue; // removed while we were copying
            };
            if !meta.is_dir() {
                if !ignored && !excluded {
                    written += self.copy_leaf(&child_src, &meta, &child_target)?;
                }
                continue;
            }
            // A left-out directory may still hold entries a `!` pattern brings back.
            let skip_whole = (ignored && self.ignore.excludes_everything_below(&context_rel))
                || (excluded && self.exclude.excludes_everything_below(&source_rel));
            if skip_whole {
                continue;
            }
            let child_walk = Walk {
                source_rel,
                ignore: Some(ignore_state),
                exclude: Some(exclude_state),
            };
            written += self.copy_dir(
                &child_src,
                &meta,
                &child_target,
                &child_walk,
                ignored || excluded,
            )?;
        }
        Ok(written)
    }

    /// Copies directory `src` to `target` (merging into an existing directory). A
    /// `left_out` directory is kept only when something inside it was copied.
    fn copy_dir(
        &mut self,
        src: &Path,
        meta: &Metadata,
        target: &Path,
        walk: &Walk,
        left_out: bool,
    ) -> Result<usize, FileOpError> {
        let created = match lstat(target)? {
            None => {
                fs::create_dir(target).map_err(io_err("mkdir", target))?;
                true
            }
            Some(existing) if existing.is_dir() => false,
            Some(_) => {
                return Err(FileOpError::NotADirectory {
                    path: shown(self.dest_root, target),
                });
            }
        };
        let written = self.copy_children(src, target, walk)?;
        if left_out && written == 0 {
            if created {
                fs::remove_dir(target).map_err(io_err("rmdir", target))?;
            }
            return Ok(0);
        }
        self.copy_metadata(src, meta, target)?;
        Ok(written + 1)
    }

    /// Copies a non-directory; returns 1 when something was written.
    fn copy_leaf(
        &mut self,
        src: &Path,
        meta: &Metadata,
        target: &Path,
    ) -> Result<usize, FileOpError> {
        let file_type = meta.file_type();
        if file_type.is_socket() {
            return Ok(0); // sockets cannot be copied and a context never carries them
        }
        self.clear_target(target)?;
        if file_type.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1
                && let Some(first) = self.links.get(&key)
            {
                fs::hard_link(first, target).map_err(io_err("link", target))?;
                return Ok(1);
            }
            copy_file_data(src, target)?;
            if meta.nlink() > 1 {
                self.links.insert(key, target.to_path_buf());
            }
        } else if file_type.is_symlink() {
            let link = fs::read_link(src).map_err(io_err("readlink", src))?;
            std::os::unix::fs::symlink(&link, target).map_err(io_err("symlink", target))?;
        } else if file_type.is_char_device() || file_type.is_block_device() || file_type.is_fifo() {
            let rdev = meta.rdev();
            sys::mknod(target, meta.mode(), libc::major(rdev), libc::minor(rdev))
                .map_err(io_err("mknod", target))?;
        } else {
            return Err(FileOpError::UnsupportedFileType {
                path: src.display().to_string(),
            });
        }
        self.copy_metadata(src, meta, target)?;
        Ok(1)
    }

    /// Removes a non-directory at `target` so a new entry can take its place.
    fn clear_target(&self, target: &Path) -> Result<(), FileOpError> {
        match lstat(target)? {
            None => Ok(()),
            Some(existing) if existing.is_dir() => Err(FileOpError::ReplaceDirectory {
                path: shown(self.dest_root, target),
            }),
            Some(_) => fs::remove_file(target).map_err(io_err("remove", target)),
        }
    }

    /// Owner, mode, extended attributes and times of `src` onto `target`, in that order:
    /// chown clears set-id bits, and every change bumps the times.
    pub(super) fn copy_metadata(
        &self,
        src: &Path,
        meta: &Metadata,
        target: &Path,
    ) -> Result<(), FileOpError> {
        let (uid, gid) = self.owner.unwrap_or((meta.uid(), meta.gid()));
        std::os::unix::fs::lchown(target, Some(uid), Some(gid)).map_err(io_err("chown", target))?;
        if !meta.file_type().is_symlink() {
            let mode = match self.chmod {
                Some(chmod) => chmod.apply(meta.mode(), meta.is_dir()),
                None => meta.mode() & 0o7777,
            };
            fs::set_permissions(target, fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", target))?;
        }
        copy_xattrs(src, target);
        sys::set_times_nofollow(
            target,
            (meta.atime(), meta.atime_nsec()),
            (meta.mtime(), meta.mtime_nsec()),
        )
        .map_err(io_err("set times of", target))
    }
}

/// Copies file content into a new file at `target` (never through a symlink).
fn copy_file_data(src: &Path, target: &Path) -> Result<(), FileOpError> {
    let mut reader = fs::File::open(src).map_err(io_err("open", src))?;
    let mut writer = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(io_err("create", target))?;
    std::io::copy(&mut reader, &mut writer).map_err(io_err("copy to", target))?;
    Ok(())
}

/// Copies extended attributes. Like BuildKit, failures are not fatal: the destination
/// filesystem may not support a namespace (or `trusted.*` may need privileges).
fn copy_xattrs(src: &Path, target: &Path) {
    let Ok(names) = sys::llistxattr(src) else {
        return;
    };
    for name in names {
        if let Ok(Some(value)) = sys::lgetxattr(src, &name) {
            let _ = sys::lsetxattr(target, &name, &value);
        }
    }
}
