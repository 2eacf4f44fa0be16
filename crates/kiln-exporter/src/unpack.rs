//! Applying layer tars to a directory, OCI whiteouts included: the inverse of the layer
//! writer, used to materialize an image's final filesystem.

use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use tar::EntryType;

use crate::error::{ExportError, IoContext, Result};
use crate::layer::scan::{OPAQUE_MARKER, WHITEOUT_PREFIX};

const MAX_SYMLINKS: usize = 40;
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A reader of the tar inside a layer blob, whatever its compression (told by magic bytes,
/// since docker archives carry no media types).
pub fn decompressed<'a, R: Read + 'a>(blob: R) -> Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::new(blob);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::Decoder::with_buffer(buffered)?)
    } else {
        Box::new(buffered)
    })
}

/// Splits an archive path into components, refusing any that climbs out with `..`.
fn components(raw: &[u8]) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(ExportError::UnsafePath(String::from_utf8_lossy(raw).into())),
            _ => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

/// Resolves directory components below `root`, following symlinks as if `root` were `/`
/// (nothing resolves outside it) and creating missing directories when `create` is set.
fn resolve_dir(root: &Path, comps: &[OsString], create: bool) -> Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut queue: std::collections::VecDeque<OsString> = comps.iter().cloned().collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        if c == "." || c.is_empty() {
            continue;
        }
        if c == ".." {
            resolved.pop();
            continue;
        }
        let mut here: PathBuf = root.to_path_buf();
        here.extend(&resolved);
        here.push(&c);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP)).ctx("resolve", &here);
                }
                let target = fs::read_link(&here).ctx("read link", &here)?;
                let bytes = target.as_os_str().as_bytes();
                if bytes.starts_with(b"/") {
                    resolved.clear();
                }
                for part in bytes.split(|&b| b == b'/').rev() {
                    queue.push_front(OsString::from_vec(part.to_vec()));
                }
            }
            Ok(m) if m.is_dir() => resolved.push(c),
            Ok(_) => {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR)).ctx("resolve", &here);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&here).ctx("create directory", &here)?;
                resolved.push(c);
            }
            Err(e) => return Err(e).ctx("resolve", &here),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn remove_any(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).ctx("remove", path),
        _ => Ok(()),
    }
}

fn makedev(major: u32, minor: u32) -> libc::dev_t {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

fn mknod(path: &Path, kind: libc::mode_t, perm: u32, dev: libc::dev_t) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ExportError::UnsafePath(path.display().to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated string that lives across the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | (perm & 0o7777), dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error()).ctx("mknod", path)
    }
}

struct EntryMeta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn set_metadata(path: &Path, meta: &EntryMeta, is_symlink: bool) -> Result<()> {
    let uid = u32::try_from(meta.uid).ok();
    let gid = u32::try_from(meta.gid).ok();
    if let Err(e) = std::os::unix::fs::lchown(path, uid, gid) {
        // Unprivileged exports keep the caller's ownership rather than failing.
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(e).ctx("chown", path);
        }
    }
    for (name, value) in &meta.xattrs {
        let name = OsStr::from_bytes(name);
        if let Err(e) = xattr::set(path, name, value)
            && !is_symlink
        {
            return Err(e).ctx("set xattr", path);
        }
    }
    if !is_symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode & 0o7777))
            .ctx("chmod", path)?;
    }
    let t = FileTime::from_unix_time(meta.mtime, 0);
    filetime::set_symlink_file_times(path, t, t).ctx("set times", path)
}

