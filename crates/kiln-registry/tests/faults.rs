//! The client against a fault-injecting proxy in front of a real registry: it recovers
//! from transient faults, fails clearly on persistent ones, and never writes a wrong blob.

mod support;

use std::time::{Duration, Instant};

use kiln_registry::testutil::{FaultProxy, TestRegistry};
use kiln_registry::{Client, ClientOptions, Platform, PushedBlob, RegistryError};
use support::{blob_file, client, pseudo_random, push_image};

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

/// A registry holding one image, a proxy in front of it and a scratch dir.
fn setup() -> (
    TestRegistry,
    FaultProxy,
    support::TestImage,
    tempfile::TempDir,
) {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let img = push_image(
        &client(),
        &reg.reference("app:1"),
        &amd64(),
        &[pseudo_random(5000, 1)],
        work.path(),
    );
    let proxy = FaultProxy::start(reg.host());
    (reg, proxy, img, work)
}

#[test]
fn dropped_connections_are_retried() {
    let (_reg, proxy, img, work) = setup();
    let c = client();
    proxy.drop_connections(2);
    let pulled = c.pull(&proxy.reference("app:1"), &amd64()).unwrap();
    assert_eq!(pulled.manifest.digest, img.manifest_digest);

    proxy.drop_connections(2);
    let dest = work.path().join("layer");
    c.fetch_blob(&proxy.reference("app"), &img.layers[0], &dest)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), pseudo_random(5000, 1));
}

fn count(proxy: &FaultProxy, prefix: &str) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with(prefix))
        .count()
}

#[test]
fn uploads_restart_after_a_dropped_connection() {
    let (_reg, proxy, _img, work) = setup();
    let app = proxy.reference("app");
    let c = Client::new(ClientOptions {
        chunk_size: 1000,
        ..support::options()
    })
    .unwrap();
    // The final PUT of a monolithic upload is lost: a new session uploads again.
    proxy.only_requests_containing("PUT /v2/app/blobs/uploads/");
    proxy.drop_connections(1);
    let (d, path) = blob_file(work.path(), "mono", &pseudo_random(300, 2));
    assert_eq!(
        c.push_blob(&app, &d, &path, &[]).unwrap(),
        PushedBlob::Uploaded
    );
    assert!(c.blob_exists(&app, &d.digest).unwrap());
    assert_eq!(
        count(&proxy, "POST /v2/app/blobs/uploads/"),
        2,
        "{:?}",
        proxy.requests()
    );

    // A chunk is lost half way through a chunked upload.
    proxy.only_requests_containing("PATCH /v2/app/blobs/uploads/");
    proxy.drop_connections(1);
    let before = count(&proxy, "PATCH");
    let (d, path) = blob_file(work.path(), "chunked", &pseudo_random(2500, 3));
    assert_eq!(
        c.push_blob(&app, &d, &path, &[]).unwrap(),
        PushedBlob::Uploaded
    );
    // One lost PATCH, then three chunks of a fresh session.
    assert_eq!(count(&proxy, "PATCH") - before, 4, "{:?}", proxy.requests());
    let back = work.path().join("back");
    c.fetch_blob(&app, &d, &back).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), pseudo_random(2500, 3));

    // The start of an upload is retried like any request.
    proxy.only_requests_containing("POST /v2/app/blobs/uploads/");
    proxy.drop_connections(2);
    let (d, path) = blob_file(work.path(), "post", &pseudo_random(10, 4));
    assert_eq!(
        c.push_blob(&app, &d, &path, &[]).unwrap(),
        PushedBlob::Uploaded
    );
}

