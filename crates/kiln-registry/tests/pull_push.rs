//! Pull and push against a real docker-registry.

mod support;

use kiln_registry::media::{self, sha256_digest};
use kiln_registry::testutil::{FaultProxy, TestRegistry};
use kiln_registry::{Client, ClientOptions, Platform, PushedBlob, RegistryError};
use support::{blob_file, client, pseudo_random, push_image, push_index};

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

#[test]
fn pull_by_tag_and_by_digest() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let r = reg.reference("app:1");
    let img = push_image(
        &c,
        &r,
        &amd64(),
        &[pseudo_random(3000, 1), pseudo_random(10, 2)],
        work.path(),
    );

    let pulled = c.pull(&r, &amd64()).unwrap();
    assert_eq!(
        pulled.reference.digest.as_deref(),
        Some(img.manifest_digest.as_str())
    );
    assert_eq!(pulled.reference.tag.as_deref(), Some("1"));
    assert_eq!(pulled.index_digest, None);
    assert_eq!(pulled.manifest.bytes, img.manifest_bytes);
    assert_eq!(pulled.manifest.media_type, media::OCI_MANIFEST);
    assert_eq!(pulled.config, img.config);
    assert_eq!(sha256_digest(&pulled.config_bytes), img.config.digest);
    assert_eq!(pulled.layers, img.layers);

    let by_digest = c
        .pull(
            &reg.reference(&format!("app@{}", img.manifest_digest)),
            &amd64(),
        )
        .unwrap();
    assert_eq!(by_digest.manifest.digest, img.manifest_digest);

    // Layers are fetched separately, verified, into place.
    let dest = work.path().join("out/layer0");
    c.fetch_blob(&r, &pulled.layers[0], &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), pseudo_random(3000, 1));
    assert_eq!(
        std::fs::read_dir(work.path().join("out")).unwrap().count(),
        1,
        "no temp files"
    );
}

#[test]
fn missing_manifests_and_repositories() {
    let reg = TestRegistry::start();
    let c = client();
    assert!(
        c.get_manifest(&reg.reference("nothing:here"))
            .unwrap()
            .is_none()
    );
    let err = c
        .pull(&reg.reference("nothing:here"), &amd64())
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nothing:here"), "{err}");
    assert_eq!(
        c.list_tags(&reg.reference("nothing")).unwrap(),
        Vec::<String>::new()
    );
    let missing = format!("sha256:{}", "0".repeat(64));
    assert!(!c.blob_exists(&reg.reference("nothing"), &missing).unwrap());
    let err = c
        .fetch_blob(
            &reg.reference("nothing"),
            &kiln_registry::Descriptor::new(media::OCI_LAYER, &missing, 1),
            &tempfile::tempdir().unwrap().path().join("x"),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("404") && text.contains("BLOB_UNKNOWN") && text.contains("nothing"),
        "{text}"
    );
}

#[test]
fn manifest_fetched_by_digest_is_verified() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let r = reg.reference("verify:1");
    let img = push_image(&c, &r, &amd64(), &[pseudo_random(10, 3)], work.path());
    let m = c
        .get_manifest(&r.with_digest(&img.manifest_digest))
        .unwrap()
        .unwrap();
    assert_eq!(m.digest, img.manifest_digest);
    // Pushing by digest that does not match the bytes is refused before sending.
    let wrong = format!("sha256:{}", "1".repeat(64));
    let err = c
        .push_manifest(
            &reg.reference(&format!("verify@{wrong}")),
            media::OCI_MANIFEST,
            &img.manifest_bytes,
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    // Pushing by the right digest works and pulls back.
    let by_digest = reg.reference(&format!("verify@{}", img.manifest_digest));
    assert_eq!(
        c.push_manifest(&by_digest, media::OCI_MANIFEST, &img.manifest_bytes)
            .unwrap(),
        img.manifest_digest
    );
}

