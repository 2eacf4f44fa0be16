//! Interoperability with skopeo: what skopeo pushes kiln pulls, and what kiln pushes
//! skopeo reads back.

mod support;

use std::path::Path;
use std::process::Command;

use kiln_registry::media::{self, sha256_digest};
use kiln_registry::testutil::TestRegistry;
use kiln_registry::{Descriptor, Platform};
use support::{client, layer_tgz, push_image, push_index, run};

fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.arg("--insecure-policy");
    c
}

/// Writes a one-image OCI layout with a small gzip layer; returns the layer bytes and
/// the manifest's descriptor.
fn oci_layout(dir: &Path, tag: &str) -> (Vec<u8>, Descriptor) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        digest
    };
    let mut layer = tar::Builder::new(Vec::new());
    let content = b"hello from an OCI layout\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    layer
        .append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    let tar = layer.into_inner().unwrap();
    let layer = support::gzip(&tar);
    let layer_desc = Descriptor::new(media::OCI_LAYER_GZIP, &put(&layer), layer.len() as u64);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&tar)]},
        "config": {"Cmd": ["/hello.txt"]}
    }))
    .unwrap();
    let config_desc = Descriptor::new(media::OCI_CONFIG, &put(&config), config.len() as u64);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
    }))
    .unwrap();
    let mut manifest_desc =
        Descriptor::new(media::OCI_MANIFEST, &put(&manifest), manifest.len() as u64);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media::OCI_MANIFEST,
            "digest": manifest_desc.digest,
            "size": manifest_desc.size,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    manifest_desc.annotations.clear();
    (layer, manifest_desc)
}

#[test]
fn kiln_pulls_what_skopeo_pushed() {
    let reg = TestRegistry::start();
    let layout = tempfile::tempdir().unwrap();
    let (layer, manifest) = oci_layout(layout.path(), "v1");
    run(skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.path().display()),
        &format!("docker://{}/from-skopeo:v1", reg.host()),
    ]));

    let c = client();
    let r = reg.reference("from-skopeo:v1");
    let pulled = c
        .pull(&r, &Platform::parse("linux/amd64").unwrap())
        .unwrap();
    assert_eq!(
        pulled.manifest.digest, manifest.digest,
        "skopeo keeps the manifest as is"
    );
    assert_eq!(pulled.layers.len(), 1);
    let config: serde_json::Value = serde_json::from_slice(&pulled.config_bytes).unwrap();
    assert_eq!(config["config"]["Cmd"][0], "/hello.txt");
    let dest = layout.path().join("pulled-layer");
    c.fetch_blob(&r, &pulled.layers[0], &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), layer);
    assert_eq!(
        c.list_tags(&reg.reference("from-skopeo")).unwrap(),
        vec!["v1"]
    );
}

#[test]
fn skopeo_reads_what_kiln_pushed() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let r = reg.reference("from-kiln:1");
    let img = push_image(
        &c,
        &r,
        &amd64,
        &[layer_tgz(3000, 1), layer_tgz(20, 2)],
        work.path(),
    );

    let inspect: serde_json::Value = serde_json::from_str(&run(skopeo().args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/from-kiln:1", reg.host()),
    ])))
    .unwrap();
    assert_eq!(inspect["Digest"], img.manifest_digest);
    let layers: Vec<String> = serde_json::from_value(inspect["Layers"].clone()).unwrap();
    assert_eq!(
        layers,
        img.layers
            .iter()
            .map(|d| d.digest.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(inspect["Architecture"], "amd64");

    let raw = run(skopeo().args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/from-kiln:1", reg.host()),
    ]));
    assert_eq!(raw.as_bytes(), img.manifest_bytes);

    // An index kiln pushes is a valid multi-platform image to skopeo.
    let arm64 = Platform::parse("linux/arm64/v8").unwrap();
    let arm = push_image(
        &c,
        &reg.reference("from-kiln:arm"),
        &arm64,
        &[layer_tgz(50, 3)],
        work.path(),
    );
    let index = push_index(
        &c,
        &reg.reference("from-kiln:multi"),
        &[(&img, amd64), (&arm, arm64)],
    );
    let out = work.path().join("copied");
    run(skopeo().args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}/from-kiln:multi", reg.host()),
        &format!("oci:{}:multi", out.display()),
    ]));
    let index_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index_json["manifests"][0]["digest"], index);
    assert!(
        out.join("blobs/sha256")
            .join(&arm.layers[0].digest["sha256:".len()..])
            .exists()
    );
}
