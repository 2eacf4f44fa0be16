//! Advisory whole-file locks (flock) that serialize work across kiln processes.
//!
//! flock locks belong to the open file description, so they are released when the holder
//! dies, however it dies: a crashed kiln never leaves a lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};

/// A lock held until dropped (exclusive, unless taken with [`ProcessLock::acquire_shared`]).
#[derive(Debug)]
pub struct ProcessLock {
    file: File,
    path: PathBuf,
}

impl ProcessLock {
    /// Blocks until the exclusive lock on `path` (created if missing) is ours.
    pub fn acquire(path: impl AsRef<Path>) -> Result<Self> {
        Self::acquire_with(path.as_ref(), File::lock)
    }

    /// Blocks until a shared hold on `path` is ours: any number of shared holders at
    /// once, none while someone holds it exclusively.
    pub fn acquire_shared(path: impl AsRef<Path>) -> Result<Self> {
        Self::acquire_with(path.as_ref(), File::lock_shared)
    }

    /// Blocks in `lock` until the file at `path` is locked, starting over when the file
    /// was replaced meanwhile.
    fn acquire_with(path: &Path, lock: fn(&File) -> std::io::Result<()>) -> Result<Self> {
        let path = path.to_path_buf();
        loop {
            let file = open_lock_file(&path)?;
            lock(&file).map_err(io_err("lock", &path))?;
            if still_at_path(&file, &path) {
                return Ok(Self { file, path });
            }
        }
    }

    /// Takes the lock if nobody holds it; `Ok(None)` when another holder has it.
    pub fn try_acquire(path: impl AsRef<Path>) -> Result<Option<Self>> {
        let path = path.as_ref().to_path_buf();
        loop {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) if still_at_path(&file, &path) => return Ok(Some(Self { file, path })),
                Ok(()) => continue,
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
            }
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

/// Whether the locked file is still the one at `path`. Holders may delete their lock file
/// when done; whoever opened it just before the delete now holds a lock on a nameless file
/// that no one else will ever contend for, and must start over.
fn still_at_path(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
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
    fn lock_on_a_deleted_file_is_not_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let first = ProcessLock::acquire(&p).unwrap();
        let waiter = {
            let p = p.clone();
            std::thread::spawn(move || ProcessLock::acquire(&p).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        // The holder deletes its lock file and releases; the waiter must end up holding
        // the lock of a file that exists at the path.
        std::fs::remove_file(&p).unwrap();
        drop(first);
        let second = waiter.join().unwrap();
        assert!(p.exists());
        assert!(ProcessLock::try_acquire(&p).unwrap().is_none());
        drop(second);
    }

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
