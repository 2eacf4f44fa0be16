//! `type=local` and `type=tar`: the final filesystem, whiteouts applied.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::*;
use kiln_exporter::{export_dir_tar, export_local, export_rootfs_tar};

#[test]
fn local_output_is_the_merged_filesystem_and_runs() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let dest = fx.path("out");
    fs::create_dir_all(dest.join("stale")).unwrap();
    export_local(&fx.image.layers, &dest).unwrap();
    assert!(!dest.join("stale").exists(), "old contents replaced");
    assert!(dest.join("bin/busybox").is_file());
    assert!(!dest.join("etc/motd").exists());
    assert!(!dest.join("var/cache/old.txt").exists());
    assert!(dest.join("var/cache/new.txt").is_file());
    // The exported busybox still works.
    let out = std::process::Command::new(dest.join("bin/busybox"))
        .args(["cat", dest.join("data/b").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"linked content\n");
    // Nothing but `out` is left beside it.
    let leftovers: Vec<_> = fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kiln-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn tar_paths(path: &std::path::Path) -> BTreeSet<String> {
    let mut ar = tar::Archive::new(fs::File::open(path).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect()
}

#[test]
fn tar_output_lists_the_merged_filesystem() {
    if skip_unless(&[]) {
        return;
    }
    let fx = build_fixture(&epoch_options());
    let out = fx.path("rootfs.tar");
    export_rootfs_tar(&fx.image.layers, &out, Some(EPOCH)).unwrap();
    let paths = tar_paths(&out);
    assert!(paths.contains("bin/busybox"));
    assert!(paths.contains("data/b"));
    assert!(paths.contains(long_file().as_str()));
    assert!(!paths.contains("etc/motd"));
    assert!(!paths.contains("var/cache/old.txt"));
    assert!(!paths.iter().any(|p| p.contains(".wh.")), "{paths:?}");

    // Same tree from a directory gives the same bytes.
    let tree = fx.path("tree");
    export_local(&fx.image.layers, &tree).unwrap();
    let from_dir = fx.path("from-dir.tar");
    export_dir_tar(&tree, &from_dir, Some(EPOCH)).unwrap();
    assert_eq!(fs::read(&out).unwrap(), fs::read(&from_dir).unwrap());
}
