//! Atomic destinations: everything is written beside its destination under a temporary
//! name and renamed into place, so a reader never sees half a file or half a directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

use crate::error::{IoContext, Result};

const TEMP_PREFIX: &str = ".kiln-tmp-";

fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename durable: the directory entry itself must reach the disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("sync directory", dir)
}

/// A file being written beside its destination; nothing appears at the destination until
/// [`AtomicFile::commit`], and the temporary file is removed if it is dropped uncommitted.
pub(crate) struct AtomicFile {
    temp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub(crate) fn new(dest: &Path) -> Result<Self> {
        let parent = parent_of(dest);
        fs::create_dir_all(&parent).ctx("create directory", &parent)?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&parent)
            .ctx("create temporary file in", &parent)?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_path_buf(),
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Renames the file into place under a new name chosen after writing (content addressing).
    pub(crate) fn commit_as(mut self, dest: &Path) -> Result<()> {
        self.dest = dest.to_path_buf();
        self.commit()
    }

    pub(crate) fn commit(self) -> Result<()> {
        let AtomicFile { temp, dest } = self;
        temp.as_file().sync_all().ctx("sync", temp.path())?;
        // Blobs and archives are read-only data; 0644 rather than the 0600 of a temp file.
        set_mode(temp.path(), 0o644)?;
        temp.persist(&dest)
            .map_err(|e| e.error)
            .ctx("rename into place", &dest)?;
        sync_dir(&parent_of(&dest))
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx("chmod", path)
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::new(dest)?;
    file.file().write_all(bytes).ctx("write", dest)?;
    file.commit()
}

/// A directory being filled beside its destination; removed if dropped uncommitted.
pub(crate) struct AtomicDir {
    temp: TempDir,
    dest: PathBuf,
}

impl AtomicDir {
    pub(crate) fn new(dest: &Path) -> Result<Self> {
        let parent = parent_of(dest);
        fs::create_dir_all(&parent).ctx("create directory", &parent)?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(&parent)
            .ctx("create temporary directory in", &parent)?;
        Ok(AtomicDir {
            temp,
            dest: dest.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Moves the finished directory to its destination, replacing whatever was there.
    pub(crate) fn commit(self, mode: u32) -> Result<()> {
        let AtomicDir { temp, dest } = self;
        set_mode(temp.path(), mode)?;
        let parent = parent_of(&dest);
        let filled = temp.keep();
        let old = match fs::symlink_metadata(&dest) {
            Ok(_) => {
                let aside = tempfile::Builder::new()
                    .prefix(TEMP_PREFIX)
                    .tempdir_in(&parent)
                    .ctx("create temporary directory in", &parent)?
                    .keep();
                // rename(2) replaces an empty directory, so the old tree moves into place
                // of a fresh empty one and is deleted once the new tree is in.
                fs::rename(&dest, &aside).ctx("move aside", &dest)?;
                Some(aside)
            }
            Err(_) => None,
        };
        if let Err(e) = fs::rename(&filled, &dest) {
            if let Some(aside) = &old {
                let _ = fs::rename(aside, &dest);
            }
            let _ = fs::remove_dir_all(&filled);
            return Err(e).ctx("rename into place", &dest);
        }
        if let Some(aside) = old {
            if aside.is_dir() && !aside.is_symlink() {
                fs::remove_dir_all(&aside).ctx("remove old", &aside)?;
            } else {
                fs::remove_file(&aside).ctx("remove old", &aside)?;
            }
        }
        sync_dir(&parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_leaves_nothing_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        {
            let mut f = AtomicFile::new(&dest).unwrap();
            f.file().write_all(b"partial").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn atomic_dir_replaces_existing_tree() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("tree");
        fs::create_dir_all(dest.join("old")).unwrap();
        let d = AtomicDir::new(&dest).unwrap();
        fs::write(d.path().join("new"), b"x").unwrap();
        d.commit(0o755).unwrap();
        assert!(dest.join("new").exists());
        assert!(!dest.join("old").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
