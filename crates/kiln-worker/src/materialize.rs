//! Flattening a stack of overlay-style layer directories into one plain directory, as the
//! overlay mount would show it: used when a chain is too long to mount, and wherever a
//! plain copy of a rootfs is wanted.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};
use crate::sys;
use crate::unpack::{OVERLAY_OPAQUE_XATTR, remove_any};

/// Applies `layers` (bottom first) onto `dest`, which must exist. Overlay whiteouts remove
/// what lower layers put there and opaque directories drop their lower contents; the
/// result holds no whiteouts or overlay attributes.
pub fn materialize(layers: &[&Path], dest: &Path) -> Result<()> {
    for layer in layers {
        let mut links = HashMap::new();
        apply_dir(layer, dest, &mut links)?;
    }
    Ok(())
}

/// Copies the children of `src` into `dst` with overlay semantics.
fn apply_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    let entries = fs::read_dir(src).map_err(io_err("read dir", src))?;
    for entry in entries {
        let entry = entry.map_err(io_err("read dir", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(io_err("stat", &from))?;
        let ft = meta.file_type();
        if is_whiteout(&meta) {
            remove_any(&to)?;
            continue;
        }
        if ft.is_dir() {
            let existing = fs::symlink_metadata(&to).ok();
            match existing {
                Some(m) if m.is_dir() => {
                    if is_opaque(&from)? {
                        clear_dir(&to)?;
                    }
                }
                Some(_) => {
                    remove_any(&to)?;
                    fs::create_dir(&to).map_err(io_err("mkdir", &to))?;
                }
                None => fs::create_dir(&to).map_err(io_err("mkdir", &to))?,
            }
            apply_dir(&from, &to, links)?;
            copy_attributes(&from, &to, &meta)?;
            continue;
        }
        remove_any(&to)?;
        if meta.nlink() > 1 && !ft.is_dir() {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                fs::hard_link(first, &to).map_err(io_err("hard link", &to))?;
                continue;
            }
            links.insert(key, to.clone());
        }
        if ft.is_file() {
            fs::copy(&from, &to).map_err(io_err("copy", &from))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err("readlink", &from))?;
            symlink(&target, &to).map_err(io_err("symlink", &to))?;
        } else {
            let kind = if ft.is_char_device() {
                libc::S_IFCHR
            } else if ft.is_block_device() {
                libc::S_IFBLK
            } else if ft.is_fifo() {
                libc::S_IFIFO
            } else {
                continue; // sockets are not content
            };
            let rdev = meta.rdev();
            sys::mknod(&to, kind | 0o600, libc::major(rdev), libc::minor(rdev))
                .map_err(io_err("mknod", &to))?;
        }
        copy_attributes(&from, &to, &meta)?;
    }
    Ok(())
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

pub(crate) fn is_opaque(dir: &Path) -> Result<bool> {
    let v =
        sys::lgetxattr(dir, OsStr::new(OVERLAY_OPAQUE_XATTR)).map_err(io_err("get xattr", dir))?;
    Ok(v.as_deref() == Some(b"y"))
}

fn clear_dir(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io_err("read dir", dir))? {
        let entry = entry.map_err(io_err("read dir", dir))?;
        remove_any(&entry.path())?;
    }
    Ok(())
}

/// Owner, mode, extended attributes (minus overlay's own) and times, in the order that
/// keeps set-id bits.
fn copy_attributes(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_err("chown", to))?;
    for name in sys::llistxattr(from).map_err(io_err("list xattrs", from))? {
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Some(value) = sys::lgetxattr(from, &name).map_err(io_err("get xattr", from))? {
            sys::lsetxattr(to, &name, &value).map_err(io_err("set xattr", to))?;
        }
    }
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err("chmod", to))?;
    }
    sys::set_times_nofollow(
        to,
        (meta.atime(), meta.atime_nsec()),
        (meta.mtime(), meta.mtime_nsec()),
    )
    .map_err(io_err("set times", to))
}
