//! `kiln du` and `kiln prune` through the real binary, on a store holding an imported image,
//! the snapshot chain of that image's latest build and unrelated old cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use kiln_store::Store;
use kiln_store::fsutil::now_ms;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
const DAY: i64 = 86_400_000;

fn kiln(root: &Path, args: &[&str]) -> Output {
    Command::new(KILN)
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("KILN_ROOT")
        .env_remove("KILN_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn kiln_ok(root: &Path, args: &[&str]) -> String {
    let out = kiln(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kiln {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A snapshot holding one file of `bytes`, through the worker's snapshotter when running
/// as root (the real path), else straight through the store.
fn snapshot(
    store: &Arc<Store>,
    scratch: &Path,
    parent: Option<&str>,
    bytes: usize,
    label: &str,
) -> String {
    let src = scratch.join(format!("src-{label}"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data"), vec![3u8; bytes]).unwrap();
    if is_root() {
        let snapshotter = kiln_worker::Snapshotter::new(store.clone());
        return snapshotter.import_dir(parent, &src, label).unwrap().id;
    }
    let id = store.new_snapshot_id();
    let dir = store.snapshot_dir(&id).unwrap();
    fs::create_dir_all(&dir).unwrap();
    fs::rename(&src, dir.join("fs")).unwrap();
    store
        .add_snapshot(&id, parent, bytes as u64, label)
        .unwrap();
    id
}

fn age(store: &Store, id: &str, days: i64) {
    store
        .set_snapshot_last_used(id, now_ms() - days * DAY)
        .unwrap();
}

/// Imports a one-file image named `app:test` and returns its stored name.
fn import_image(scratch: &Path, root: &Path) -> String {
    let rootfs = scratch.join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/hello"), "hi\n").unwrap();
    let tar = scratch.join("rootfs.tar");
    let ok = Command::new("tar")
        .args([
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar failed");
    kiln_ok(root, &["import", tar.to_str().unwrap(), "app:test"]);
    let store = Store::open(root).unwrap();
    let images = store.list_images().unwrap();
    assert_eq!(images.len(), 1);
    images[0].name.clone()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Arc<Store>,
    chain: Vec<String>,
    junk: String,
    image_blobs: Vec<kiln_store::Digest>,
}

fn fixture() -> Option<Fixture> {
    if Command::new("tar").arg("--version").output().is_err() {
        eprintln!("skipping: no tar");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let name = import_image(dir.path(), &root);
    let store = Arc::new(Store::open(&root).unwrap());
    let image_blobs: Vec<_> = fs::read_dir(store.blobs_dir())
        .unwrap()
        .map(|e| {
            kiln_store::Digest::parse(&format!(
                "sha256:{}",
                e.unwrap().file_name().to_string_lossy()
            ))
            .unwrap()
        })
        .collect();
    let base = snapshot(&store, dir.path(), None, 4000, "base");
    let top = snapshot(&store, dir.path(), Some(&base), 2000, "top");
    let junk = snapshot(&store, dir.path(), Some(&base), 8000, "junk");
    store
        .cache_insert("k-top", Some(&top), "Dockerfile#[app 1/1]", "{}")
        .unwrap();
    store
        .cache_insert("k-junk", Some(&junk), "Dockerfile#[old 1/1]", "{}")
        .unwrap();
    store.record_build_root(&name, &[top.as_str()]).unwrap();
    for (id, days) in [(&base, 9), (&top, 9), (&junk, 3)] {
        age(&store, id, days);
    }
    Some(Fixture {
        _dir: dir,
        root,
        store,
        chain: vec![top, base],
        junk,
        image_blobs,
    })
}

#[test]
fn du_lists_records_with_totals_and_json() {
    let Some(f) = fixture() else { return };
    let text = kiln_ok(&f.root, &["du"]);
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"]);
    let line_of = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} missing:\n{text}"))
            .to_owned()
    };
    assert!(line_of(&f.junk).contains(" true "), "{text}");
    assert!(line_of(&f.chain[0]).contains(" false "), "{text}");
    assert!(line_of(&f.junk).contains("3 days ago"), "{text}");
    assert!(
        text.contains("Reclaimable:") && text.contains("Total:"),
        "{text}"
    );

    let verbose = kiln_ok(&f.root, &["du", "--verbose"]);
    assert!(verbose.contains("Dockerfile#[old 1/1]"), "{verbose}");
    assert!(
        verbose.contains("Shared:\t\ttrue"),
        "base has children:\n{verbose}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&kiln_ok(&f.root, &["du", "--format", "json"])).unwrap();
    let rows = json.as_array().unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["Type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains("snapshot") && kinds.contains("blob"),
        "{json}"
    );
    let junk = rows.iter().find(|r| r["ID"] == f.junk.as_str()).unwrap();
    assert!(junk["Size"].as_u64().unwrap() >= 8000);
    assert!(kiln(&f.root, &["du", "--format", "yaml"]).status.code() == Some(1));
}

#[test]
fn prune_keeps_the_latest_build_and_all_removes_it() {
    let Some(f) = fixture() else { return };
    // Without --force and without a terminal nothing happens.
    kiln_ok(&f.root, &["prune"]);
    assert!(f.store.snapshot(&f.junk).unwrap().is_some());

    let young = kiln_ok(&f.root, &["prune", "-f", "--filter", "until=96h"]);
    assert!(young.contains("Total:\t0B"), "{young}");
    assert!(f.store.snapshot(&f.junk).unwrap().is_some());

    let text = kiln_ok(&f.root, &["prune", "--force"]);
    assert!(text.lines().any(|l| l.starts_with(&f.junk)), "{text}");
    assert!(
        !text.contains(&f.chain[0]) && !text.contains(&f.chain[1]),
        "{text}"
    );
    assert!(text.lines().last().unwrap().starts_with("Total:"), "{text}");
    assert!(f.store.snapshot(&f.junk).unwrap().is_none());
    assert!(!f.store.snapshot_dir(&f.junk).unwrap().exists());
    let keys: Vec<_> = f
        .store
        .cache_records()
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        keys,
        ["k-top"],
        "the removed snapshot's record went with it"
    );
    for id in &f.chain {
        assert!(
            f.store.snapshot(id).unwrap().is_some(),
            "{id} of the build root removed"
        );
    }

    let all = kiln_ok(&f.root, &["prune", "-a", "-f"]);
    assert!(
        all.contains(&f.chain[0]) && all.contains(&f.chain[1]),
        "{all}"
    );
    assert!(f.store.list_snapshots().unwrap().is_empty());
    assert!(f.store.cache_records().unwrap().is_empty());
    for blob in &f.image_blobs {
        assert!(f.store.has_blob(blob), "image blob {blob} removed");
    }
    // The image still reads back whole.
    assert!(kiln_ok(&f.root, &["images"]).contains("app"));
}

#[test]
fn size_flags_and_bad_input() {
    let Some(f) = fixture() else { return };
    // 1 MiB of cache is allowed: nothing needs to go.
    let kept = kiln_ok(&f.root, &["prune", "-f", "--keep-storage", "1MB"]);
    assert!(kept.contains("Total:\t0B"), "{kept}");
    let out = kiln(&f.root, &["prune", "-f", "--max-used-space", "lots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lots"));
    let out = kiln(&f.root, &["prune", "-f", "--filter", "label=x"]);
    assert_eq!(out.status.code(), Some(1));
    // A tiny limit removes the unprotected snapshot only.
    let text = kiln_ok(&f.root, &["prune", "-f", "--max-used-space", "1"]);
    assert!(text.contains(&f.junk), "{text}");
    assert!(f.store.snapshot(&f.chain[1]).unwrap().is_some());
}
