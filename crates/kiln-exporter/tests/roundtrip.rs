//! Writing images and reading them back: selection by tag, digest and platform, digest
//! verification, and re-export without changing digests.

mod common;

use std::fs;
use std::process::Command;

use common::*;
use kiln_exporter::{
    Descriptor, ExportError, ImageIndex, ImageName, MediaType, Platform, index_json, load_image,
    write_docker_archive, write_oci_archive, write_oci_layout,
};

#[test]
fn every_output_reads_back_as_the_same_image() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let names = [
        ImageName::parse("kiln/test:v1").unwrap(),
        ImageName::parse("kiln/test:latest").unwrap(),
    ];
    let layout = fx.path("layout");
    write_oci_layout(&fx.image, &layout, &names).unwrap();
    write_oci_archive(&fx.image, &fx.path("oci.tar"), &names).unwrap();
    write_docker_archive(&fx.image, &fx.path("docker.tar"), &names).unwrap();
    let want = fx.image.manifest_blob.descriptor.digest().clone();
    let digest_sel = format!("@{want}");
    for (src, sel) in [
        ("layout", Some("v1")),
        ("layout", Some("docker.io/kiln/test:latest")),
        ("layout", Some(digest_sel.as_str())),
        ("oci.tar", Some("latest")),
        ("oci.tar", None),
    ] {
        let img = load_image(&fx.path(src), sel, None).unwrap();
        assert_eq!(img.manifest_descriptor.digest(), &want, "{src} {sel:?}");
        assert_eq!(img.config_bytes, fx.image.config_blob.bytes);
        assert_eq!(img.names.len(), 2);
    }
    // The docker archive read via manifest.json: manifest is rebuilt, layers are the same.
    let d = load_image(&fx.path("docker.tar"), Some("kiln/test:v1"), None).unwrap();
    assert_eq!(d.config_bytes, fx.image.config_blob.bytes);
    let layer_digests: Vec<_> = d.layers().iter().map(|l| l.digest().clone()).collect();
    assert_eq!(
        layer_digests,
        vec![fx.base.digest.clone(), fx.diff.digest.clone()]
    );
    let by_id = load_image(
        &fx.path("docker.tar"),
        Some(fx.image.config_blob.descriptor.digest().as_ref()),
        None,
    )
    .unwrap();
    assert_eq!(by_id.config_bytes, fx.image.config_blob.bytes);

    // Loaded, copied, written again: identical manifest digest and bytes.
    let again = load_image(&layout, Some("v1"), None)
        .unwrap()
        .into_built_image(&fx.path("blobs-again"))
        .unwrap();
    write_oci_archive(&again, &fx.path("again.tar"), &names).unwrap();
    assert_eq!(
        fs::read(fx.path("again.tar")).unwrap(),
        fs::read(fx.path("oci.tar")).unwrap()
    );

    assert!(matches!(
        load_image(&layout, Some("nope"), None),
        Err(ExportError::ImageNotFound(_))
    ));
}

#[test]
fn archives_are_reproducible() {
    if skip_unless(&[]) {
        return;
    }
    let a = build_fixture(&epoch_options());
    let b = build_fixture(&epoch_options());
    let names = [ImageName::parse("x:1").unwrap()];
    write_oci_archive(&a.image, &a.path("o.tar"), &names).unwrap();
    write_oci_archive(&b.image, &b.path("o.tar"), &names).unwrap();
    write_docker_archive(&a.image, &a.path("d.tar"), &names).unwrap();
    write_docker_archive(&b.image, &b.path("d.tar"), &names).unwrap();
    assert_eq!(
        fs::read(a.path("o.tar")).unwrap(),
        fs::read(b.path("o.tar")).unwrap()
    );
    assert_eq!(
        fs::read(a.path("d.tar")).unwrap(),
        fs::read(b.path("d.tar")).unwrap()
    );
}

