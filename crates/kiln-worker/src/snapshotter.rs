//! Snapshots on overlayfs.
//!
//! A snapshot is `snapshots/<id>/fs`, the files one layer changed, plus its parent in the
//! store's snapshots table. Preparing on a parent mounts overlay with the parent chain as
//! lowerdirs and a fresh upper dir; committing unmounts and moves that upper dir into place
//! as the new snapshot. Upper dirs are what the exporter turns into layers: deleted files
//! are character devices 0/0 and replaced directories carry `trusted.overlay.opaque=y`.
//!
//! Work in progress lives in `tmp/active-<id>/` (`fs` upper, `work`, `mnt`), locked by its
//! owner; only finished snapshots are renamed under `snapshots/`.

use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kiln_store::{SnapshotRecord, Store};

use crate::error::{Error, Result, io_err};
use crate::materialize::materialize;
use crate::mountinfo::mounts_under;
use crate::scratch::Scratch;
use crate::sys;
use crate::unpack::{UnpackStats, unpack_layer_auto};

/// mount(2) copies at most one page of options; stay a little below it.
const MAX_MOUNT_OPTIONS: usize = 4000;

/// Options every overlay mount gets. Renaming a lower directory or copying up metadata only
/// would record `trusted.overlay.redirect`/`metacopy` attributes that a layer exporter
/// cannot express; with these off the kernel copies instead, and the upper dir stays a
/// plain diff.
const FIXED_OPTIONS: &str = "redirect_dir=off,index=off,metacopy=off";

pub const ACTIVE_PREFIX: &str = "active-";

/// Creates, mounts and commits snapshots in one store.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    store: Arc<Store>,
}

/// A mounted, writable snapshot in progress. Commit or abort it; dropping it aborts
/// (best effort).
#[derive(Debug)]
pub struct ActiveMount {
    id: String,
    parent: Option<String>,
    scratch: Option<Scratch>,
    mountpoint: PathBuf,
    mounted: bool,
    /// How the lower layers were given to overlay (for reports and tests).
    pub lower_mode: LowerMode,
}

/// How the parent chain reached the overlay mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowerMode {
    /// Absolute paths fit in the mount options.
    Absolute,
    /// Paths relative to the store root, mounted from a child that changed directory.
    Relative,
    /// Too many layers even for that: the chain was flattened into one directory.
    Flattened,
}

impl ActiveMount {
    /// The id the snapshot will have once committed.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// Where the merged filesystem is mounted: the container's rootfs.
    pub fn rootfs(&self) -> &Path {
        &self.mountpoint
    }

    /// The overlay upper dir (this step's changes).
    pub fn upper_dir(&self) -> PathBuf {
        self.dir().join("fs")
    }

    fn dir(&self) -> &Path {
        // Only None after commit/abort consumed self, so never observed.
        self.scratch
            .as_ref()
            .map_or(Path::new("/nonexistent"), |s| s.dir.as_path())
    }

    fn unmount(&mut self) -> Result<()> {
        if !self.mounted {
            return Ok(());
        }
        unmount_patiently(&self.mountpoint)?;
        self.mounted = false;
        Ok(())
    }

    fn teardown(&mut self) -> Result<()> {
        self.unmount()?;
        if let Some(scratch) = self.scratch.take() {
            remove_scratch_dir(&scratch.dir)?;
            scratch.release();
        }
        Ok(())
    }
}

impl Drop for ActiveMount {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

impl Snapshotter {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// `snapshots/<id>/fs` of a committed snapshot.
    pub fn fs_dir(&self, id: &str) -> Result<PathBuf> {
        Ok(self.store.snapshot_dir(id)?.join("fs"))
    }

    /// The `fs` dirs of `id` and its ancestors, top layer first (overlay's lowerdir order).
    pub fn chain_dirs(&self, id: &str) -> Result<Vec<PathBuf>> {
        self.store
            .snapshot_chain(id)?
            .iter()
            .map(|s| self.fs_dir(&s.id))
            .collect()
    }

    /// Mounts a writable overlay on `parent` (or on nothing) under a fresh mountpoint.
    pub fn prepare(&self, parent: Option<&str>) -> Result<ActiveMount> {
        let id = self.store.new_snapshot_id();
        let scratch = Scratch::create(&self.store.tmp_dir(), ACTIVE_PREFIX, &id)?;
        let dir = scratch.dir.clone();
        let mut active = ActiveMount {
            id,
            parent: parent.map(str::to_owned),
            scratch: Some(scratch),
            mountpoint: dir.join("mnt"),
            mounted: false,
            lower_mode: LowerMode::Absolute,
        };
        for sub in ["fs", "work", "mnt"] {
            let p = dir.join(sub);
            fs::create_dir(&p).map_err(io_err("create", &p))?;
        }
        let lowers = match parent {
            Some(p) => {
                let chain = self.chain_dirs(p)?;
                self.store.touch_snapshots(&[p])?;
                chain
            }
            None => {
                let empty = dir.join("empty");
                fs::create_dir(&empty).map_err(io_err("create", &empty))?;
                vec![empty]
            }
        };
        active.lower_mode = self.mount_overlay(&dir, &lowers)?;
        active.mounted = true;
        Ok(active)
    }

