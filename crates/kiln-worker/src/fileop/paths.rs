//! Paths inside the destination root: lexical cleaning, in-root resolution and creating
//! missing directories along the way.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::{FileOpError, io_err};

/// Cleans a slash-separated path lexically (Go's `path.Clean` on `"/" + p`): the result
/// is absolute, has no `.`, `..` or empty components, and `..` stops at the root.
pub(super) fn clean_absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Resolves an image path inside `root`; see [`crate::resolve_in_root`].
pub(super) fn resolve(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, FileOpError> {
    crate::resolve_in_root(root, Path::new(path), follow_last).map_err(|source| {
        FileOpError::Resolve {
            path: path.to_string(),
            source,
        }
    })
}

/// How `real` (a path under `root`) reads from inside the root, for messages.
pub(super) fn shown(root: &Path, real: &Path) -> String {
    match real.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => real.display().to_string(),
    }
}

/// Whether `path` exists without following a final symlink.
pub(super) fn lstat(path: &Path) -> Result<Option<std::fs::Metadata>, FileOpError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

/// Creates the image directory `path` and its missing parents inside `root`, each with
/// `mode` and, when given, `owner`; existing directories are left alone. Returns the
/// resolved host path of `path`.
pub(super) fn mkdir_all(
    root: &Path,
    path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, FileOpError> {
    let mut prefix = String::new();
    let mut current = root.to_path_buf();
    for part in clean_absolute(path).split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        // Re-resolving every prefix keeps symlinks met on the way inside the root.
        current = resolve(root, &prefix, true)?;
        match lstat(&current)? {
            Some(meta) if meta.is_dir() => {}
            Some(_) => {
                return Err(FileOpError::NotADirectory {
                    path: prefix.clone(),
                });
            }
            None => create_dir(&current, mode, owner)?,
        }
    }
    Ok(current)
}

/// Creates one directory with exactly `mode` (no umask) and `owner`.
pub(super) fn create_dir(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), FileOpError> {
    std::fs::create_dir(path).map_err(io_err("mkdir", path))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err("chown", path))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(io_err("chmod", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_is_rooted_and_clamped() {
        for (input, expected) in [
            ("", "/"),
            ("/", "/"),
            ("a/b/", "/a/b"),
            ("/a/./b//c", "/a/b/c"),
            ("../../x", "/x"),
            ("/a/../../b", "/b"),
        ] {
            assert_eq!(clean_absolute(input), expected, "{input:?}");
        }
    }

    #[test]
    fn mkdir_all_follows_links_inside_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("evil")).unwrap();
        let made = mkdir_all(&root, "/link/a/b", 0o750, None).unwrap();
        assert_eq!(made, root.join("real/a/b"));
        let meta = std::fs::metadata(root.join("real/a")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o750);
        let made = mkdir_all(&root, "/evil/x", 0o755, None).unwrap();
        assert_eq!(made, root.join("outside/x"));
        assert!(!dir.path().join("outside").exists());
        std::fs::write(root.join("file"), "").unwrap();
        assert!(matches!(
            mkdir_all(&root, "/file/x", 0o755, None),
            Err(FileOpError::NotADirectory { .. })
        ));
    }
}
