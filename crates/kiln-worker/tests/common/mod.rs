//! Shared fixtures: a busybox rootfs, a store, and the root/runc check.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use kiln_store::Store;
use kiln_worker::{CancelToken, ProcessSpec, RunResult, RuncExecutor, Snapshotter, Stream};

pub const BUSYBOX: &str = "/bin/busybox";
pub const RUNC: &str = "/usr/sbin/runc";

/// True when running as root (device nodes, trusted.* attributes, chown); otherwise
/// prints why the test is skipped.
pub fn is_root(test: &str) -> bool {
    if kiln_worker::have_root() {
        return true;
    }
    eprintln!(
        "skipping {test}: needs root for whiteout device nodes, trusted.overlay xattrs and chown"
    );
    false
}

/// True when containers can run here; otherwise prints why the test is skipped.
pub fn can_run_containers(test: &str) -> bool {
    if !kiln_worker::have_root() {
        eprintln!("skipping {test}: needs root for overlay mounts and runc");
        return false;
    }
    for bin in [BUSYBOX, RUNC] {
        if !Path::new(bin).exists() {
            eprintln!("skipping {test}: {bin} not installed");
            return false;
        }
    }
    true
}

/// Writes a minimal busybox rootfs: every applet as a symlink in /bin, users root, app
/// (1000, in group wheel) and nobody. No /proc, /dev or /sys, on purpose: runc must not
/// leave its mount-point stubs in committed layers.
pub fn busybox_rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("root")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub snapshotter: Snapshotter,
    pub executor: RuncExecutor,
    pub base: String,
}

/// A fresh store holding the busybox rootfs as base snapshot.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
    let snapshotter = Snapshotter::new(Arc::clone(&store));
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let base = snapshotter
        .import_dir(None, &rootfs, "busybox base")
        .unwrap()
        .id;
    let executor = RuncExecutor::new(&store).with_runc_binary(RUNC);
    Fixture {
        _dir: dir,
        store,
        snapshotter,
        executor,
        base,
    }
}

impl Fixture {
    /// Runs `sh -c script` on a fresh overlay over `parent`; returns the result, all output
    /// lines and the active mount (not yet committed).
    pub fn run_sh(
        &self,
        parent: &str,
        script: &str,
        tweak: impl FnOnce(&mut ProcessSpec),
    ) -> (RunResult, Vec<(Stream, String)>, kiln_worker::ActiveMount) {
        let active = self.snapshotter.prepare(Some(parent)).unwrap();
        let mut spec = ProcessSpec::new(["/bin/sh", "-c", script]);
        tweak(&mut spec);
        let mut lines = Vec::new();
        let result = self
            .executor
            .run(active.rootfs(), &spec, &CancelToken::new(), &mut |s, l| {
                lines.push((s, l.to_owned()))
            })
            .unwrap();
        (result, lines, active)
    }

    pub fn stdout(lines: &[(Stream, String)]) -> Vec<String> {
        lines
            .iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn runc_containers(&self) -> String {
        let out = Command::new(RUNC)
            .arg("--root")
            .arg(self.executor.state_root())
            .args(["list", "-q"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn mounts_in_store(&self) -> Vec<PathBuf> {
        kiln_worker::mounts_under(self.store.root()).unwrap()
    }

    pub fn tmp_entries(&self) -> Vec<String> {
        fs::read_dir(self.store.tmp_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}
