//! The outputs as real clients see them: skopeo and umoci.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use kiln_exporter::{
    Compression, ImageName, LayerOptions, MediaType, write_docker_archive, write_oci_archive,
    write_oci_layout,
};
use serde_json::Value;

fn inspect(transport: &str) -> Value {
    let out = run(Command::new("skopeo").args(["inspect", "--raw", transport]));
    serde_json::from_str(&out).unwrap()
}

fn inspect_config(transport: &str) -> Value {
    let out = run(Command::new("skopeo").args(["inspect", "--config", transport]));
    serde_json::from_str(&out).unwrap()
}

fn names() -> Vec<ImageName> {
    vec![ImageName::parse("kiln/test:v1").unwrap()]
}

#[test]
fn skopeo_reads_layout_oci_archive_and_docker_archive() {
    if skip_unless(&["skopeo"]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let layout = fx.path("layout");
    let oci_tar = fx.path("image-oci.tar");
    let docker_tar = fx.path("image-docker.tar");
    write_oci_layout(&fx.image, &layout, &names()).unwrap();
    write_oci_archive(&fx.image, &oci_tar, &names()).unwrap();
    write_docker_archive(&fx.image, &docker_tar, &names()).unwrap();

    let ours = String::from_utf8(fx.image.manifest_blob.bytes.clone()).unwrap();
    for t in [
        format!("oci:{}:v1", layout.display()),
        format!("oci-archive:{}:v1", oci_tar.display()),
    ] {
        let raw = inspect(&t);
        assert_eq!(raw, serde_json::from_str::<Value>(&ours).unwrap(), "{t}");
        let cfg = inspect_config(&t);
        assert_eq!(cfg["architecture"], "amd64");
        assert_eq!(cfg["config"]["WorkingDir"], "/data");
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        let info: Value =
            serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &t]))).unwrap();
        assert_eq!(
            info["Digest"],
            fx.image.manifest_blob.descriptor.digest().to_string()
        );
        assert_eq!(info["Labels"]["org.example"], "kiln");
    }
    let t = format!("docker-archive:{}", docker_tar.display());
    let info: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &t]))).unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["RepoTags"], serde_json::json!([]), "{info}");
    let cfg = inspect_config(&t);
    assert_eq!(cfg["rootfs"]["diff_ids"][1], fx.diff.diff_id.to_string());
    // By tag as well.
    run(Command::new("skopeo").args([
        "inspect",
        &format!("docker-archive:{}:kiln/test:v1", docker_tar.display()),
    ]));
    // The docker archive is an OCI layout tar too.
    inspect(&format!("oci-archive:{}:v1", docker_tar.display()));
}

#[test]
fn skopeo_copies_between_our_outputs() {
    if skip_unless(&["skopeo"]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let layout = fx.path("layout");
    let docker_tar = fx.path("d.tar");
    write_oci_layout(&fx.image, &layout, &names()).unwrap();
    write_docker_archive(&fx.image, &docker_tar, &names()).unwrap();
    let copied = fx.path("copied");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &format!("oci-archive:{}:v2", fx.path("c.tar").display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", docker_tar.display()),
        &format!("oci:{}:fromdocker", copied.display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker-archive:{}:kiln/copy:1", fx.path("d2.tar").display()),
    ]));
    // What skopeo wrote, our reader reads, with the same layers.
    let back = kiln_exporter::load_image(&fx.path("c.tar"), Some("v2"), None).unwrap();
    assert_eq!(
        back.manifest_descriptor.digest(),
        fx.image.manifest_blob.descriptor.digest()
    );
    let from_docker = kiln_exporter::load_image(&copied, Some("fromdocker"), None).unwrap();
    assert_eq!(
        from_docker.config.rootfs.diff_ids,
        fx.image.config.rootfs.diff_ids
    );
    let d2 = kiln_exporter::load_image(&fx.path("d2.tar"), Some("kiln/copy:1"), None).unwrap();
    assert_eq!(d2.config.rootfs.diff_ids, fx.image.config.rootfs.diff_ids);
    let tree = fx.path("from-skopeo-docker");
    let blobs = fx.path("blobs-d2");
    let layers = d2.copy_layers(&blobs).unwrap();
    kiln_exporter::export_local(&layers, &tree).unwrap();
    assert!(tree.join("bin/busybox").is_file());
    assert!(!tree.join("etc/motd").exists());
}