#[test]
fn tampered_blobs_are_refused() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let layout = fx.path("layout");
    write_oci_layout(&fx.image, &layout, &[ImageName::parse("t:1").unwrap()]).unwrap();
    let layer_hex = &fx.diff.digest.as_ref()["sha256:".len()..];
    let blob = layout.join("blobs/sha256").join(layer_hex);
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();
    let img = load_image(&layout, Some("1"), None).unwrap();
    let err = img.copy_layers(&fx.path("copy")).unwrap_err();
    assert!(err.to_string().contains("mismatch"), "{err}");
    // Nothing half-copied is left behind under the blob's name.
    assert!(!fx.path("copy").join(layer_hex).exists());

    let config_hex = &fx.image.config_blob.descriptor.digest().as_ref()["sha256:".len()..];
    fs::write(layout.join("blobs/sha256").join(config_hex), b"{}").unwrap();
    assert!(matches!(
        load_image(&layout, Some("1"), None),
        Err(ExportError::SizeMismatch { .. } | ExportError::DigestMismatch { .. })
    ));
}

fn platform(arch: &str) -> Platform {
    serde_json::from_value(serde_json::json!({"architecture": arch, "os": "linux"})).unwrap()
}

#[test]
fn image_index_picks_the_platform() {
    if skip_unless(&[]) {
        return;
    }
    let amd = build_fixture(&epoch_options());
    let layout = amd.path("layout");
    write_oci_layout(&amd.image, &layout, &[]).unwrap();
    // A second, arm64 image in the same layout.
    let mut arm_config = amd.image.config.clone();
    arm_config.architecture = "arm64".into();
    let arm =
        kiln_exporter::build_image(&arm_config, &amd.image.layers, &Default::default()).unwrap();
    write_oci_layout(&arm, &layout, &[]).unwrap();
    // An index naming both, tagged "multi".
    let mut index = ImageIndex::default();
    index.set_media_type(Some(MediaType::ImageIndex));
    index.set_manifests(vec![
        arm.manifest_blob.descriptor.clone(),
        amd.image.manifest_blob.descriptor.clone(),
    ]);
    let bytes = index_json(&index).unwrap();
    let digest = kiln_exporter::sha256_digest(&bytes);
    fs::write(
        layout.join("blobs/sha256").join(&digest.as_ref()[7..]),
        &bytes,
    )
    .unwrap();
    let mut top = Descriptor::new(MediaType::ImageIndex, bytes.len() as u64, digest);
    top.set_annotations(Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            "multi".to_owned(),
        )]
        .into(),
    ));
    let mut outer: ImageIndex =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut entries = outer.manifests().clone();
    entries.push(top);
    outer.set_manifests(entries);
    fs::write(layout.join("index.json"), index_json(&outer).unwrap()).unwrap();

    let got = load_image(&layout, Some("multi"), None).unwrap();
    assert_eq!(got.config.architecture, "amd64");
    let got = load_image(&layout, Some("multi"), Some(&platform("arm64"))).unwrap();
    assert_eq!(got.config.architecture, "arm64");
    assert!(matches!(
        load_image(&layout, Some("multi"), Some(&platform("s390x"))),
        Err(ExportError::PlatformNotFound(_))
    ));
    // Untagged, several images: the caller must choose.
    assert!(matches!(
        load_image(&layout, None, None),
        Err(ExportError::AmbiguousImage(_))
    ));
    // skopeo agrees on what the index holds.
    if have("skopeo") {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:multi", layout.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn layout_merge_keeps_other_tags_and_replaces_same_tag() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let layout = fx.path("layout");
    write_oci_layout(&fx.image, &layout, &[ImageName::parse("a:one").unwrap()]).unwrap();
    let mut other_config = fx.image.config.clone();
    other_config.config.cmd = vec!["true".into()];
    let other =
        kiln_exporter::build_image(&other_config, &fx.image.layers, &Default::default()).unwrap();
    write_oci_layout(&other, &layout, &[ImageName::parse("a:two").unwrap()]).unwrap();
    write_oci_layout(&other, &layout, &[ImageName::parse("a:one").unwrap()]).unwrap();
    let index: ImageIndex =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests().len(), 2);
    assert!(
        index
            .manifests()
            .iter()
            .all(|d| d.digest() == other.manifest_blob.descriptor.digest())
    );
    // A non-layout, non-empty directory is not overwritten.
    fs::create_dir_all(fx.path("busy")).unwrap();
    fs::write(fx.path("busy/file"), b"x").unwrap();
    assert!(matches!(
        write_oci_layout(&fx.image, &fx.path("busy"), &[]),
        Err(ExportError::DestinationNotEmpty(_))
    ));
}

