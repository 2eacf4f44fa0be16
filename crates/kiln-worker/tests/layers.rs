//! Image layer tars unpacked into snapshots that stack as overlay lowerdirs, and chains
//! longer than the mount option limit.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::Arc;

use kiln_store::Store;
use kiln_worker::{Error, LowerMode, Snapshotter, unpack_layer};

enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// Builds a tar from entries, writing names raw (so `..` can be tested).
fn layer(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data): (&str, &[u8]) = match e {
            Entry::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"")
            }
            Entry::File(n, c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (n, c.as_bytes())
            }
            Entry::Symlink(n, t) | Entry::Hardlink(n, t) => {
                h.set_entry_type(if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                (n, b"")
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_stack() {
    if !common::is_root("whiteouts_become_overlay_whiteouts_and_stack") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    fs::create_dir(&one).unwrap();
    let stats = unpack_layer(
        &layer(&[
            Entry::Dir("etc/"),
            Entry::File("etc/a", "a"),
            Entry::File("etc/b", "b"),
            Entry::Dir("dir/"),
            Entry::File("dir/old", "old"),
            Entry::Hardlink("etc/b-link", "etc/b"),
        ])[..],
        &one,
    )
    .unwrap();
    assert_eq!((stats.entries, stats.bytes), (6, 5));
    assert_eq!(
        fs::metadata(one.join("etc/b-link")).unwrap().ino(),
        fs::metadata(one.join("etc/b")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(one.join("etc/a")).unwrap().mtime(),
        1_700_000_000
    );

    let two = dir.path().join("two");
    fs::create_dir(&two).unwrap();
    let stats = unpack_layer(
        &layer(&[
            Entry::File("etc/.wh.a", ""),
            Entry::File("dir/.wh..wh..opq", ""),
            Entry::File("dir/new", "new"),
            Entry::File("deep/.wh.gone", ""),
        ])[..],
        &two,
    )
    .unwrap();
    assert_eq!(stats.whiteouts, 3);
    let wh = fs::symlink_metadata(two.join("etc/a")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(!two.join("etc/.wh.a").exists());
    assert!(
        fs::symlink_metadata(two.join("deep/gone"))
            .unwrap()
            .file_type()
            .is_char_device()
    );

    let flat = dir.path().join("flat");
    fs::create_dir(&flat).unwrap();
    kiln_worker::materialize(&[&one, &two], &flat).unwrap();
    assert!(!flat.join("etc/a").exists() && flat.join("etc/b").exists());
    assert!(!flat.join("dir/old").exists() && flat.join("dir/new").exists());
    assert!(!flat.join("deep/gone").exists());
}

#[test]
fn escaping_entries_are_refused_or_contained() {
    if !common::is_root("escaping_entries_are_refused_or_contained") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let dest = dir.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let err = unpack_layer(&layer(&[Entry::File("../outside/evil", "x")])[..], &dest).unwrap_err();
    assert!(matches!(err, Error::PathEscapes(_)), "{err}");
    assert!(!outside.join("evil").exists());

    // An absolute symlink followed while extracting resolves inside dest, not on the host.
    let dest2 = dir.path().join("dest2");
    fs::create_dir(&dest2).unwrap();
    let abs = outside.to_str().unwrap().to_owned();
    unpack_layer(
        &layer(&[
            Entry::Symlink("link", &abs),
            Entry::File("link/evil", "x"),
            Entry::Symlink("up", "../../.."),
            Entry::File("up/evil2", "y"),
        ])[..],
        &dest2,
    )
    .unwrap();
    assert!(
        !outside.join("evil").exists(),
        "wrote through an absolute symlink"
    );
    assert!(
        dest2
            .join(abs.trim_start_matches('/'))
            .join("evil")
            .is_file()
    );
    assert!(dest2.join("evil2").is_file());
    assert!(!dir.path().join("evil2").exists());
    // Hard links may not point outside either.
    let dest3 = dir.path().join("dest3");
    fs::create_dir(&dest3).unwrap();
    assert!(
        unpack_layer(
            &layer(&[Entry::Hardlink("h", "../../etc/passwd")])[..],
            &dest3
        )
        .is_err()
    );
}

#[test]
fn layers_mount_as_lowerdirs_including_long_chains() {
    if !common::can_run_containers("layers_mount_as_lowerdirs_including_long_chains") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            dir.path()
                .join("a-rather-long-store-directory-name-to-fill-options"),
        )
        .unwrap(),
    );
    let snap = Snapshotter::new(Arc::clone(&store));
    let base_tar = gzip(&layer(&[
        Entry::Dir("etc/"),
        Entry::File("etc/a", "a"),
        Entry::File("etc/b", "b"),
        Entry::Dir("dir/"),
        Entry::File("dir/old", "o"),
    ]));
    let (base, stats) = snap.apply_layer(None, &base_tar[..], "layer base").unwrap();
    assert_eq!(stats.entries, 5);
    let (top, _) = snap
        .apply_layer(
            Some(&base.id),
            &layer(&[
                Entry::File("etc/.wh.a", ""),
                Entry::File("dir/.wh..wh..opq", ""),
                Entry::File("dir/new", "n"),
            ])[..],
            "layer 2",
        )
        .unwrap();
    let active = snap.prepare(Some(&top.id)).unwrap();
    assert_eq!(active.lower_mode, LowerMode::Absolute);
    let root = active.rootfs();
    assert!(!root.join("etc/a").exists() && root.join("etc/b").exists());
    assert!(!root.join("dir/old").exists() && root.join("dir/new").exists());
    snap.abort(active).unwrap();

    // Stack more layers until absolute, then relative, paths no longer fit.
    let mut parent = top.id.clone();
    let mut seen = Vec::new();
    for i in 0..200 {
        let name = format!("f{i}");
        let (rec, _) = snap
            .apply_layer(
                Some(&parent),
                &layer(&[Entry::File(&name, &name)])[..],
                "many",
            )
            .unwrap();
        parent = rec.id;
        if i == 20 || i == 120 || i == 199 {
            let active = snap.prepare(Some(&parent)).unwrap();
            assert!(active.rootfs().join("f0").exists() && active.rootfs().join(&name).exists());
            assert!(
                active.rootfs().join("etc/b").exists() && !active.rootfs().join("etc/a").exists()
            );
            fs::write(active.rootfs().join("new-file"), "x").unwrap();
            seen.push(active.lower_mode);
            let committed = snap.commit(active, "write").unwrap();
            assert!(
                snap.fs_dir(&committed.id)
                    .unwrap()
                    .join("new-file")
                    .exists()
            );
            assert!(
                !snap.fs_dir(&committed.id).unwrap().join("f0").exists(),
                "upper holds only changes"
            );
        }
    }
    assert_eq!(
        seen,
        [
            LowerMode::Absolute,
            LowerMode::Relative,
            LowerMode::Flattened
        ]
    );
    assert!(kiln_worker::mounts_under(store.root()).unwrap().is_empty());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn prepare_on_nothing_commits_a_base_snapshot() {
    if !common::can_run_containers("prepare_on_nothing_commits_a_base_snapshot") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let snap = Snapshotter::new(Arc::clone(&store));
    let active = snap.prepare(None).unwrap();
    assert!(kiln_worker::is_mount_point(active.rootfs()).unwrap());
    assert_eq!(fs::read_dir(active.rootfs()).unwrap().count(), 0);
    fs::create_dir(active.rootfs().join("etc")).unwrap();
    fs::write(active.rootfs().join("etc/hello"), "hi").unwrap();
    let rec = snap.commit(active, "scratch").unwrap();
    assert_eq!((rec.parent.as_deref(), rec.size), (None, 2));
    assert_eq!(
        fs::read_to_string(snap.fs_dir(&rec.id).unwrap().join("etc/hello")).unwrap(),
        "hi"
    );
    assert!(snap.remove(&rec.id).unwrap());
    assert!(!store.snapshot_dir(&rec.id).unwrap().exists());
    assert!(kiln_worker::mounts_under(store.root()).unwrap().is_empty());
}
