//! Resolving paths inside a root directory (a layer being unpacked, a container rootfs)
//! the way they would resolve if that directory were `/`: symlinks, absolute or relative,
//! and `..` can never lead outside it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result, io_err};

/// Symlinks followed in one resolution before giving up, as the kernel does.
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` (absolute or relative, both taken from the root) inside `root`.
/// Symlinks in the middle are followed, clamped to `root`; the last component is followed
/// only if `follow_last`. Missing components are fine: the result is where they would be.
pub fn resolve_in_root(root: &Path, path: &Path, follow_last: bool) -> Result<PathBuf> {
    let mut todo: VecDeque<OsString> = components(path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(comp) = todo.pop_front() {
        if comp == ".." {
            done.pop();
            continue;
        }
        let candidate = join(root, &done).join(&comp);
        let is_last = todo.is_empty();
        let meta = match std::fs::symlink_metadata(&candidate) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("stat", &candidate)(e)),
        };
        if let Some(m) = meta
            && m.file_type().is_symlink()
            && (!is_last || follow_last)
        {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Error::SymlinkLoop(path.to_path_buf()));
            }
            let target = std::fs::read_link(&candidate).map_err(io_err("readlink", &candidate))?;
            if target.is_absolute() {
                done.clear();
            }
            for c in components(&target).into_iter().rev() {
                todo.push_front(c);
            }
            continue;
        }
        done.push(comp);
    }
    Ok(join(root, &done))
}

/// Normal components of `path`, with `.` dropped and `..` kept for the resolver to clamp.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Turns an archive member name into a clean relative path, refusing `..` anywhere.
pub fn clean_relative(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::PathEscapes(name.to_path_buf()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("usr/up")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("abs/passwd"), true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/usr/up/etc"), true).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("lib/x.so"), true).unwrap(),
            root.join("usr/lib/x.so")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("../../x"), true).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("lib"), false).unwrap(),
            root.join("lib")
        );
        assert!(matches!(
            resolve_in_root(root, Path::new("loop/x"), true),
            Err(Error::SymlinkLoop(_))
        ));
    }

    #[test]
    fn archive_names_with_dotdot_are_refused() {
        assert_eq!(
            clean_relative(Path::new("./a/b")).unwrap(),
            PathBuf::from("a/b")
        );
        assert_eq!(clean_relative(Path::new("/a")).unwrap(), PathBuf::from("a"));
        assert!(clean_relative(Path::new("a/../../b")).is_err());
    }
}