/// A numeric header field; all-blank counts as zero, as other tar readers take it.
fn numeric(value: io::Result<u64>, raw: &[u8]) -> Result<u64> {
    match value {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<EntryMeta> {
    let h = entry.header();
    let old = h.as_old();
    let mut meta = EntryMeta {
        mode: numeric(h.mode().map(u64::from), &old.mode)? as u32,
        uid: numeric(h.uid(), &old.uid)?,
        gid: numeric(h.gid(), &old.gid)?,
        mtime: i64::try_from(numeric(h.mtime(), &old.mtime)?).unwrap_or(0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                meta.xattrs
                    .push((name.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"uid" || key == b"gid" {
                let v = std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ExportError::InvalidImage("bad pax uid/gid".into()))?;
                if key == b"uid" {
                    meta.uid = v;
                } else {
                    meta.gid = v;
                }
            }
        }
    }
    Ok(meta)
}

/// Applies one layer blob (compressed or not) on top of the tree at `root`.
pub fn unpack_layer<R: Read>(blob: R, root: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(decompressed(blob)?);
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_path = entry.path_bytes().into_owned();
        let comps = components(&raw_path)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // the root itself
        };
        let name_bytes = name.as_bytes();
        let is_whiteout = name_bytes.starts_with(WHITEOUT_PREFIX);
        // A whiteout below a directory that does not exist has nothing to delete.
        let parent = match resolve_dir(root, parents, !is_whiteout) {
            Err(ExportError::Io { source, .. })
                if is_whiteout && source.kind() == io::ErrorKind::NotFound =>
            {
                continue;
            }
            other => other?,
        };
        if name_bytes == OPAQUE_MARKER {
            for child in fs::read_dir(&parent).ctx("read directory", &parent)? {
                let child = child.ctx("read directory", &parent)?.path();
                if !created.contains(&child) {
                    remove_any(&child)?;
                }
            }
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX) {
            remove_any(&parent.join(OsStr::from_bytes(hidden)))?;
            continue;
        }
        let target = parent.join(name);
        let meta = entry_meta(&mut entry)?;
        let kind = entry.header().entry_type();
        let existing = fs::symlink_metadata(&target).ok();
        let keep_dir =
            kind == EntryType::Directory && existing.as_ref().is_some_and(|m| m.is_dir());
        if existing.is_some() && !keep_dir {
            remove_any(&target)?;
        }
        match kind {
            EntryType::Directory => {
                if !keep_dir {
                    fs::create_dir(&target).ctx("create directory", &target)?;
                }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .ctx("create", &target)?;
                io::copy(&mut entry, &mut file).ctx("write", &target)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| ExportError::InvalidImage("symlink without target".into()))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .ctx("symlink", &target)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| ExportError::InvalidImage("hard link without target".into()))?;
                let lcomps = components(&link)?;
                let Some((lname, lparents)) = lcomps.split_last() else {
                    return Err(ExportError::UnsafePath(
                        String::from_utf8_lossy(&link).into(),
                    ));
                };
                let source = resolve_dir(root, lparents, false)?.join(lname);
                fs::hard_link(&source, &target).ctx("hard link", &target)?;
                // A hard link shares the inode: its metadata is already the first path's.
                created.insert(target);
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let dev = makedev(
                    h.device_major()?.unwrap_or(0),
                    h.device_minor()?.unwrap_or(0),
                );
                let kind = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                mknod(&target, kind, meta.mode, dev)?;
            }
            // PAX/GNU extension headers are consumed by the tar reader; others carry no file.
            _ => continue,
        }
        set_metadata(&target, &meta, kind == EntryType::Symlink)?;
        if kind == EntryType::Directory {
            dir_times.push((target.clone(), meta.mtime));
        }
        created.insert(target);
    }
    // Children change their directory's mtime, so directories are stamped last, deepest first.
    for (dir, mtime) in dir_times.into_iter().rev() {
        let t = FileTime::from_unix_time(mtime, 0);
        filetime::set_symlink_file_times(&dir, t, t).ctx("set times", &dir)?;
    }
    Ok(())
}

/// Applies a layer blob file.
pub fn unpack_layer_file(blob: &Path, root: &Path) -> Result<()> {
    let file = File::open(blob).ctx("open layer", blob)?;
    unpack_layer(file, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_parent_components() {
        assert!(components(b"a/../../etc").is_err());
        assert_eq!(components(b"./a//b/").unwrap().len(), 2);
    }

    #[test]
    fn symlinked_parents_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/../../..", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("real", root.join("rel")).unwrap();
        let p = resolve_dir(
            &root,
            &[OsString::from("escape"), OsString::from("x")],
            true,
        )
        .unwrap();
        assert_eq!(p, root.join("x"));
        let p = resolve_dir(&root, &[OsString::from("rel")], false).unwrap();
        assert_eq!(p, root.join("real"));
    }

    fn layer(entries: &[(&str, tar::EntryType)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, path, io::empty()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_delete_and_never_create() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let base = layer(&[
            ("keep/", EntryType::Directory),
            ("keep/a", EntryType::Regular),
            ("keep/gone", EntryType::Regular),
            ("opq/", EntryType::Directory),
            ("opq/old", EntryType::Regular),
        ]);
        unpack_layer(base.as_slice(), root).unwrap();
        let diff = layer(&[
            ("keep/.wh.gone", EntryType::Regular),
            ("missing/.wh.x", EntryType::Regular),
            ("opq/", EntryType::Directory),
            ("opq/.wh..wh..opq", EntryType::Regular),
            ("opq/new", EntryType::Regular),
        ]);
        unpack_layer(diff.as_slice(), root).unwrap();
        assert!(root.join("keep/a").exists());
        assert!(!root.join("keep/gone").exists());
        assert!(!root.join("keep/.wh.gone").exists());
        assert!(!root.join("missing").exists());
        assert!(!root.join("opq/old").exists());
        assert!(root.join("opq/new").exists());
    }

    #[test]
    fn hostile_layers_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "escape", "../../../..").unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "escape/pwned", &b"bad"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        unpack_layer(bytes.as_slice(), &root).unwrap();
        assert!(root.join("pwned").is_file());
        assert!(!dir.path().join("pwned").exists());

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::Link);
        h.set_size(0);
        // The tar crate refuses to write `..` itself, so the name goes in raw.
        h.as_ustar_mut().unwrap().linkname[..13].copy_from_slice(b"../etc/passwd");
        h.set_path("link").unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let bytes = b.into_inner().unwrap();
        assert!(matches!(
            unpack_layer(bytes.as_slice(), &root),
            Err(ExportError::UnsafePath(_))
        ));
    }

    #[test]
    fn makedev_inverts_the_scanner_split() {
        use crate::layer::scan::{dev_major, dev_minor};
        let dev = makedev(259, 1_048_575);
        assert_eq!((dev_major(dev), dev_minor(dev)), (259, 1_048_575));
    }
}
