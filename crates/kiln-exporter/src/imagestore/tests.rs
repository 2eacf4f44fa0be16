use std::fs;
use std::io::Read;
use std::path::Path;

use kiln_store::{Digest, Store};

use super::*;
use crate::image::{ImageOptions, build_image};
use crate::layer::{LayerOptions, LayerSource, write_layer};
use crate::output::{write_docker_archive, write_oci_archive, write_oci_layout};
use crate::reader::default_platform;
use crate::reference::ImageName;
use crate::timestamp::Timestamp;

/// A one-layer image whose single file holds `content`; blobs go to `work/blobs`.
fn image(work: &Path, content: &str) -> BuiltImage {
    let tree = work.join(format!("tree-{content}"));
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("file"), content).unwrap();
    let layer = write_layer(
        LayerSource::Tree(&tree),
        &LayerOptions::default(),
        &work.join("blobs"),
    )
    .unwrap();
    let mut config = ImageConfig::for_platform(&default_platform());
    config.created = Some(Timestamp::from_unix(1_700_000_000));
    config.config.cmd = vec![content.to_owned()];
    build_image(&config, &[layer], &ImageOptions::default()).unwrap()
}

/// A layerless image; different `label`s give different IDs.
fn empty_image(label: usize) -> BuiltImage {
    let mut config = ImageConfig::for_platform(&default_platform());
    config.config.labels.insert("n".into(), label.to_string());
    build_image(&config, &[], &ImageOptions::default()).unwrap()
}

fn names(store: &Store) -> Vec<String> {
    store
        .list_images()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect()
}

#[test]
fn save_then_open_by_name_id_and_digest() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let img = image(work.path(), "one");
    let manifest = save(&store, &img, &["busybox".into(), "me/app:v1".into()]).unwrap();
    assert_eq!(
        names(&store),
        ["docker.io/library/busybox:latest", "docker.io/me/app:v1"]
    );
    let id = to_store_digest(img.config_blob.descriptor.digest()).unwrap();
    for reference in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &id.hex()[..12],
        &id.to_string(),
        &manifest.to_string(),
        &format!("me/app@{manifest}"),
    ] {
        let found = open(&store, reference).unwrap();
        assert_eq!(found.manifest_digest, manifest, "{reference}");
        assert_eq!(found.config_digest, id);
        assert_eq!(found.names.len(), 2);
    }
    let stored = open(&store, "busybox").unwrap();
    assert_eq!(stored.config, img.config);
    let layer = &stored.layers[0];
    assert_eq!(
        layer.path,
        store.blob_path(&to_store_digest(&layer.digest).unwrap())
    );
    assert_eq!(
        fs::read(&layer.path).unwrap(),
        fs::read(&img.layers[0].path).unwrap()
    );
    let rebuilt = stored.to_built_image();
    assert_eq!(rebuilt.manifest_blob, img.manifest_blob);
    assert_eq!(rebuilt.config_blob, img.config_blob);
    assert!(matches!(
        open(&store, "nothere"),
        Err(ImageStoreError::NotFound(_))
    ));
    assert!(matches!(
        open(&store, &format!("other@{manifest}")),
        Err(ImageStoreError::NotFound(_))
    ));
}

#[test]
fn nothing_is_tagged_when_a_blob_or_name_is_wrong() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let img = image(work.path(), "two");
    assert!(matches!(
        save(&store, &img, &["ok".into(), "Bad Name".into()]),
        Err(ImageStoreError::InvalidName { .. })
    ));
    fs::write(&img.layers[0].path, b"tampered").unwrap();
    let err = save(&store, &img, &["ok".into()]).unwrap_err();
    assert!(
        matches!(
            err,
            ImageStoreError::Store(kiln_store::Error::DigestMismatch { .. })
        ),
        "{err}"
    );
    let mut other = image(work.path(), "three");
    other.layers.clear();
    assert!(save(&store, &other, &["ok".into()]).is_err());
    assert!(names(&store).is_empty());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn damaged_store_blobs_are_reported() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let img = image(work.path(), "four");
    save(&store, &img, &["x".into()]).unwrap();
    let stored = open(&store, "x").unwrap();
    save(&store, &image(work.path(), "five"), &["y".into()]).unwrap();
    let healthy = open(&store, "y").unwrap();
    fs::remove_file(&stored.layers[0].path).unwrap();
    assert!(matches!(
        open(&store, "x"),
        Err(ImageStoreError::Corrupt { .. })
    ));
    // The damaged image neither hides the others nor stops ID lookups and its removal.
    let rows = list(&store).unwrap();
    let damaged = rows.iter().find(|r| r.repository == "x").unwrap();
    assert_eq!((damaged.id.as_str(), damaged.size), ("", 0));
    let id = healthy.config_digest.to_string();
    assert_eq!(
        open(&store, &id).unwrap().manifest_digest,
        healthy.manifest_digest
    );
    assert_eq!(
        remove(&store, "x", false).unwrap(),
        ["docker.io/library/x:latest"]
    );
}