    fn mount_overlay(&self, dir: &Path, lowers: &[PathBuf]) -> Result<LowerMode> {
        let target = dir.join("mnt");
        let (upper, work) = (dir.join("fs"), dir.join("work"));
        let absolute = overlay_options(lowers, &upper, &work);
        if absolute.len() + VOLATILE.len() <= MAX_MOUNT_OPTIONS
            && paths_are_option_safe(lowers, dir)
        {
            mount_maybe_volatile(&target, &absolute, None)?;
            return Ok(LowerMode::Absolute);
        }
        let root = self.store.root();
        let rel = |p: &Path| {
            p.strip_prefix(root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let rel_lowers: Vec<PathBuf> = lowers.iter().map(|p| rel(p)).collect();
        let relative = overlay_options(&rel_lowers, &rel(&upper), &rel(&work));
        if relative.len() + VOLATILE.len() <= MAX_MOUNT_OPTIONS
            && paths_are_option_safe(&rel_lowers, Path::new("tmp"))
        {
            mount_maybe_volatile(&target, &relative, Some(root))?;
            return Ok(LowerMode::Relative);
        }
        let flat = dir.join("flat");
        fs::create_dir(&flat).map_err(io_err("create", &flat))?;
        let bottom_first: Vec<&Path> = lowers.iter().rev().map(PathBuf::as_path).collect();
        materialize(&bottom_first, &flat)?;
        let options = overlay_options(&[rel(&flat)], &rel(&upper), &rel(&work));
        mount_maybe_volatile(&target, &options, Some(root))?;
        Ok(LowerMode::Flattened)
    }

    /// Unmounts and records the upper dir as a new snapshot whose parent is the one it was
    /// prepared on.
    pub fn commit(&self, mut active: ActiveMount, label: &str) -> Result<SnapshotRecord> {
        active.unmount()?;
        // Unmounted first: overlayfs forbids changing an upper dir under a live mount.
        let lowers = match active.parent.as_deref() {
            Some(parent) => self.chain_dirs(parent)?,
            None => Vec::new(),
        };
        crate::untouched::drop_untouched_dirs(&active.upper_dir(), &lowers)?;
        let scratch = active
            .scratch
            .take()
            .ok_or_else(|| Error::InvalidProcess("snapshot already finished".into()))?;
        for sub in ["work", "mnt", "empty", "flat"] {
            let p = scratch.dir.join(sub);
            if p.exists() {
                fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
            }
        }
        let id = active.id.clone();
        let parent = active.parent.clone();
        self.finish(scratch, &id, parent.as_deref(), label)
    }

    /// Unmounts and throws the work away.
    pub fn abort(&self, mut active: ActiveMount) -> Result<()> {
        active.teardown()
    }

    /// Unpacks an image layer (tar or tar+gzip) as a new snapshot on `parent`.
    pub fn apply_layer(
        &self,
        parent: Option<&str>,
        layer: impl Read,
        label: &str,
    ) -> Result<(SnapshotRecord, UnpackStats)> {
        self.new_snapshot(parent, label, |fs_dir| unpack_layer_auto(layer, fs_dir))
    }

    /// Copies a plain directory tree (owners, modes, xattrs, times kept) as a new snapshot
    /// on `parent`; e.g. a rootfs assembled on disk.
    pub fn import_dir(
        &self,
        parent: Option<&str>,
        src: &Path,
        label: &str,
    ) -> Result<SnapshotRecord> {
        self.new_snapshot(parent, label, |fs_dir| materialize(&[src], fs_dir))
            .map(|(record, ())| record)
    }

    /// Makes a snapshot on `parent` from what `fill` writes into an empty directory,
    /// without mounting; nothing is left behind if `fill` fails.
    fn new_snapshot<T>(
        &self,
        parent: Option<&str>,
        label: &str,
        fill: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<(SnapshotRecord, T)> {
        if let Some(p) = parent
            && self.store.snapshot(p)?.is_none()
        {
            return Err(kiln_store::Error::SnapshotNotFound(p.to_owned()).into());
        }
        let id = self.store.new_snapshot_id();
        let scratch = Scratch::create(&self.store.tmp_dir(), ACTIVE_PREFIX, &id)?;
        let fs_dir = scratch.dir.join("fs");
        let result = fs::create_dir(&fs_dir)
            .map_err(io_err("create", &fs_dir))
            .and_then(|()| fill(&fs_dir));
        match result {
            Ok(filled) => Ok((self.finish(scratch, &id, parent, label)?, filled)),
            Err(e) => {
                let _ = remove_scratch_dir(&scratch.dir);
                scratch.release();
                Err(e)
            }
        }
    }

    /// Moves a finished scratch dir (holding only `fs`) under `snapshots/` and records it.
    fn finish(
        &self,
        scratch: Scratch,
        id: &str,
        parent: Option<&str>,
        label: &str,
    ) -> Result<SnapshotRecord> {
        let result = (|| {
            let fs_dir = scratch.dir.join("fs");
            let size = dir_size(&fs_dir)?;
            // The row says the snapshot is complete, so its files must be on disk first.
            sys::syncfs(&fs_dir).map_err(io_err("syncfs", &fs_dir))?;
            let final_dir = self.store.snapshot_dir(id)?;
            let _guard = self.store.lock("snapshots")?;
            fs::rename(&scratch.dir, &final_dir).map_err(io_err("rename", &final_dir))?;
            kiln_store::fsutil::fsync_dir(&self.store.snapshots_dir())?;
            match self.store.add_snapshot(id, parent, size, label) {
                Ok(rec) => Ok(rec),
                Err(e) => {
                    let _ = fs::remove_dir_all(&final_dir);
                    Err(e.into())
                }
            }
        })();
        if result.is_err() {
            let _ = remove_scratch_dir(&scratch.dir);
        }
        scratch.release();
        result
    }

    /// Deletes a snapshot nothing builds on: the row first, so no one starts using it, then
    /// the directory.
    pub fn remove(&self, id: &str) -> Result<bool> {
        let dir = self.store.snapshot_dir(id)?;
        let _guard = self.store.lock("snapshots")?;
        let existed = self.store.remove_snapshot(id)?;
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        }
        Ok(existed)
    }

    /// Writes the merged contents of snapshot `id` and its ancestors into `dest` (created
    /// if missing), without whiteouts.
    pub fn materialize_chain(&self, id: &str, dest: &Path) -> Result<()> {
        let dirs = self.chain_dirs(id)?;
        fs::create_dir_all(dest).map_err(io_err("create", dest))?;
        let bottom_first: Vec<&Path> = dirs.iter().rev().map(PathBuf::as_path).collect();
        materialize(&bottom_first, dest)
    }
}

/// Overlay syncs the whole upper filesystem when unmounted unless mounted `volatile`
/// (Linux 5.10+). Aborted steps need no sync at all and commit syncs once itself, so
/// volatile is used where the kernel has it.
const VOLATILE: &str = ",volatile";

fn mount_maybe_volatile(target: &Path, options: &str, cwd: Option<&Path>) -> Result<()> {
    let mount_err = |source| Error::Mount {
        target: target.to_path_buf(),
        source,
    };
    match sys::mount_overlay(target, &format!("{options}{VOLATILE}"), cwd) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            sys::mount_overlay(target, options, cwd).map_err(mount_err)
        }
        Err(e) => Err(mount_err(e)),
    }
}

fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let mut s = String::from("lowerdir=");
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&l.to_string_lossy());
    }
    s.push_str(",upperdir=");
    s.push_str(&upper.to_string_lossy());
    s.push_str(",workdir=");
    s.push_str(&work.to_string_lossy());
    s.push(',');
    s.push_str(FIXED_OPTIONS);
    s
}

