//! Walks a directory tree in the order a layer tar lists it: depth first, each directory's
//! children sorted by name bytes, a directory before its contents.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{ExportError, IoContext, Result};

pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// What the walker found, already translated to what the tar entry should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir,
    File {
        size: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    HardLink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// An empty regular file standing for a deletion or an opaque directory (OCI whiteouts).
    Whiteout,
}

#[derive(Debug, Clone)]
pub(crate) struct ScannedEntry {
    /// Relative path, no leading `/` or `./`, no trailing `/`.
    pub(crate) rel: Vec<u8>,
    /// Where the data lives on disk (regular files only need it).
    pub(crate) source: PathBuf,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: i64,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanMode {
    /// An overlayfs upper dir: 0/0 character devices are deletions, `overlay.opaque=y`
    /// directories hide everything below them.
    OverlayDiff,
    /// A complete filesystem tree taken as it is.
    Tree,
}

// glibc's encoding of dev_t: 12 bits of major and 20 of minor, split across the word.
pub(crate) fn dev_major(dev: u64) -> u32 {
    (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32
}

pub(crate) fn dev_minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32
}

fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

fn is_opaque(path: &Path) -> Result<bool> {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        match xattr::get(path, name) {
            Ok(Some(v)) if v.as_slice() == b"y" => return Ok(true),
            Ok(_) => {}
            // Filesystems without xattr support cannot hold an opaque directory.
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(false),
            Err(e) => return Err(e).ctx("read xattr", path),
        }
    }
    Ok(false)
}

fn read_xattrs(path: &Path, mode: ScanMode) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("list xattrs", path),
    };
    let mut out = Vec::new();
    for name in names {
        let name_bytes = name.as_bytes().to_vec();
        if mode == ScanMode::OverlayDiff {
            // A metacopy file has no data in the upper dir and a redirected directory
            // keeps its lower contents under another name: archiving either loses data.
            for (suffix, feature) in [(".metacopy", "metacopy"), (".redirect", "redirect_dir")] {
                if is_overlay_xattr(&name_bytes) && name_bytes.ends_with(suffix.as_bytes()) {
                    return Err(ExportError::OverlayFeature {
                        path: path.to_path_buf(),
                        feature,
                    });
                }
            }
        }
        let internal = match mode {
            ScanMode::OverlayDiff => is_overlay_xattr(&name_bytes),
            ScanMode::Tree => name_bytes.starts_with(b"trusted.overlay."),
        };
        if internal {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).ctx("read xattr", path)? {
            out.push((name_bytes, value));
        }
    }
    out.sort();
    Ok(out)
}

fn join_rel(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    let mut rel = Vec::with_capacity(parent.len() + 1 + name.len());
    rel.extend_from_slice(parent);
    rel.push(b'/');
    rel.extend_from_slice(name);
    rel
}

fn sorted_children(dir: &Path) -> Result<Vec<(Vec<u8>, PathBuf)>> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir).ctx("read directory", dir)? {
        let entry = entry.ctx("read directory", dir)?;
        children.push((entry.file_name().as_bytes().to_vec(), entry.path()));
    }
    children.sort();
    Ok(children)
}

fn base(meta: &Metadata, rel: Vec<u8>, source: PathBuf, kind: EntryKind) -> ScannedEntry {
    ScannedEntry {
        rel,
        source,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        xattrs: Vec::new(),
    }
}

/// Calls `visit` for every entry below `root` (the root itself is not an entry).
pub(crate) fn walk(
    root: &Path,
    mode: ScanMode,
    visit: &mut dyn FnMut(ScannedEntry) -> Result<()>,
) -> Result<()> {
    // Explicit stack: deep trees must not overflow the thread's stack.
    let mut stack: Vec<(Vec<u8>, PathBuf)> = Vec::new();
    for (name, path) in sorted_children(root)?.into_iter().rev() {
        stack.push((name, path));
    }
    let mut first_link: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    while let Some((rel, path)) = stack.pop() {
        let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
        let ft = meta.file_type();
        if mode == ScanMode::OverlayDiff && ft.is_char_device() && meta.rdev() == 0 {
            // Checked before hard links: overlayfs may share one inode among whiteouts.
            let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
                Some(i) => (&rel[..i], &rel[i + 1..]),
                None => (&rel[..0], &rel[..]),
            };
            let wh_name = [WHITEOUT_PREFIX, name].concat();
            let mut e = base(&meta, join_rel(parent, &wh_name), path, EntryKind::Whiteout);
            e.mode = 0;
            visit(e)?;
            continue;
        }
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File { size: meta.len() }
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).ctx("read link", &path)?;
            EntryKind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if ft.is_char_device() {
            EntryKind::CharDevice {
                major: dev_major(meta.rdev()),
                minor: dev_minor(meta.rdev()),
            }
        } else if ft.is_block_device() {
            EntryKind::BlockDevice {
                major: dev_major(meta.rdev()),
                minor: dev_minor(meta.rdev()),
            }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            // Sockets cannot be carried in a tar; like other builders, leave them out.
            continue;
        };
        let mut kind = kind;
        if kind != EntryKind::Dir && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            match first_link.get(&key) {
                Some(target) => {
                    kind = EntryKind::HardLink {
                        target: target.clone(),
                    }
                }
                None => {
                    first_link.insert(key, rel.clone());
                }
            }
        }
        let is_dir = kind == EntryKind::Dir;
        let mut entry = base(&meta, rel.clone(), path.clone(), kind);
        entry.xattrs = read_xattrs(&path, mode)?;
        visit(entry)?;
        if is_dir {
            if mode == ScanMode::OverlayDiff && is_opaque(&path)? {
                let mut marker = base(
                    &meta,
                    join_rel(&rel, OPAQUE_MARKER),
                    path.clone(),
                    EntryKind::Whiteout,
                );
                marker.mode &= 0o777;
                visit(marker)?;
            }
            for (name, child) in sorted_children(&path)?.into_iter().rev() {
                stack.push((join_rel(&rel, &name), child));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_split_like_glibc() {
        // makedev(4, 64) and makedev(259, 1048575)
        assert_eq!((dev_major(0x440), dev_minor(0x440)), (4, 64));
        let dev: u64 = (259 & 0xfff) << 8 | (1_048_575 & 0xff) | ((1_048_575 & !0xff) << 12);
        assert_eq!((dev_major(dev), dev_minor(dev)), (259, 1_048_575));
    }

    #[test]
    fn walk_is_depth_first_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a.txt"), b"").unwrap();
        fs::write(r.join("a/b/z"), b"").unwrap();
        fs::write(r.join("a/c"), b"").unwrap();
        let mut seen = Vec::new();
        walk(r, ScanMode::Tree, &mut |e| {
            seen.push(String::from_utf8(e.rel).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["a", "a/b", "a/b/z", "a/c", "a.txt"]);
    }

    #[test]
    fn metacopy_upper_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"").unwrap();
        // user.* is what a userxattr overlay mount uses; it needs no privilege to set.
        if xattr::set(&f, "user.overlay.metacopy", b"").is_err() {
            return;
        }
        let err = walk(dir.path(), ScanMode::OverlayDiff, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(
            err,
            ExportError::OverlayFeature {
                feature: "metacopy",
                ..
            }
        ));
        walk(dir.path(), ScanMode::Tree, &mut |_| Ok(())).unwrap();
    }
}