#[test]
fn list_shows_short_names_and_dangling_images() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let a = image(work.path(), "a");
    save(&store, &a, &["busybox:1".into()]).unwrap();
    let dangling = save(&store, &empty_image(0), &[]).unwrap();
    let rows = list(&store).unwrap();
    assert_eq!(rows.len(), 2);
    let named = rows.iter().find(|r| r.repository == "busybox").unwrap();
    assert_eq!(named.tag, "1");
    assert_eq!(named.id, a.config_blob.descriptor.digest().to_string());
    assert_eq!(named.created_ms, 1_700_000_000_000);
    let expected_size =
        a.layers[0].size + a.config_blob.bytes.len() as u64 + a.manifest_blob.bytes.len() as u64;
    assert_eq!(named.size, expected_size);
    let none = rows.iter().find(|r| r.repository == NONE).unwrap();
    assert_eq!(
        (none.tag.as_str(), none.manifest.as_str()),
        (NONE, dangling.to_string().as_str())
    );
    // Naming a dangling image replaces its placeholder.
    save(&store, &empty_image(0), &["named".into()]).unwrap();
    assert_eq!(
        names(&store),
        [
            "docker.io/library/busybox:1",
            "docker.io/library/named:latest"
        ]
    );
    // Saving a named image again without names keeps it named, not dangling.
    save(&store, &a, &[]).unwrap();
    assert_eq!(names(&store).len(), 2);
}

#[test]
fn remove_by_name_and_by_id() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let img = image(work.path(), "rm");
    save(&store, &img, &["a".into(), "b".into()]).unwrap();
    let id = img.config_blob.descriptor.digest().to_string();
    let short = &id["sha256:".len()..][..12];
    assert!(matches!(
        remove(&store, short, false),
        Err(ImageStoreError::Conflict { count: 2, .. })
    ));
    assert_eq!(
        remove(&store, "a", false).unwrap(),
        ["docker.io/library/a:latest"]
    );
    assert_eq!(
        remove(&store, short, false).unwrap(),
        ["docker.io/library/b:latest"]
    );
    assert!(names(&store).is_empty());
    save(&store, &img, &["a".into(), "b".into()]).unwrap();
    assert_eq!(remove(&store, &id, true).unwrap().len(), 2);
    assert!(matches!(
        remove(&store, "a", false),
        Err(ImageStoreError::NotFound(_))
    ));
}

#[test]
fn id_prefix_shared_by_two_images_is_ambiguous() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let mut by_first: std::collections::HashMap<char, usize> = Default::default();
    // 17 IDs: two must share their first hex digit.
    let (first, a, b) = (0..17)
        .find_map(|i| {
            let id = empty_image(i).config_blob.descriptor.digest().to_string();
            let c = id.chars().nth("sha256:".len()).unwrap();
            by_first.insert(c, i).map(|j| (c, j, i))
        })
        .unwrap();
    save(&store, &empty_image(a), &["img-x".into()]).unwrap();
    save(&store, &empty_image(b), &["img-y".into()]).unwrap();
    assert!(matches!(
        open(&store, &first.to_string()),
        Err(ImageStoreError::Ambiguous { count: 2, .. })
    ));
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; a hostile archive is written by hand.
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        builder.append(&h, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn import_keeps_the_tar_as_the_layer() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let tar = tar_of(&[("etc/hostname", b"kiln\n")]);
    let opts = ImportOptions {
        name: Some("imported:1".into()),
        changes: vec![r#"CMD ["/bin/sh"]"#.into(), "ENV A=b".into()],
        ..Default::default()
    };
    let manifest = import_rootfs_reader(&store, tar.as_slice(), "-", &opts).unwrap();
    let img = open(&store, "imported:1").unwrap();
    assert_eq!(img.manifest_digest, manifest);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.layers[0].diff_id, crate::digest::sha256_digest(&tar));
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(&img.layers[0].path).unwrap())
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, tar);
    let host = host_platform();
    assert_eq!(img.config.architecture, host.architecture().to_string());
    assert_eq!(img.config.os, "linux");
    assert_eq!(img.config.config.cmd, ["/bin/sh"]);
    assert_eq!(img.config.config.env, ["A=b"]);
    assert_eq!(img.config.history[0].comment, "Imported from -");
    assert!(img.config.created.is_some());

    // A gzip tarball is the same layer.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let path = work.path().join("rootfs.tar.gz");
    fs::write(&path, gz.finish().unwrap()).unwrap();
    import_rootfs_tar(&store, &path, &ImportOptions::default()).unwrap();
    let rows = list(&store).unwrap();
    assert_eq!(rows.len(), 2);
    let dangling = rows.iter().find(|r| r.repository == NONE).unwrap();
    let again = open(&store, &dangling.id).unwrap();
    assert_eq!(again.layers[0].digest, img.layers[0].digest);
}

