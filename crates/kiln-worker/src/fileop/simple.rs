//! mkdir, mkfile and rm, with paths resolved inside the destination root.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::{FileOpError, io_err};
use super::paths::{clean_absolute, create_dir, lstat, mkdir_all, resolve};

/// Like BuildKit, modes of created entries keep only the permission bits.
const PERMISSION_BITS: u32 = 0o777;

/// Creates a directory. Without `parents` the parent must exist; an existing entry at
/// `path` is left as it is (BuildKit ignores "already exists").
pub(super) fn mkdir(
    root: &Path,
    path: &str,
    mode: u32,
    parents: bool,
    owner: Option<(u32, u32)>,
) -> Result<(), FileOpError> {
    let path = clean_absolute(path);
    let mode = mode & PERMISSION_BITS;
    if parents {
        return mkdir_all(root, &path, mode, owner).map(|_| ());
    }
    let real = resolve(root, &path, true)?;
    if lstat(&real)?.is_some() {
        return Ok(());
    }
    if !real.parent().map(Path::is_dir).unwrap_or(false) {
        return Err(FileOpError::MissingParent { path });
    }
    create_dir(&real, mode, owner)
}

/// Writes a file with `data`, replacing the content of an existing one (through a
/// symlink, the link's target inside the root is written).
pub(super) fn mkfile(
    root: &Path,
    path: &str,
    mode: u32,
    data: &[u8],
    owner: Option<(u32, u32)>,
) -> Result<(), FileOpError> {
    let path = clean_absolute(path);
    let real = resolve(root, &path, true)?;
    match lstat(&real)? {
        Some(meta) if meta.is_dir() => return Err(FileOpError::ReplaceDirectory { path }),
        Some(_) => {}
        None if !real.parent().map(Path::is_dir).unwrap_or(false) => {
            return Err(FileOpError::MissingParent { path });
        }
        None => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&real)
        .map_err(io_err("create", &real))?;
    file.write_all(data).map_err(io_err("write", &real))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(&real, Some(uid), Some(gid)).map_err(io_err("chown", &real))?;
    }
    fs::set_permissions(&real, fs::Permissions::from_mode(mode & PERMISSION_BITS))
        .map_err(io_err("chmod", &real))
}

/// Removes `path` and, for a directory, everything in it. A final symlink is removed
/// itself, not its target.
pub(super) fn rm(root: &Path, path: &str, allow_not_found: bool) -> Result<(), FileOpError> {
    let cleaned = clean_absolute(path);
    let Some((parent, name)) = cleaned
        .rsplit_once('/')
        .filter(|(_, name)| !name.is_empty())
    else {
        return Err(FileOpError::InvalidPath {
            path: path.to_string(),
        });
    };
    let real = resolve(root, if parent.is_empty() { "/" } else { parent }, true)?.join(name);
    match lstat(&real)? {
        None if allow_not_found => Ok(()),
        None => Err(FileOpError::NotFound { path: cleaned }),
        Some(meta) if meta.is_dir() => fs::remove_dir_all(&real).map_err(io_err("remove", &real)),
        Some(_) => fs::remove_file(&real).map_err(io_err("remove", &real)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn mkdir_mkfile_rm_stay_in_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("real")).unwrap();
        symlink("/real", root.join("link")).unwrap();
        symlink("../../../../escape", root.join("evil")).unwrap();

        mkdir(&root, "/link/a/b", 0o750, true, None).unwrap();
        assert!(root.join("real/a/b").is_dir());
        assert!(matches!(
            mkdir(&root, "/none/x", 0o755, false, None),
            Err(FileOpError::MissingParent { .. })
        ));
        mkdir(&root, "/real/a", 0o700, false, None).unwrap(); // exists: fine

        mkfile(&root, "/evil", 0o640, b"hi", None).unwrap();
        assert_eq!(fs::read(root.join("escape")).unwrap(), b"hi");
        assert!(!dir.path().join("escape").exists());
        let mode = fs::metadata(root.join("escape"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);

        rm(&root, "/link", false).unwrap();
        assert!(fs::symlink_metadata(root.join("link")).is_err());
        assert!(root.join("real/a/b").is_dir());
        rm(&root, "/real", false).unwrap();
        assert!(!root.join("real").exists());
        assert!(matches!(
            rm(&root, "/real", false),
            Err(FileOpError::NotFound { .. })
        ));
        rm(&root, "/real", true).unwrap();
        assert!(matches!(
            rm(&root, "/", true),
            Err(FileOpError::InvalidPath { .. })
        ));
    }
}
