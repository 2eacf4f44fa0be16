//! Scratch directories under the store's `tmp/`, each guarded by a flock held for as long
//! as its owner works in it. A directory whose lock nobody holds belongs to a kiln process
//! that died, and the stale-cleanup may take it apart.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_store::ProcessLock;

use crate::error::{Result, io_err};

#[derive(Debug)]
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
    lock: Option<ProcessLock>,
}

fn lock_path_for(dir: &Path) -> PathBuf {
    let mut p = dir.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl Scratch {
    /// Creates `tmp/<prefix><id>` (which must not exist) and takes its lock first, so the
    /// cleaner never sees the directory unlocked.
    pub(crate) fn create(tmp: &Path, prefix: &str, id: &str) -> Result<Scratch> {
        let dir = tmp.join(format!("{prefix}{id}"));
        let lock = ProcessLock::acquire(lock_path_for(&dir))?;
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        Ok(Scratch {
            dir,
            lock: Some(lock),
        })
    }

    /// Drops the lock and its file; call once the directory is gone or renamed away.
    pub(crate) fn release(mut self) {
        self.release_lock();
    }

    fn release_lock(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = fs::remove_file(lock.path());
            drop(lock);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.release_lock();
    }
}

/// Scratch directories named `<prefix>*` whose owner is gone, each with its lock now held
/// by the caller. Remove the lock file with [`forget_lock`] after cleaning the directory.
pub(crate) fn stale(tmp: &Path, prefix: &str) -> Result<Vec<(PathBuf, ProcessLock)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err("read dir", tmp)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("read dir", tmp))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) || name.ends_with(".lock") {
            continue;
        }
        let dir = entry.path();
        if let Some(lock) = ProcessLock::try_acquire(lock_path_for(&dir))? {
            out.push((dir, lock));
        }
    }
    // Lock files whose directory is gone (owner died between rename and unlock).
    for entry in fs::read_dir(tmp)
        .map_err(io_err("read dir", tmp))?
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".lock")
            && stem.starts_with(prefix)
            && !tmp.join(stem).exists()
            && let Some(lock) = ProcessLock::try_acquire(entry.path())?
        {
            forget_lock(lock);
        }
    }
    Ok(out)
}

pub(crate) fn forget_lock(lock: ProcessLock) {
    let _ = fs::remove_file(lock.path());
}