#[test]
fn stalled_transfers_time_out_and_are_retried() {
    let (_reg, proxy, img, work) = setup();
    let c = Client::new(ClientOptions {
        read_timeout: Duration::from_millis(300),
        ..support::options()
    })
    .unwrap();
    proxy.only_requests_containing("GET /v2/app/blobs/");
    proxy.stall_requests(1);
    let dest = work.path().join("layer");
    let start = Instant::now();
    c.fetch_blob(&proxy.reference("app"), &img.layers[0], &dest)
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(std::fs::read(&dest).unwrap(), pseudo_random(5000, 1));
    assert_eq!(
        count(&proxy, "GET /v2/app/blobs/"),
        2,
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (_reg, proxy, img, _work) = setup();
    let c = client();
    proxy.fail_requests(2, 500, None);
    assert_eq!(
        c.pull(&proxy.reference("app:1"), &amd64())
            .unwrap()
            .manifest
            .digest,
        img.manifest_digest
    );

    // More failures than retries: the error names registry, repository, status and message.
    let few = Client::new(ClientOptions {
        max_retries: 2,
        ..support::options()
    })
    .unwrap();
    proxy.fail_requests(3, 503, None);
    let err = few.get_manifest(&proxy.reference("app:1")).unwrap_err();
    let text = err.to_string();
    assert!(err.is_transient(), "{text}");
    assert!(
        text.contains(proxy.host())
            && text.contains("/app")
            && text.contains("503")
            && text.contains("injected fault"),
        "{text}"
    );
    let manifest_requests = proxy
        .requests()
        .iter()
        .filter(|r| r.contains("/manifests/"))
        .count();
    assert_eq!(manifest_requests, 1 + 2 + 3, "{:?}", proxy.requests());
}

#[test]
fn a_failing_blob_transfer_is_retried_only_as_often_as_configured() {
    let (_reg, proxy, img, work) = setup();
    let few = Client::new(ClientOptions {
        max_retries: 2,
        ..support::options()
    })
    .unwrap();
    let app = proxy.reference("app");

    // Server errors on a download: the request layer's retries, not retries of retries.
    proxy.only_requests_containing("GET /v2/app/blobs/");
    proxy.fail_requests(u32::MAX, 500, None);
    let dest = work.path().join("layer");
    let err = few.fetch_blob(&app, &img.layers[0], &dest).unwrap_err();
    assert!(
        matches!(err, RegistryError::Http { status: 500, .. }),
        "{err}"
    );
    assert_eq!(
        count(&proxy, "GET /v2/app/blobs/"),
        1 + 2,
        "{:?}",
        proxy.requests()
    );
    assert!(!dest.exists());

    // The same for the small in-memory download.
    let before = count(&proxy, "GET /v2/app/blobs/");
    let err = few
        .fetch_blob_bytes(&app, &img.layers[0], 1 << 20)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Http { status: 500, .. }),
        "{err}"
    );
    assert_eq!(count(&proxy, "GET /v2/app/blobs/") - before, 1 + 2);

    // And for starting an upload.
    proxy.only_requests_containing("POST /v2/app/blobs/uploads/");
    proxy.fail_requests(u32::MAX, 503, None);
    let (d, path) = blob_file(work.path(), "failing", &pseudo_random(10, 5));
    let err = few.push_blob(&app, &d, &path, &[]).unwrap_err();
    assert!(
        matches!(err, RegistryError::Http { status: 503, .. }),
        "{err}"
    );
    assert_eq!(
        count(&proxy, "POST /v2/app/blobs/uploads/"),
        1 + 2,
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn rate_limits_honour_retry_after() {
    let (_reg, proxy, img, _work) = setup();
    let c = client();
    proxy.fail_requests(2, 429, Some(0));
    let start = Instant::now();
    assert_eq!(
        c.pull(&proxy.reference("app:1"), &amd64())
            .unwrap()
            .manifest
            .digest,
        img.manifest_digest
    );
    assert!(start.elapsed() < Duration::from_secs(5));

    // Retry-After is capped at the configured maximum delay.
    proxy.fail_requests(1, 429, Some(3600));
    let start = Instant::now();
    c.get_manifest(&proxy.reference("app:1")).unwrap().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn client_errors_are_not_retried() {
    let (_reg, proxy, _img, _work) = setup();
    let c = client();
    proxy.fail_requests(1, 400, None);
    let err = c.get_manifest(&proxy.reference("app:1")).unwrap_err();
    assert!(
        matches!(err, RegistryError::Http { status: 400, .. }),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
}

#[test]
fn a_corrupt_blob_is_fetched_again() {
    let (_reg, proxy, img, work) = setup();
    let c = client();
    proxy.corrupt_blobs(1);
    let dest = work.path().join("layer");
    c.fetch_blob(&proxy.reference("app"), &img.layers[0], &dest)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), pseudo_random(5000, 1));
    let fetches = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/blobs/"))
        .count();
    assert_eq!(fetches, 2);

    // The config blob read into memory during pull is verified the same way.
    proxy.corrupt_blobs(1);
    c.pull(&proxy.reference("app:1"), &amd64()).unwrap();
}

#[test]
fn a_blob_that_stays_corrupt_is_an_error_and_never_lands() {
    let (_reg, proxy, img, work) = setup();
    let c = client();
    proxy.corrupt_blobs(u32::MAX);
    let dest = work.path().join("out/layer");
    let err = c
        .fetch_blob(&proxy.reference("app"), &img.layers[0], &dest)
        .unwrap_err();
    match &err {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &img.layers[0].digest);
            assert_ne!(actual, expected);
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(work.path().join("out")).unwrap().count(),
        0,
        "temp files left"
    );
    let fetches = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/blobs/"))
        .count();
    assert_eq!(fetches as u32, 1 + support::options().max_retries);

    let err = c.pull(&proxy.reference("app:1"), &amd64()).unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");

    // An existing file at dest is left alone.
    std::fs::write(&dest, b"previous").unwrap();
    c.fetch_blob(&proxy.reference("app"), &img.layers[0], &dest)
        .unwrap_err();
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous");
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_off() {
    let (_reg, proxy, img, work) = setup();
    let c = client();
    let mut short = img.layers[0].clone();
    short.size -= 1;
    let dest = work.path().join("layer");
    let err = c
        .fetch_blob(&proxy.reference("app"), &short, &dest)
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert!(!dest.exists());
}

#[test]
fn unreachable_registry_is_a_clear_transport_error() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::new(ClientOptions {
        max_retries: 1,
        ..support::options()
    })
    .unwrap();
    let r = kiln_registry::Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
    let err = c.get_manifest(&r).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Transport { .. }), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}/app")) && text.contains("manifest 1"),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    // Registry-wide requests name just the registry.
    let text = c
        .ping(&format!("127.0.0.1:{port}"))
        .unwrap_err()
        .to_string();
    assert!(text.starts_with(&format!("127.0.0.1:{port}: ")), "{text}");
}