#[test]
fn index_picks_the_requested_platform() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let arm64 = Platform::parse("linux/arm64/v8").unwrap();
    let amd = push_image(
        &c,
        &reg.reference("multi:amd64"),
        &amd64(),
        &[pseudo_random(100, 4)],
        work.path(),
    );
    let arm = push_image(
        &c,
        &reg.reference("multi:arm64"),
        &arm64,
        &[pseudo_random(100, 5)],
        work.path(),
    );
    let r = reg.reference("multi:latest");
    let index_digest = push_index(&c, &r, &[(&amd, amd64()), (&arm, arm64.clone())]);

    let top = c.get_manifest(&r).unwrap().unwrap();
    assert!(top.is_index());
    assert_eq!(top.digest, index_digest);

    let pulled = c
        .pull(&r, &Platform::parse("linux/arm64").unwrap())
        .unwrap();
    assert_eq!(pulled.manifest.digest, arm.manifest_digest);
    assert_eq!(pulled.index_digest.as_deref(), Some(index_digest.as_str()));
    assert_eq!(
        pulled.reference.digest.as_deref(),
        Some(arm.manifest_digest.as_str())
    );
    assert_eq!(pulled.layers, arm.layers);
    let pulled = c.pull(&r, &amd64()).unwrap();
    assert_eq!(pulled.manifest.digest, amd.manifest_digest);

    let err = c
        .pull(&r, &Platform::parse("linux/s390x").unwrap())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::NoMatchingPlatform { .. }),
        "{text}"
    );
    assert!(
        text.contains("linux/s390x")
            && text.contains("linux/amd64")
            && text.contains("linux/arm64/v8"),
        "{text}"
    );
}

#[test]
fn push_blob_skips_mounts_and_uploads() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    // A tiny chunk size makes the larger blob go up in several PATCHes.
    let c = Client::new(ClientOptions {
        chunk_size: 1000,
        ..support::options()
    })
    .unwrap();
    let src = reg.reference("src");
    let dst = reg.reference("dst");

    let (small, small_path) = blob_file(work.path(), "small", &pseudo_random(1000, 6));
    assert_eq!(
        c.push_blob(&src, &small, &small_path, &[]).unwrap(),
        PushedBlob::Uploaded
    );
    assert!(c.blob_exists(&src, &small.digest).unwrap());
    assert_eq!(
        c.push_blob(&src, &small, &small_path, &[]).unwrap(),
        PushedBlob::Existed
    );

    let (large, large_path) = blob_file(work.path(), "large", &pseudo_random(4321, 7));
    assert_eq!(
        c.push_blob(&src, &large, &large_path, &[]).unwrap(),
        PushedBlob::Uploaded
    );
    let back = work.path().join("large-back");
    c.fetch_blob(&src, &large, &back).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), pseudo_random(4321, 7));

    // Mounting: sources on other registries and the target itself are skipped.
    let elsewhere = kiln_registry::Reference::parse("other.example/src").unwrap();
    assert_eq!(
        c.push_blob(
            &dst,
            &large,
            &large_path,
            &[elsewhere, dst.clone(), src.clone()]
        )
        .unwrap(),
        PushedBlob::Mounted
    );
    assert!(c.blob_exists(&dst, &large.digest).unwrap());

    // A mount source without the blob falls back to an upload.
    let (fresh, fresh_path) = blob_file(work.path(), "fresh", &pseudo_random(50, 8));
    assert_eq!(
        c.push_blob(&dst, &fresh, &fresh_path, std::slice::from_ref(&src))
            .unwrap(),
        PushedBlob::Uploaded
    );
    assert!(c.blob_exists(&dst, &fresh.digest).unwrap());
    assert!(!c.blob_exists(&src, &fresh.digest).unwrap());
}

#[test]
fn push_blob_refuses_a_local_file_of_the_wrong_size() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let (mut d, path) = blob_file(work.path(), "b", b"hello");
    d.size = 6;
    let err = c
        .push_blob(&reg.reference("x"), &d, &path, &[])
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
}

