//! Layer tars as other tools read them: OCI whiteouts, links, PAX, and reproducibility.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use common::*;
use kiln_exporter::{Compression, LayerOptions};

struct TarEntry {
    path: String,
    kind: tar::EntryType,
    link: Option<String>,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn read_layer(path: &Path) -> Vec<TarEntry> {
    let blob = fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(kiln_exporter::decompressed(blob).unwrap());
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                }
            }
        }
        out.push(TarEntry {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: e.header().entry_type(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            mtime: e.header().mtime().unwrap(),
            xattrs,
        });
    }
    out
}

#[test]
fn diff_layer_uses_oci_whiteouts_links_and_pax() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let entries = read_layer(&fx.diff.path);
    let by_path: HashMap<&str, &TarEntry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();

    assert_eq!(by_path["etc/.wh.motd"].kind, tar::EntryType::Regular);
    assert!(!paths.contains(&"etc/motd"), "{paths:?}");
    let opaque_dir = paths.iter().position(|p| *p == "var/cache/").unwrap();
    assert_eq!(paths[opaque_dir + 1], "var/cache/.wh..wh..opq");
    assert_eq!(paths[opaque_dir + 2], "var/cache/new.txt");

    assert_eq!(by_path["data/a"].kind, tar::EntryType::Regular);
    assert_eq!(by_path["data/b"].kind, tar::EntryType::Link);
    assert_eq!(by_path["data/b"].link.as_deref(), Some("data/a"));
    assert_eq!(by_path["data/link"].kind, tar::EntryType::Symlink);
    assert_eq!(by_path["data/link"].link.as_deref(), Some("a"));
    assert_eq!(by_path["data/fifo"].kind, tar::EntryType::Fifo);
    assert!(long_file().len() > 100);
    assert_eq!(by_path[long_file().as_str()].kind, tar::EntryType::Regular);

    assert_eq!(
        by_path["data/a"].xattrs,
        vec![(XATTR.to_owned(), b"hello".to_vec())]
    );
    assert!(
        entries.iter().all(|e| e
            .xattrs
            .iter()
            .all(|(k, _)| !k.starts_with("trusted.overlay."))),
        "overlay xattrs leaked"
    );
    // Directories precede their contents; siblings are sorted.
    assert!(
        paths.iter().position(|p| *p == "data/").unwrap()
            < paths.iter().position(|p| *p == "data/a").unwrap()
    );
    assert!(entries.iter().all(|e| e.mtime <= EPOCH as u64));
}

#[test]
fn base_layer_is_a_plain_tree() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let entries = read_layer(&fx.base.path);
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths[0], "bin/");
    assert!(paths.contains(&"bin/busybox"));
    assert!(paths.contains(&"etc/passwd"));
    assert!(!paths.iter().any(|p| p.contains(".wh.")));
    let sh = entries.iter().find(|e| e.path == "bin/sh").unwrap();
    assert_eq!(sh.kind, tar::EntryType::Symlink);
}

fn touch_tree(root: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    for entry in walk(root) {
        filetime::set_symlink_file_times(&entry, t, t).unwrap();
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() && !p.is_symlink() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.push(p);
    }
    out
}

#[test]
fn same_inputs_and_epoch_give_same_digests() {
    if skip_unless(&[]) {
        return;
    }
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let opts = LayerOptions {
            compression,
            ..epoch_options()
        };
        let a = build_fixture(&opts);
        let b = build_fixture(&opts);
        // Different on-disk times, all after the epoch.
        touch_tree(&a.path("upper"), EPOCH + 1000);
        touch_tree(&b.path("upper"), EPOCH + 987_654);
        let blobs_a = a.path("blobs2");
        let blobs_b = b.path("blobs2");
        let la = kiln_exporter::write_layer(
            kiln_exporter::LayerSource::OverlayDiff(&a.path("upper")),
            &opts,
            &blobs_a,
        )
        .unwrap();
        let lb = kiln_exporter::write_layer(
            kiln_exporter::LayerSource::OverlayDiff(&b.path("upper")),
            &opts,
            &blobs_b,
        )
        .unwrap();
        assert_eq!(la.digest, lb.digest, "{compression:?}");
        assert_eq!(la.diff_id, lb.diff_id);
        assert_eq!(a.base.digest, b.base.digest);
        assert_eq!(
            a.image.manifest_blob.descriptor.digest(),
            b.image.manifest_blob.descriptor.digest()
        );
        assert_eq!(a.image.config_blob.bytes, b.image.config_blob.bytes);
    }
}

#[test]
fn without_epoch_mtimes_change_the_digest() {
    if skip_unless(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper");
    make_upper(&upper);
    let opts = LayerOptions::default();
    touch_tree(&upper, 1000);
    let one = kiln_exporter::write_layer(
        kiln_exporter::LayerSource::OverlayDiff(&upper),
        &opts,
        &dir.path().join("b"),
    )
    .unwrap();
    touch_tree(&upper, 2000);
    let two = kiln_exporter::write_layer(
        kiln_exporter::LayerSource::OverlayDiff(&upper),
        &opts,
        &dir.path().join("b"),
    )
    .unwrap();
    assert_ne!(one.diff_id, two.diff_id);
}

#[test]
fn gzip_blob_is_a_standard_gzip_stream() {
    if skip_unless(&["gzip"]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&fx.diff.path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(kiln_exporter::sha256_digest(&out.stdout), fx.diff.diff_id);
    let mut raw = Vec::new();
    fs::File::open(&fx.diff.path)
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(kiln_exporter::sha256_digest(&raw), fx.diff.digest);
}
