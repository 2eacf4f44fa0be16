//! Directories an upper dir holds only because something was created and removed again
//! inside them (runc's mount-point stubs for /etc/hosts, /etc/resolv.conf, /proc...).
//! Overlayfs copies such a parent up; left there it would make every RUN layer carry an
//! unchanged `etc/`. A directory is dropped when it ended up empty, is not opaque, and
//! the layer below has the same directory with the same mode and owner.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};
use crate::sys;

/// Removes untouched directories from `upper`; `lowers` is the chain below, top first.
pub fn drop_untouched_dirs(upper: &Path, lowers: &[PathBuf]) -> Result<usize> {
    Ok(drop_below(upper, Path::new(""), lowers)?.0)
}

/// Handles the directories in `dir` (at `rel` inside the layer); counts what went and
/// says whether `dir` is left empty.
fn drop_below(dir: &Path, rel: &Path, lowers: &[PathBuf]) -> Result<(usize, bool)> {
    let mut removed = 0;
    let mut empty = true;
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err("stat", &path))?;
        if kind.is_dir() {
            let (below, gone) = drop_in(&path, &rel.join(entry.file_name()), lowers)?;
            removed += below;
            empty &= gone;
        } else {
            empty = false;
        }
    }
    Ok((removed, empty))
}

/// Handles `dir` (at `rel` inside the layer) after its children; counts what went and
/// says whether `dir` itself went.
fn drop_in(dir: &Path, rel: &Path, lowers: &[PathBuf]) -> Result<(usize, bool)> {
    let (mut removed, empty) = drop_below(dir, rel, lowers)?;
    if !empty || is_opaque(dir)? {
        return Ok((removed, false));
    }
    let Some(theirs) = lowers
        .iter()
        .find_map(|l| l.join(rel).symlink_metadata().ok())
    else {
        return Ok((removed, false));
    };
    let Ok(mine) = dir.symlink_metadata() else {
        return Ok((removed, false));
    };
    let same = theirs.is_dir()
        && mine.mode() == theirs.mode()
        && mine.uid() == theirs.uid()
        && mine.gid() == theirs.gid();
    if same {
        fs::remove_dir(dir).map_err(io_err("remove", dir))?;
        removed += 1;
    }
    Ok((removed, same))
}

fn is_opaque(dir: &Path) -> Result<bool> {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if sys::lgetxattr(dir, OsStr::new(name))
            .map_err(io_err("getxattr", dir))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_unchanged_dirs_go() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        for d in ["etc", "var/log", "opt"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        // etc: copied up, stub removed → unchanged and empty.
        fs::create_dir_all(upper.join("etc")).unwrap();
        // var/log: empty but var has a real change beside it.
        fs::create_dir_all(upper.join("var/log")).unwrap();
        fs::write(upper.join("var/new"), b"x").unwrap();
        // new: created by the step, not below.
        fs::create_dir_all(upper.join("new")).unwrap();
        // opt: mode changed by the step.
        fs::create_dir_all(upper.join("opt")).unwrap();
        fs::set_permissions(
            upper.join("opt"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let removed = drop_untouched_dirs(&upper, std::slice::from_ref(&lower)).unwrap();
        assert_eq!(removed, 2, "etc and var/log");
        assert!(!upper.join("etc").exists());
        assert!(!upper.join("var/log").exists());
        assert!(upper.join("var/new").exists());
        assert!(upper.join("new").is_dir());
        assert!(upper.join("opt").is_dir());
    }
}
