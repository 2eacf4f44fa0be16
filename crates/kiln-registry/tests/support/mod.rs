//! Helpers for kiln-registry's integration tests: clients tuned for tests, deterministic
//! blobs and images pushed with the client under test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::media::{self, sha256_digest};
use kiln_registry::{AuthConfig, Client, ClientOptions, Descriptor, Platform, Reference};

/// Options with fast retries so fault tests do not sleep for long.
pub fn options() -> ClientOptions {
    ClientOptions {
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(50),
        ..ClientOptions::default()
    }
}

pub fn client() -> Client {
    Client::new(options()).unwrap()
}

pub fn client_with_auth(auth: AuthConfig) -> Client {
    Client::new(ClientOptions { auth, ..options() }).unwrap()
}

/// Deterministic bytes that do not compress or repeat.
pub fn pseudo_random(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A real gzip'd tar layer holding one file of `size` pseudo-random bytes, for tools
/// that look inside layers.
pub fn layer_tgz(size: usize, seed: u64) -> Vec<u8> {
    let data = pseudo_random(size, seed);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, format!("file-{seed}"), &data[..])
        .unwrap();
    gzip(&tar.into_inner().unwrap())
}

/// Writes bytes to `dir/name` and describes them as a layer.
pub fn blob_file(dir: &Path, name: &str, bytes: &[u8]) -> (Descriptor, PathBuf) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    (Descriptor::for_bytes(media::OCI_LAYER_GZIP, bytes), path)
}

/// An image pushed by `push_image`.
pub struct TestImage {
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Pushes an OCI image for `platform` with one layer per entry of `layers`.
pub fn push_image(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    layers: &[Vec<u8>],
    work: &Path,
) -> TestImage {
    let mut descs = Vec::new();
    for (i, bytes) in layers.iter().enumerate() {
        let (d, path) = blob_file(work, &format!("layer-{i}-{}", bytes.len()), bytes);
        client.push_blob(r, &d, &path, &[]).unwrap();
        descs.push(d);
    }
    let config = serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "variant": platform.variant,
        "rootfs": {"type": "layers", "diff_ids": descs.iter().map(|d| d.digest.clone()).collect::<Vec<_>>()},
        "config": {}
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_path = work.join(format!("config-{}", sha256_digest(&config_bytes)));
    std::fs::write(&config_path, &config_bytes).unwrap();
    let config_desc = Descriptor::for_bytes(media::OCI_CONFIG, &config_bytes);
    client
        .push_blob(r, &config_desc, &config_path, &[])
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": config_desc,
        "layers": descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = client
        .push_manifest(r, media::OCI_MANIFEST, &manifest_bytes)
        .unwrap();
    TestImage {
        manifest_digest,
        manifest_bytes,
        config: config_desc,
        layers: descs,
    }
}

/// Pushes an index of the given images under `r`'s tag; returns its digest.
pub fn push_index(client: &Client, r: &Reference, entries: &[(&TestImage, Platform)]) -> String {
    let manifests: Vec<Descriptor> = entries
        .iter()
        .map(|(img, p)| {
            let mut d = Descriptor::for_bytes(media::OCI_MANIFEST, &img.manifest_bytes);
            d.platform = Some(p.clone());
            d
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    client
        .push_manifest(r, media::OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        .unwrap()
}

/// Runs a command and returns stdout, failing the test with its output otherwise.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
