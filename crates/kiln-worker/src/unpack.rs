//! Applying an OCI image layer (tar, optionally gzip) into an empty directory that can then
//! serve as an overlayfs lowerdir: OCI whiteouts become overlay whiteouts.
//!
//! - `dir/.wh.name` → character device 0/0 at `dir/name`;
//! - `dir/.wh..wh..opq` → `trusted.overlay.opaque=y` on `dir`.
//!
//! Member names containing `..` are refused; symlinks met while resolving a member's parent
//! directories are followed only inside the destination, so an archive can never write
//! outside it.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_err};
use crate::rootpath::{clean_relative, resolve_in_root};
use crate::sys;

pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub(crate) const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an unpack wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    /// Bytes of regular file content.
    pub bytes: u64,
    pub whiteouts: u64,
}

/// Unpacks a layer that may be gzip-compressed (detected from its first bytes).
pub fn unpack_layer_auto(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf().map_err(Error::LayerRead)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        unpack_layer(flate2::read::MultiGzDecoder::new(buffered), dest)
    } else {
        unpack_layer(buffered, dest)
    }
}

/// Unpacks an uncompressed layer tar into `dest` (normally a fresh, empty directory).
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    // Directory times are set last: creating their children would bump them again.
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries().map_err(Error::LayerRead)? {
        let mut entry = entry.map_err(Error::LayerRead)?;
        let raw_name = entry.path().map_err(Error::LayerRead)?.into_owned();
        let rel = clean_relative(&raw_name)?;
        let (Some(parent_rel), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue; // the archive root itself ("./"): dest keeps its own attributes
        };
        let parent = resolve_in_root(dest, parent_rel, true)?;
        ensure_dir(&parent)?;
        stats.entries += 1;

        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            sys::lsetxattr(&parent, OsStr::new(OVERLAY_OPAQUE_XATTR), b"y")
                .map_err(io_err("set opaque", &parent))?;
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) || hidden.is_empty() {
                continue; // other `.wh..wh.` markers are AUFS bookkeeping with no meaning here
            }
            let target = parent.join(OsStr::from_bytes(hidden));
            remove_any(&target)?;
            sys::mknod(&target, libc::S_IFCHR, 0, 0).map_err(io_err("create whiteout", &target))?;
            stats.whiteouts += 1;
            continue;
        }

        let path = parent.join(name);
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().map_err(Error::LayerRead)? & 0o7777;
        let bad = |reason: &str| Error::BadLayerEntry {
            path: raw_name.clone(),
            reason: reason.to_owned(),
        };

        // Anything already there (from earlier in this archive) is replaced, except that a
        // directory over a directory merges.
        let existing = fs::symlink_metadata(&path).ok();
        if let Some(m) = &existing
            && !(kind.is_dir() && m.is_dir())
        {
            remove_any(&path)?;
        }

        if kind.is_dir() {
            if !path.is_dir() {
                fs::create_dir(&path).map_err(io_err("mkdir", &path))?;
            }
        } else if kind.is_file() || kind == tar::EntryType::Continuous || kind.is_gnu_sparse() {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_err("create", &path))?;
            stats.bytes += io::copy(&mut entry, &mut f).map_err(Error::LayerRead)?;
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(Error::LayerRead)?
                .ok_or_else(|| bad("symlink without target"))?;
            symlink(&*target, &path).map_err(io_err("symlink", &path))?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(Error::LayerRead)?
                .ok_or_else(|| bad("hard link without target"))?;
            let source = resolve_in_root(dest, &clean_relative(&target)?, false)?;
            fs::hard_link(&source, &path).map_err(io_err("hard link", &path))?;
            continue; // shares the inode: its attributes are already right
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let major = header
                .device_major()
                .map_err(Error::LayerRead)?
                .unwrap_or(0);
            let minor = header
                .device_minor()
                .map_err(Error::LayerRead)?
                .unwrap_or(0);
            let ft = if kind.is_fifo() {
                libc::S_IFIFO
            } else if kind.is_character_special() {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            sys::mknod(&path, ft | 0o600, major, minor).map_err(io_err("mknod", &path))?;
        } else {
            continue; // pax/GNU metadata members are consumed by the reader; others carry no file
        }

        let uid = header.uid().map_err(Error::LayerRead)?;
        let gid = header.gid().map_err(Error::LayerRead)?;
        let (uid, gid) = (
            u32::try_from(uid).map_err(|_| bad("uid out of range"))?,
            u32::try_from(gid).map_err(|_| bad("gid out of range"))?,
        );
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io_err("chown", &path))?;
        apply_pax_xattrs(&mut entry, &path)?;
        if !kind.is_symlink() {
            // After chown, which clears set-id bits.
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", &path))?;
        }
        let mtime = i64::try_from(header.mtime().map_err(Error::LayerRead)?).unwrap_or(i64::MAX);
        if kind.is_dir() {
            dir_times.push((path, mtime));
        } else {
            sys::set_times_nofollow(&path, (mtime, 0), (mtime, 0))
                .map_err(io_err("set times", &path))?;
        }
    }
    for (dir, mtime) in dir_times.into_iter().rev() {
        sys::set_times_nofollow(&dir, (mtime, 0), (mtime, 0)).map_err(io_err("set times", &dir))?;
    }
    Ok(stats)
}

/// Extended attributes recorded as PAX `SCHILY.xattr.*` records. Overlay's own `trusted.overlay.*`
/// attributes are never taken from an archive: they would change how the layer stacks.
fn apply_pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<()> {
    let Some(exts) = entry.pax_extensions().map_err(Error::LayerRead)? else {
        return Ok(());
    };
    for ext in exts {
        let ext = ext.map_err(Error::LayerRead)?;
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        sys::lsetxattr(path, OsStr::from_bytes(name), ext.value_bytes())
            .map_err(io_err("set xattr", path))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents (root-owned, 0755) if needed.
fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("mkdir", dir))
}

/// Removes whatever is at `path` (file, symlink, device or whole tree); fine if absent.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}
