//! Test helpers other crates' tests reuse: a busybox root filesystem and a base image made
//! from it. Enabled by the `testutil` feature.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use oci_spec::image::{Arch, Os, Platform};

use crate::config::ImageConfig;
use crate::error::{IoContext, Result};
use crate::image::{BuiltImage, ImageOptions, build_image};
use crate::layer::{LayerOptions, LayerSource, write_layer};
use crate::output::write_oci_layout;
use crate::reference::ImageName;

/// The statically linked busybox the base image is made from.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked to busybox in `bin/`.
pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "mkdir", "rm", "cp", "mv", "ln", "env", "id",
    "sleep", "test", "touch", "chmod", "chown", "wc", "grep", "sed", "head", "tail", "stat", "pwd",
    "uname", "find", "sort", "tr", "printf", "whoami", "tar", "gzip",
];

/// Fixed `SOURCE_DATE_EPOCH` of the base image, so its digest is the same everywhere.
pub const BASE_EPOCH: i64 = 1_700_000_000;

/// Whether this machine can build the busybox base (tests skip themselves when not).
pub fn busybox_available() -> bool {
    Path::new(BUSYBOX).is_file()
}

/// Fills `root` with a minimal busybox filesystem: `bin/busybox` and applet symlinks,
/// `etc/passwd`, `etc/group`, `tmp` (1777), `root`, `home`.
pub fn busybox_rootfs(root: &Path) -> Result<()> {
    for d in ["bin", "etc", "tmp", "root", "home", "usr/bin", "var"] {
        fs::create_dir_all(root.join(d)).ctx("create directory", root.join(d))?;
    }
    let bin = root.join("bin/busybox");
    fs::copy(BUSYBOX, &bin).ctx("copy busybox to", &bin)?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).ctx("chmod", &bin)?;
    for applet in APPLETS {
        let link = root.join("bin").join(applet);
        match symlink("busybox", &link) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(e).ctx("symlink", &link);
            }
            _ => {}
        }
    }
    let files: [(&str, &str, u32); 4] = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            0o644,
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
        ("etc/hostname", "kiln\n", 0o644),
        ("etc/os-release", "NAME=kiln-busybox\nID=busybox\n", 0o644),
    ];
    for (rel, text, mode) in files {
        let p = root.join(rel);
        fs::write(&p, text).ctx("write", &p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).ctx("chmod", &p)?;
    }
    let tmp = root.join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).ctx("chmod", &tmp)?;
    Ok(())
}

/// The busybox base image config: linux/amd64, `PATH` set, `CMD ["sh"]`.
pub fn busybox_config() -> ImageConfig {
    let mut p = Platform::default();
    p.set_os(Os::Linux);
    p.set_architecture(Arch::Amd64);
    let mut config = ImageConfig::for_platform(&p);
    config.config.env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()];
    config.config.cmd = vec!["sh".into()];
    config
}

/// Builds the busybox base image: rootfs in `work/rootfs`, blobs in `work/blobs`.
pub fn busybox_image(work: &Path) -> Result<BuiltImage> {
    let rootfs = work.join("rootfs");
    busybox_rootfs(&rootfs)?;
    let blobs: PathBuf = work.join("blobs");
    let layer = write_layer(
        LayerSource::Tree(&rootfs),
        &LayerOptions {
            source_date_epoch: Some(BASE_EPOCH),
            ..Default::default()
        },
        &blobs,
    )?;
    let mut config = busybox_config();
    config.add_layer(
        layer.diff_id.clone(),
        "ADD busybox rootfs / # buildkit",
        crate::timestamp::Timestamp::from_unix(BASE_EPOCH),
    );
    build_image(
        &config,
        &[layer],
        &ImageOptions {
            source_date_epoch: Some(BASE_EPOCH),
            ..Default::default()
        },
    )
}

/// Writes the busybox base image as an OCI layout at `layout` tagged `tag` (e.g. `latest`,
/// or a full name such as `busybox:1`); scratch files go to `work`.
pub fn busybox_oci_layout(work: &Path, layout: &Path, tag: &str) -> Result<BuiltImage> {
    let image = busybox_image(work)?;
    let name = ImageName::parse(
        if tag.contains(':') || tag.contains('/') {
            tag.to_owned()
        } else {
            format!("busybox:{tag}")
        }
        .as_str(),
    )?;
    write_oci_layout(&image, layout, &[name])?;
    Ok(image)
}
