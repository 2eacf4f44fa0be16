//! ADD's archive handling: a local file whose content is a tar archive, plain or
//! compressed with gzip, bzip2, xz or zstd, is extracted into the destination instead
//! of being copied. Detection looks at content only, never at the name.
//!
//! Member names are cleaned and may not climb out with `..`; each member's parent is
//! resolved inside the destination root, so symlinks (including ones the archive just
//! created) can never lead a write outside it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::error::{FileOpError, io_err};
use super::paths::{create_dir, lstat, mkdir_all, resolve, shown};
use crate::sys;

const TAR_BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    fn from_magic(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

fn open_decompressed(path: &Path, compression: Compression) -> io::Result<Box<dyn Read>> {
    let file = io::BufReader::new(File::open(path)?);
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    })
}

/// The compression of `path` when, once decompressed, it starts with a valid tar
/// header; `None` when it is not an archive (then ADD copies it as it is).
pub(super) fn detect(path: &Path) -> Result<Option<Compression>, FileOpError> {
    let mut head = [0u8; 6];
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let read = read_up_to(&mut file, &mut head).map_err(io_err("read", path))?;
    let compression = Compression::from_magic(&head[..read]);
    let Ok(mut reader) = open_decompressed(path, compression) else {
        return Ok(None);
    };
    let mut block = [0u8; TAR_BLOCK];
    match read_up_to(&mut reader, &mut block) {
        Ok(TAR_BLOCK) if is_tar_header(&block) => Ok(Some(compression)),
        _ => Ok(None),
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Whether `block` is a tar header: its checksum field matches the sum of its bytes
/// (with the field itself counted as spaces), signed or unsigned as tar allows.
fn is_tar_header(block: &[u8; TAR_BLOCK]) -> bool {
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(recorded) = i64::from_str_radix(&digits, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (index, byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&index) {
            b' '
        } else {
            *byte
        };
        unsigned += i64::from(byte);
        signed += i64::from(byte as i8);
    }
    recorded == unsigned || recorded == signed
}

/// Extracts the archive at `path` into the directory `dir` (a resolved host path under
/// `dest_root`). Entries keep their modes, times and owners unless `owner` is given.
pub(super) fn extract(
    path: &Path,
    compression: Compression,
    dest_root: &Path,
    dir: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(), FileOpError> {
    let archive_name = path.display().to_string();
    let bad = |problem: String| FileOpError::Archive {
        archive: archive_name.clone(),
        problem,
    };
    let reader = open_decompressed(path, compression).map_err(io_err("open", path))?;
    let base = shown(dest_root, dir);
    let mut archive = tar::Archive::new(reader);
    // Directory times are set last: extracting their children changes them again.
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let rel = member_path(&name).ok_or_else(|| bad(format!("member {name:?} escapes")))?;
        let (Some(parent), Some(file_name)) = (rel.parent(), rel.file_name()) else {
            continue; // the archive's own root: the destination keeps its attributes
        };
        let parent_image = format!("{base}/{}", parent.display());
        let target = mkdir_all(dest_root, &parent_image, 0o755, owner)?.join(file_name);
        let header = entry.header().clone();
        let kind = header.entry_type();
        let existing = lstat(&target)?;
        if let Some(meta) = existing.as_ref()
            && !(meta.is_dir() && kind.is_dir())
        {
            remove_any(&target, meta.is_dir())?;
        }
        // Like Go's tar reader, an empty numeric field reads as 0.
        let mode = header.mode().unwrap_or(0) & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                if existing.is_none() {
                    create_dir(&target, 0o700, None)?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(io_err("create", &target))?;
                io::copy(&mut entry, &mut file).map_err(io_err("write", &target))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(|e| bad(e.to_string()))?;
                let link = link.ok_or_else(|| bad(format!("symlink {name:?} has no target")))?;
                std::os::unix::fs::symlink(&link, &target).map_err(io_err("symlink", &target))?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name().map_err(|e| bad(e.to_string()))?;
                let link_rel = link
                    .as_deref()
                    .and_then(member_path)
                    .ok_or_else(|| bad(format!("hard link {name:?} has a bad target")))?;
                let source = resolve(dest_root, &format!("{base}/{}", link_rel.display()), false)?;
                fs::hard_link(&source, &target).map_err(io_err("link", &target))?;
                continue; // the linked inode already has its attributes
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                sys::mknod(&target, file_type | mode, major, minor)
                    .map_err(io_err("mknod", &target))?;
            }
            _ => continue, // metadata-only records the tar reader did not fold in
        }
        let (uid, gid) = match owner {
            Some(ids) => ids,
            None => (
                u32::try_from(header.uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(header.gid().unwrap_or(0)).unwrap_or(0),
            ),
        };
        std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
            .map_err(io_err("chown", &target))?;
        if !kind.is_symlink() {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", &target))?;
        }
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions.flatten() {
                if let Some(xattr) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    let name = std::ffi::OsStr::new(std::str::from_utf8(xattr).unwrap_or(""));
                    if !name.is_empty() {
                        let _ = sys::lsetxattr(&target, name, extension.value_bytes());
                    }
                }
            }
        }
        let mtime = i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0);
        if kind.is_dir() {
            dir_times.push((target, mtime));
        } else {
            sys::set_times_nofollow(&target, (mtime, 0), (mtime, 0))
                .map_err(io_err("set times of", &target))?;
        }
    }
    for (path, mtime) in dir_times.into_iter().rev() {
        sys::set_times_nofollow(&path, (mtime, 0), (mtime, 0))
            .map_err(io_err("set times of", &path))?;
    }
    Ok(())
}

/// A member name as a clean relative path; `None` when `..` would climb out.
fn member_path(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

fn remove_any(path: &Path, is_dir: bool) -> Result<(), FileOpError> {
    if is_dir {
        fs::remove_dir_all(path).map_err(io_err("remove", path))
    } else {
        fs::remove_file(path).map_err(io_err("remove", path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(Compression::from_magic(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::from_magic(b"BZh91A"), Compression::Bzip2);
        assert_eq!(
            Compression::from_magic(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(
            Compression::from_magic(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::from_magic(b"hello"), Compression::None);
    }

    #[test]
    fn member_names_cannot_climb_out() {
        assert_eq!(member_path(Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(member_path(Path::new("/a/../b")), Some(PathBuf::from("b")));
        assert_eq!(member_path(Path::new("a/../../b")), None);
        assert_eq!(member_path(Path::new("./")), Some(PathBuf::new()));
    }

    #[test]
    fn tar_header_checksum() {
        let mut header = tar::Header::new_gnu();
        header.set_path("file").unwrap();
        header.set_size(0);
        header.set_cksum();
        let block: &[u8; TAR_BLOCK] = header.as_bytes();
        assert!(is_tar_header(block));
        assert!(!is_tar_header(&[0u8; TAR_BLOCK]));
        let mut text = [b'a'; TAR_BLOCK];
        text[148..156].copy_from_slice(b"0000000\0");
        assert!(!is_tar_header(&text));
    }
}