/// What any correct unpacking of the fixture image must show.
pub fn check_final_rootfs(rootfs: &Path) {
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(rootfs.join("etc/passwd").is_file());
    assert!(
        !rootfs.join("etc/motd").exists(),
        "whiteout did not delete etc/motd"
    );
    assert!(rootfs.join("etc/hostname").exists());
    assert!(
        !rootfs.join("var/cache/old.txt").exists(),
        "opaque dir did not hide old.txt"
    );
    assert_eq!(
        fs::read(rootfs.join("var/cache/new.txt")).unwrap(),
        b"fresh\n"
    );
    let a = fs::metadata(rootfs.join("data/a")).unwrap();
    let b = fs::metadata(rootfs.join("data/b")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link pair lost");
    assert_eq!(
        fs::read_link(rootfs.join("data/link")).unwrap(),
        Path::new("a")
    );
    assert_eq!(fs::read(rootfs.join(long_file())).unwrap(), b"long\n");
    assert_eq!(
        xattr::get(rootfs.join("data/a"), XATTR).unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert!(
        fs::symlink_metadata(rootfs.join("data/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(!walk_names(rootfs).iter().any(|n| n.starts_with(".wh.")));
}

use std::os::unix::fs::FileTypeExt;

fn walk_names(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&p) {
            if p.is_symlink() {
                continue;
            }
            for e in rd {
                let e = e.unwrap();
                out.push(e.file_name().to_string_lossy().into_owned());
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn umoci_unpacks_our_layout_with_whiteouts_applied() {
    if skip_unless(&["umoci"]) {
        return;
    }
    for compression in [Compression::Gzip, Compression::Zstd] {
        let fx = build_fixture(&LayerOptions {
            compression,
            ..epoch_options()
        });
        let layout = fx.path("layout");
        write_oci_layout(&fx.image, &layout, &names()).unwrap();
        let bundle = fx.path("bundle");
        let out = Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", layout.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        if compression == Compression::Zstd && !out.status.success() {
            // umoci 0.4 predates zstd layers; only our unpacker is checked then.
            eprintln!(
                "umoci cannot read zstd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            check_final_rootfs(&bundle.join("rootfs"));
        }
        // Our own unpacker agrees.
        let local = fx.path("local");
        kiln_exporter::export_local(&fx.image.layers, &local).unwrap();
        check_final_rootfs(&local);
    }
}

#[test]
fn zstd_layout_is_readable_by_skopeo() {
    if skip_unless(&["skopeo"]) {
        return;
    }
    let fx = build_fixture(&LayerOptions {
        compression: Compression::Zstd,
        ..epoch_options()
    });
    let layout = fx.path("layout");
    write_oci_layout(&fx.image, &layout, &names()).unwrap();
    let raw = inspect(&format!("oci:{}:v1", layout.display()));
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &format!("oci:{}:copy", fx.path("copy").display()),
    ]));
}

#[test]
fn docker_media_types_load_in_skopeo() {
    if skip_unless(&["skopeo"]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let image = kiln_exporter::build_image(
        &fx.image.config,
        &fx.image.layers,
        &kiln_exporter::ImageOptions {
            format: kiln_exporter::ManifestFormat::Docker,
            source_date_epoch: Some(EPOCH),
            ..Default::default()
        },
    )
    .unwrap();
    let docker_tar = fx.path("docker-types.tar");
    write_docker_archive(&image, &docker_tar, &names()).unwrap();
    let layout = fx.path("docker-types");
    write_oci_layout(&image, &layout, &names()).unwrap();
    // skopeo's oci: transport only names OCI-typed manifests, as BuildKit's type=oci
    // (always oci-mediatypes) writes; docker types are for type=docker archives.
    let raw: Value = serde_json::from_slice(&image.manifest_blob.bytes).unwrap();
    assert_eq!(raw["mediaType"], kiln_exporter::DOCKER_MANIFEST_V2);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        kiln_exporter::DOCKER_LAYER_GZIP
    );
    run(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", docker_tar.display()),
        &format!("oci:{}:again", fx.path("again").display()),
    ]));
    let back = kiln_exporter::load_image(&layout, Some("v1"), None).unwrap();
    let layers = back.copy_layers(&fx.path("b")).unwrap();
    assert_eq!(layers[0].media_type, MediaType::ImageLayerGzip);
}

#[test]
fn testutil_busybox_layout_is_a_runnable_image() {
    if skip_unless(&["skopeo", "umoci", "chroot"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image =
        kiln_exporter::testutil::busybox_oci_layout(&work.path().join("w"), &layout, "latest")
            .unwrap();
    let raw = inspect(&format!("oci:{}:latest", layout.display()));
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    // Same digest every time, everywhere: the base is pinned to BASE_EPOCH.
    let again = kiln_exporter::testutil::busybox_image(&work.path().join("w2")).unwrap();
    assert_eq!(
        again.manifest_blob.descriptor.digest(),
        image.manifest_blob.descriptor.digest()
    );
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let out = run(Command::new("chroot").arg(bundle.join("rootfs")).args([
        "/bin/sh",
        "-c",
        "echo hello from $(cat /etc/hostname)",
    ]));
    assert_eq!(out, "hello from kiln\n");
}