#[test]
fn compressed_archives_and_layout_refs_load() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let names = [ImageName::parse("kiln/test:v1").unwrap()];
    let plain = fx.path("docker.tar");
    write_docker_archive(&fx.image, &plain, &names).unwrap();
    let gz = fx.path("docker.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(fs::File::create(&gz).unwrap(), Default::default());
    std::io::copy(&mut fs::File::open(&plain).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    let img = load_image(&gz, Some("kiln/test:v1"), None).unwrap();
    assert_eq!(img.config_bytes, fx.image.config_blob.bytes);

    let layout = fx.path("ctx");
    write_oci_layout(&fx.image, &layout, &names).unwrap();
    let digest = fx.image.manifest_blob.descriptor.digest().to_string();
    for text in [
        format!("oci-layout://{}:v1", layout.display()),
        format!("oci-layout://{}@{digest}", layout.display()),
    ] {
        let r = kiln_exporter::OciLayoutRef::parse(&text).unwrap();
        let img = load_image(&r.path, r.selector(), None).unwrap();
        assert_eq!(img.manifest_descriptor.digest().to_string(), digest);
    }
}

/// A `docker save` archive in the pre-25 layout: `<id>/layer.tar` uncompressed, the config
/// as `<hex>.json`, a repeated layer stored once and symlinked.
fn legacy_docker_archive(dest: &std::path::Path, tamper: bool) -> kiln_exporter::Digest {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("hello"), b"hi\n").unwrap();
    let (mut layer, diff_id) = kiln_exporter::write_layer_tar(
        kiln_exporter::LayerSource::Tree(src.path()),
        Some(0),
        Vec::new(),
    )
    .unwrap();
    let mut config = kiln_exporter::testutil::busybox_config();
    config.rootfs.diff_ids = vec![diff_id.clone(), diff_id.clone()];
    let config_bytes = config.to_json().unwrap();
    let config_hex = kiln_exporter::sha256_digest(&config_bytes).as_ref()[7..].to_owned();
    if tamper {
        let n = layer.len();
        layer[n - 1100] ^= 1;
    }
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": ["legacy:1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]);
    let mut b = tar::Builder::new(fs::File::create(dest).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes).unwrap();
    };
    add("manifest.json", manifest.to_string().as_bytes());
    add(&format!("{config_hex}.json"), &config_bytes);
    add("aaa/layer.tar", &layer);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    b.finish().unwrap();
    diff_id
}

#[test]
fn legacy_docker_save_archives_load_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tar");
    let diff_id = legacy_docker_archive(&good, false);
    let img = load_image(&good, Some("legacy:1"), None).unwrap();
    assert_eq!(img.layers().len(), 2);
    assert_eq!(img.layers()[0].digest(), &diff_id);
    assert_eq!(img.layers()[1].media_type(), &MediaType::ImageLayer);
    let layers = img.copy_layers(&dir.path().join("blobs")).unwrap();
    assert_eq!(layers[1].diff_id, diff_id);
    kiln_exporter::export_local(&layers, &dir.path().join("tree")).unwrap();
    assert_eq!(fs::read(dir.path().join("tree/hello")).unwrap(), b"hi\n");

    let bad = dir.path().join("bad.tar");
    legacy_docker_archive(&bad, true);
    assert!(matches!(
        load_image(&bad, None, None),
        Err(ExportError::DigestMismatch { .. })
    ));
}