#[test]
fn wrong_digest_upload_is_rejected_by_the_registry() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let (mut d, path) = blob_file(work.path(), "b", b"hello");
    d.digest = sha256_digest(b"jello");
    let err = c
        .push_blob(&reg.reference("x"), &d, &path, &[])
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("400") && text.contains("DIGEST_INVALID"),
        "{text}"
    );
    assert!(!c.blob_exists(&reg.reference("x"), &d.digest).unwrap());
}

#[test]
fn list_tags_follows_pagination() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let img = push_image(
        &c,
        &reg.reference("tags:a"),
        &amd64(),
        &[pseudo_random(10, 9)],
        work.path(),
    );
    let mut expected = vec!["a".to_string()];
    for t in ["b", "c", "d", "e"] {
        c.push_manifest(
            &reg.reference(&format!("tags:{t}")),
            media::OCI_MANIFEST,
            &img.manifest_bytes,
        )
        .unwrap();
        expected.push(t.to_string());
    }
    // Without `n` the registry lists tags in no particular order.
    let mut all = c.list_tags(&reg.reference("tags")).unwrap();
    all.sort();
    assert_eq!(all, expected);

    // docker-registry 2.8 ignores `n` for tags, so a proxy paginates its answer.
    let pager = FaultProxy::start(reg.host());
    pager.paginate_tags(true);
    let tags = pager.reference("tags");
    assert_eq!(c.list_tags_paged(&tags, Some(2)).unwrap(), expected);
    let pages = pager
        .requests()
        .iter()
        .filter(|r| r.contains("/tags/list"))
        .count();
    assert_eq!(pages, 3, "{:?}", pager.requests());
    assert_eq!(c.list_tags_paged(&tags, Some(1)).unwrap(), expected);
    assert_eq!(c.list_tags_paged(&tags, Some(100)).unwrap(), expected);
    assert!(
        c.list_tags_paged(&pager.reference("none"), Some(2))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn docker_schema2_images_and_manifest_lists() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let r = reg.reference("docker:v2");
    let (layer, layer_path) = blob_file(work.path(), "layer", &pseudo_random(200, 10));
    let layer = kiln_registry::Descriptor::new(media::DOCKER_LAYER_GZIP, &layer.digest, layer.size);
    c.push_blob(&r, &layer, &layer_path, &[]).unwrap();
    let config_bytes = br#"{"architecture":"arm","variant":"v7","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (config, config_path) = blob_file(work.path(), "config", config_bytes);
    let config = kiln_registry::Descriptor::new(media::DOCKER_CONFIG, &config.digest, config.size);
    c.push_blob(&r, &config, &config_path, &[]).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::DOCKER_MANIFEST,
        "config": config,
        "layers": [layer],
    }))
    .unwrap();
    let manifest_digest = c
        .push_manifest(&r, media::DOCKER_MANIFEST, &manifest)
        .unwrap();
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::DOCKER_MANIFEST_LIST,
        "manifests": [{
            "mediaType": media::DOCKER_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"os": "linux", "architecture": "arm"}
        }],
    }))
    .unwrap();
    let list_ref = reg.reference("docker:list");
    let list_digest = c
        .push_manifest(&list_ref, media::DOCKER_MANIFEST_LIST, &list)
        .unwrap();

    let top = c.get_manifest(&list_ref).unwrap().unwrap();
    assert_eq!(top.media_type, media::DOCKER_MANIFEST_LIST);
    // An entry without variant is arm/v7, the usual arm.
    let pulled = c
        .pull(&list_ref, &Platform::parse("linux/arm/v7").unwrap())
        .unwrap();
    assert_eq!(pulled.index_digest.as_deref(), Some(list_digest.as_str()));
    assert_eq!(pulled.manifest.media_type, media::DOCKER_MANIFEST);
    assert_eq!(pulled.manifest.digest, manifest_digest);
    assert_eq!(pulled.config.media_type, media::DOCKER_CONFIG);
    assert_eq!(pulled.config_bytes, config_bytes);
    assert_eq!(pulled.layers, vec![layer]);
    let err = c
        .pull(&list_ref, &Platform::parse("linux/arm/v6").unwrap())
        .unwrap_err();
    assert!(
        err.to_string().contains("available platforms: linux/arm"),
        "{err}"
    );
}