/// Overlay splits options on `,` and lowerdirs on `:`; paths holding those (or non-UTF-8
/// bytes, which would be mangled) must go the relative way.
fn paths_are_option_safe(lowers: &[PathBuf], dir: &Path) -> bool {
    lowers.iter().map(PathBuf::as_path).chain([dir]).all(|p| {
        let b = p.as_os_str().as_bytes();
        std::str::from_utf8(b).is_ok() && !b.iter().any(|c| matches!(c, b',' | b':' | b'\\'))
    })
}

/// Unmounts, waiting briefly if the mount is still busy (a just-exited container's last
/// references going away), and detaching as a last resort.
pub(crate) fn unmount_patiently(target: &Path) -> Result<()> {
    for _ in 0..20 {
        match sys::unmount(target, false) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(()), // not mounted
            Err(e) => {
                return Err(Error::Unmount {
                    target: target.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    sys::unmount(target, true).map_err(|e| Error::Unmount {
        target: target.to_path_buf(),
        source: e,
    })
}

/// Deletes a scratch dir after making sure nothing is mounted inside it (deleting through a
/// live mount would reach into other data).
pub(crate) fn remove_scratch_dir(dir: &Path) -> Result<()> {
    for m in mounts_under(dir)? {
        unmount_patiently(&m)?;
    }
    if !mounts_under(dir)?.is_empty() {
        return Err(Error::StillMounted(dir.to_path_buf()));
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", dir)(e)),
    }
}

/// Bytes used by regular files under `dir` (hard links counted once per name).
fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io_err("read dir", dir))? {
        let entry = entry.map_err(io_err("read dir", dir))?;
        let meta = entry.metadata().map_err(io_err("stat", entry.path()))?;
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