#[test]
fn import_refuses_hostile_or_broken_input() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let opts = ImportOptions {
        name: Some("x".into()),
        ..Default::default()
    };
    let hostile = tar_of(&[("../escape", b"x")]);
    let mut truncated = tar_of(&[("a", &[7u8; 4000])]);
    truncated.truncate(1500);
    for input in [
        hostile,
        truncated,
        Vec::new(),
        b"not a tar at all".repeat(64),
    ] {
        let err = import_rootfs_reader(&store, input.as_slice(), "-", &opts).unwrap_err();
        assert!(matches!(err, ImageStoreError::InvalidArchive(_)), "{err}");
    }
    let bad_change = ImportOptions {
        changes: vec!["RUN rm -rf /".into()],
        ..Default::default()
    };
    let ok_tar = tar_of(&[("a", b"a")]);
    assert!(matches!(
        import_rootfs_reader(&store, ok_tar.as_slice(), "-", &bad_change),
        Err(ImageStoreError::InvalidChange { .. })
    ));
    assert!(names(&store).is_empty());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn load_docker_and_oci_archives() {
    let work = tempfile::tempdir().unwrap();
    let img = image(work.path(), "load");
    let name = ImageName::parse("busybox:1").unwrap();
    let docker = work.path().join("docker.tar");
    write_docker_archive(&img, &docker, std::slice::from_ref(&name)).unwrap();
    let oci = work.path().join("oci.tar");
    write_oci_archive(&img, &oci, std::slice::from_ref(&name)).unwrap();
    for archive in [&docker, &oci] {
        let store = Store::open(
            work.path()
                .join(format!("store-{}", archive.display().to_string().len())),
        )
        .unwrap();
        let loaded = load_archive(&store, archive).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].names, ["docker.io/library/busybox:1"]);
        assert_eq!(
            loaded[0].id.to_string(),
            img.config_blob.descriptor.digest().to_string()
        );
        let stored = open(&store, "busybox:1").unwrap();
        assert_eq!(stored.layers[0].diff_id, img.layers[0].diff_id);
    }
}

#[test]
fn load_every_image_of_a_layout_and_keep_bare_tags_dangling() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let one = image(work.path(), "l1");
    let two = image(work.path(), "l2");
    write_oci_layout(&one, &layout, &[ImageName::parse("one:1").unwrap()]).unwrap();
    write_oci_layout(&two, &layout, &[ImageName::parse("two:2").unwrap()]).unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let loaded = load_archive(&store, &layout).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(
        names(&store),
        ["docker.io/library/one:1", "docker.io/library/two:2"]
    );
    // An index entry named only by a tag (what `skopeo copy ... oci:DIR:tag` writes).
    let bare = work.path().join("bare");
    fs::create_dir_all(bare.join("blobs/sha256")).unwrap();
    for blob in [&one.config_blob, &one.manifest_blob] {
        let hex = &blob.descriptor.digest().to_string()["sha256:".len()..];
        fs::write(bare.join("blobs/sha256").join(hex), &blob.bytes).unwrap();
    }
    let layer_hex = &one.layers[0].digest.to_string()["sha256:".len()..];
    fs::copy(
        &one.layers[0].path,
        bare.join("blobs/sha256").join(layer_hex),
    )
    .unwrap();
    fs::write(
        bare.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
        one.manifest_blob.descriptor.digest(),
        one.manifest_blob.bytes.len()
    );
    fs::write(bare.join("index.json"), index).unwrap();
    let fresh = Store::open(work.path().join("store2")).unwrap();
    let loaded = load_archive(&fresh, &bare).unwrap();
    assert!(loaded[0].names.is_empty());
    let manifest = Digest::parse(one.manifest_blob.descriptor.digest().as_ref()).unwrap();
    assert_eq!(names(&fresh), [dangling_name(&manifest)]);
}
