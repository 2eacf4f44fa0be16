//! Advisory whole-file locks (flock) that serialize work across kiln processes.
//!
//! flock locks belong to the open file description, so they are released when the holder
//! dies, however it dies: a crashed kiln never leaves a lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct ProcessLock {
    file: File,
    path: PathBuf,
}

impl ProcessLock {
    /// Blocks until the exclusive lock on `path` (created if missing) is ours.
    pub fn acquire(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = open_lock_file(&path)?;
        file.lock().map_err(io_err("lock", &path))?;
        Ok(Self { file, path })
    }

    /// Takes the lock if nobody holds it; `Ok(None)` when another holder has it.
    pub fn try_acquire(path: impl AsRef<Path>) -> Result<Option<Self>> {
        let path = path.as_ref().to_path_buf();
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { file, path })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        // Closing the file would release it too; unlocking first keeps the intent explicit
        // and releases even if someone cloned the descriptor.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open lock file", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let first = ProcessLock::acquire(&p).unwrap();
        assert!(ProcessLock::try_acquire(&p).unwrap().is_none());
        drop(first);
        assert!(ProcessLock::try_acquire(&p).unwrap().is_some());
    }
}
