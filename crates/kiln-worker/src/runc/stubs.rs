//! runc creates missing mount points (`/proc`, `/etc/resolv.conf`, a bind target) in the
//! rootfs, which is the overlay being committed. Empty stubs it made must not end up in
//! the layer, so they are noted before the run and removed after it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::rootpath::resolve_in_root;
use crate::runc::ProcessSpec;
use crate::runc::spec::STANDARD_MOUNT_POINTS;
use crate::sys;

pub(crate) struct Stubs {
    /// For each mount point: the first path component that did not exist before the run,
    /// with its parent's (atime, mtime) then.
    missing: Vec<(PathBuf, Option<Times>)>,
}

type Times = ((i64, i64), (i64, i64));

impl Stubs {
    pub(crate) fn record(rootfs: &Path, process: &ProcessSpec) -> Result<Stubs> {
        let dests = STANDARD_MOUNT_POINTS
            .iter()
            .map(Path::new)
            .chain(process.mounts.iter().map(|m| m.destination()));
        let mut missing = Vec::new();
        for dest in dests {
            let mut prefix = PathBuf::new();
            for comp in dest.components() {
                let std::path::Component::Normal(c) = comp else {
                    continue;
                };
                prefix.push(c);
                let resolved = resolve_in_root(rootfs, &prefix, false)?;
                if fs::symlink_metadata(&resolved).is_err() {
                    let times = resolved
                        .parent()
                        .and_then(|p| fs::symlink_metadata(p).ok())
                        .map(|m| ((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec())));
                    missing.push((resolved, times));
                    break;
                }
            }
        }
        missing.sort();
        missing.dedup();
        Ok(Stubs { missing })
    }

    /// Removes what runc left at the noted paths if it is still an empty file or a tree of
    /// empty directories (anything with content was made by the step itself and stays),
    /// and puts the parent's times back so the layer does not record a change there.
    pub(crate) fn remove_created(self) -> Result<()> {
        for (p, times) in self.missing {
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            let removed = if meta.is_file() && meta.len() == 0 {
                fs::remove_file(&p).is_ok()
            } else {
                meta.is_dir() && remove_empty_tree(&p)
            };
            if removed && let (Some(parent), Some((atime, mtime))) = (p.parent(), times) {
                let _ = sys::set_times_nofollow(parent, atime, mtime);
            }
        }
        Ok(())
    }
}

/// Removes `dir` if it holds only empty directories and empty files; returns whether it did.
fn remove_empty_tree(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut all_gone = true;
    for e in entries.flatten() {
        let p = e.path();
        let gone = match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => remove_empty_tree(&p),
            Ok(m) if m.is_file() && m.len() == 0 => fs::remove_file(&p).is_ok(),
            _ => false,
        };
        all_gone &= gone;
    }
    all_gone && fs::remove_dir(dir).is_ok()
}
