//! Fixtures shared by the integration tests: a busybox base layer and an overlay-style diff.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_exporter::testutil::{BASE_EPOCH, busybox_config, busybox_rootfs};
use kiln_exporter::{
    BuiltImage, ImageOptions, LayerDescriptor, LayerOptions, LayerSource, Timestamp, build_image,
    write_layer,
};

pub const EPOCH: i64 = BASE_EPOCH;
pub const LONG_DIR: &str = "data/a-directory-name-that-is-rather-long-0123456789/another-fairly-long-directory-name-abcdefghij";
pub const XATTR: &str = "user.kiln.test";

pub fn long_file() -> String {
    format!("{LONG_DIR}/file-with-a-long-name.txt")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Skips (returns true) unless root and the tools and busybox are here.
pub fn skip_unless(tools: &[&str]) -> bool {
    if !kiln_exporter::testutil::busybox_available() {
        eprintln!("SKIP: /bin/busybox missing");
        return true;
    }
    if !is_root() {
        eprintln!("SKIP: needs root (mknod of whiteout devices)");
        return true;
    }
    for t in tools {
        if !have(t) {
            eprintln!("SKIP: {t} not installed");
            return true;
        }
    }
    false
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The base rootfs: busybox plus files the diff will delete or hide.
pub fn make_base(root: &Path) {
    busybox_rootfs(root).unwrap();
    fs::create_dir_all(root.join("var/cache")).unwrap();
    fs::write(
        root.join("var/cache/old.txt"),
        b"hidden by the opaque dir\n",
    )
    .unwrap();
    fs::write(root.join("etc/motd"), b"deleted by a whiteout\n").unwrap();
}

/// An overlayfs upper dir as the engine leaves it after a RUN step.
pub fn make_upper(upper: &Path) {
    fs::create_dir_all(upper.join("etc")).unwrap();
    // Deleted file: a 0/0 character device.
    run(Command::new("mknod")
        .arg(upper.join("etc/motd"))
        .args(["c", "0", "0"]));
    // Opaque directory replacing var/cache.
    fs::create_dir_all(upper.join("var/cache")).unwrap();
    xattr::set(upper.join("var/cache"), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(upper.join("var/cache/new.txt"), b"fresh\n").unwrap();
    // Hard link pair, symlink, xattr, overlay-internal xattr that must not leak.
    fs::create_dir_all(upper.join("data")).unwrap();
    fs::write(upper.join("data/a"), b"linked content\n").unwrap();
    fs::hard_link(upper.join("data/a"), upper.join("data/b")).unwrap();
    symlink("a", upper.join("data/link")).unwrap();
    xattr::set(upper.join("data/a"), XATTR, b"hello").unwrap();
    xattr::set(upper.join("data"), "trusted.overlay.origin", b"internal").unwrap();
    // A path over 100 bytes.
    fs::create_dir_all(upper.join(LONG_DIR)).unwrap();
    fs::write(upper.join(long_file()), b"long\n").unwrap();
    run(Command::new("mkfifo").arg(upper.join("data/fifo")));
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub base: LayerDescriptor,
    pub diff: LayerDescriptor,
    pub image: BuiltImage,
}

impl Fixture {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// Builds base + diff layers and the image in a fresh temp dir.
pub fn build_fixture(options: &LayerOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let upper = dir.path().join("upper");
    make_base(&rootfs);
    make_upper(&upper);
    let blobs = dir.path().join("blobs");
    let base = write_layer(LayerSource::Tree(&rootfs), options, &blobs).unwrap();
    let diff = write_layer(LayerSource::OverlayDiff(&upper), options, &blobs).unwrap();
    let mut config = busybox_config();
    config.config.working_dir = "/data".into();
    config
        .config
        .labels
        .insert("org.example".into(), "kiln".into());
    config.add_layer(
        base.diff_id.clone(),
        "ADD rootfs / # buildkit",
        Timestamp::from_unix(EPOCH),
    );
    config.add_layer(
        diff.diff_id.clone(),
        "RUN /bin/sh -c make-things && link-them",
        Timestamp::now(),
    );
    config.add_empty_layer_history("CMD [\"sh\"]", Timestamp::now());
    let image = build_image(
        &config,
        &[base.clone(), diff.clone()],
        &ImageOptions {
            source_date_epoch: options.source_date_epoch,
            ..Default::default()
        },
    )
    .unwrap();
    Fixture {
        dir,
        base,
        diff,
        image,
    }
}

pub fn epoch_options() -> LayerOptions {
    LayerOptions {
        source_date_epoch: Some(EPOCH),
        ..Default::default()
    }
}
