//! Authentication against real registries: htpasswd basic auth, credentials from
//! config.json and credential helpers, bearer tokens, login and logout.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kiln_registry::auth::{self, Stored};
use kiln_registry::media;
use kiln_registry::testutil::{TestRegistry, TokenProxy};
use kiln_registry::{AuthConfig, ClientOptions, Credentials, Platform, RegistryError};
use support::{client, client_with_auth, pseudo_random, push_image};

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: password.into(),
    }
}

fn write_config(dir: &Path, json: &str) -> AuthConfig {
    std::fs::write(dir.join("config.json"), json).unwrap();
    AuthConfig::from_dir(dir).unwrap()
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn basic_auth_registry() {
    let reg = TestRegistry::start_with_htpasswd("alice", "s3cret");
    let work = tempfile::tempdir().unwrap();
    let r = reg.reference("private:1");

    let err = client().get_manifest(&r).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains("unauthorized") && text.contains(reg.host()) && text.contains("kiln login"),
        "{text}"
    );

    let wrong = client_with_auth(
        AuthConfig::anonymous().with_credentials(reg.host(), basic("alice", "nope")),
    );
    assert!(matches!(
        wrong.get_manifest(&r).unwrap_err(),
        RegistryError::Unauthorized { .. }
    ));

    // Credentials from config.json, keyed by host or by URL.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        &format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{}"}}}}}}"#,
            reg.host(),
            base64("alice:s3cret")
        ),
    );
    let c = client_with_auth(cfg);
    let img = push_image(&c, &r, &amd64(), &[pseudo_random(100, 1)], work.path());
    assert_eq!(
        c.pull(&r, &amd64()).unwrap().manifest.digest,
        img.manifest_digest
    );
    assert_eq!(c.list_tags(&reg.reference("private")).unwrap(), vec!["1"]);
}

#[test]
fn credential_helper_supplies_credentials() {
    let reg = TestRegistry::start_with_htpasswd("bob", "hunter2");
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls");
    let script = format!(
        "#!/bin/sh\nread server\necho \"$1 $server\" >> {calls}\nif [ \"$1\" = get ] && [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"hunter2\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
        calls = calls.display(),
        host = reg.host()
    );
    let helper = bin.path().join("docker-credential-test");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        &format!(
            r#"{{"credHelpers": {{"{}": "test"}}, "auths": {{}}}}"#,
            reg.host()
        ),
    )
    .with_helper_path(bin.path().as_os_str());
    let c = client_with_auth(cfg.clone());
    let work = tempfile::tempdir().unwrap();
    let r = reg.reference("helped:1");
    push_image(&c, &r, &amd64(), &[pseudo_random(100, 2)], work.path());
    c.get_manifest(&r).unwrap().unwrap();
    // The helper runs once per client, not once per request.
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        format!("get {}\n", reg.host())
    );

    // A helper with nothing stored means anonymous, which this registry refuses.
    let other = write_config(cfg_dir.path(), r#"{"credsStore": "test"}"#)
        .with_helper_path(bin.path().as_os_str());
    assert_eq!(other.credentials("elsewhere.example").unwrap(), None);

    // A configured helper that is not installed is a clear error.
    let missing = write_config(
        cfg_dir.path(),
        &format!(r#"{{"credHelpers": {{"{}": "absent"}}}}"#, reg.host()),
    )
    .with_helper_path(bin.path().as_os_str());
    let err = client_with_auth(missing)
        .get_manifest(&r)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker-credential-absent") && err.contains("not installed"),
        "{err}"
    );
}

#[test]
fn bearer_tokens_are_fetched_once_and_reused() {
    let reg = TestRegistry::start();
    let proxy = TokenProxy::start(reg.host());
    let work = tempfile::tempdir().unwrap();
    let c = client();
    let r = proxy.reference("tok/app:1");

    let img = push_image(
        &c,
        &r,
        &amd64(),
        &[pseudo_random(2000, 3), pseudo_random(10, 4)],
        work.path(),
    );
    // Pushing: one 401 teaches the client the realm; one pull,push token covers every request.
    assert_eq!(proxy.unauthorized_answers(), 1);
    assert_eq!(proxy.token_requests(), 1);
    assert_eq!(
        proxy.issued_scopes(),
        vec![vec!["repository:tok/app:pull,push".to_string()]]
    );

    // Pulling needs a pull token, fetched once and then reused.
    for _ in 0..3 {
        let pulled = c.pull(&r, &amd64()).unwrap();
        assert_eq!(pulled.manifest.digest, img.manifest_digest);
        c.fetch_blob(&r, &pulled.layers[0], &work.path().join("l0"))
            .unwrap();
    }
    assert_eq!(proxy.token_requests(), 2);
    assert_eq!(proxy.unauthorized_answers(), 1);
    assert_eq!(
        proxy.issued_scopes()[1],
        vec!["repository:tok/app:pull".to_string()]
    );

    // Clones share the token cache.
    c.clone().list_tags(&r).unwrap();
    assert_eq!(proxy.token_requests(), 2);

    // A cross-repository mount asks for the source's pull scope too.
    let dest = proxy.reference("tok/copy:1");
    let (d, path) = support::blob_file(work.path(), "l0b", &pseudo_random(2000, 3));
    assert_eq!(
        c.push_blob(&dest, &d, &path, std::slice::from_ref(&r))
            .unwrap(),
        kiln_registry::PushedBlob::Mounted
    );
    assert!(proxy.issued_scopes().contains(&vec![
        "repository:tok/copy:pull,push".to_string(),
        "repository:tok/app:pull".to_string()
    ]));
    assert_eq!(proxy.unauthorized_answers(), 1);
}

#[test]
fn bearer_token_server_with_credentials() {
    let reg = TestRegistry::start();
    let proxy = TokenProxy::start_with_user(reg.host(), "carol", "pw");
    let work = tempfile::tempdir().unwrap();
    let r = proxy.reference("app:1");

    let err = client().get_manifest(&r).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains("bad credentials for the token server"),
        "{text}"
    );

    let c = client_with_auth(
        AuthConfig::anonymous().with_credentials(proxy.host(), basic("carol", "pw")),
    );
    let img = push_image(&c, &r, &amd64(), &[pseudo_random(10, 5)], work.path());
    assert_eq!(
        c.get_manifest(&r).unwrap().unwrap().digest,
        img.manifest_digest
    );
    assert_eq!(
        c.push_manifest(&r.with_tag("2"), media::OCI_MANIFEST, &img.manifest_bytes)
            .unwrap(),
        img.manifest_digest
    );
}

#[test]
fn login_verifies_stores_and_logout_removes() {
    let reg = TestRegistry::start_with_htpasswd("dave", "pa55");
    let cfg_dir = tempfile::tempdir().unwrap();
    let path = cfg_dir.path().join("config.json");
    std::fs::write(
        &path,
        r#"{"auths": {"other.example": {"auth": "b3RoZXI6eA=="}}, "psFormat": "table"}"#,
    )
    .unwrap();
    let options = |cfg: AuthConfig| ClientOptions {
        auth: cfg,
        ..support::options()
    };

    let err = auth::login(
        &options(AuthConfig::from_dir(cfg_dir.path()).unwrap()),
        reg.host(),
        "dave",
        "wrong",
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(!std::fs::read_to_string(&path).unwrap().contains(reg.host()));

    let stored = auth::login(
        &options(AuthConfig::from_dir(cfg_dir.path()).unwrap()),
        reg.host(),
        "dave",
        "pa55",
    )
    .unwrap();
    assert_eq!(stored, Stored::ConfigFile(path.clone()));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["auths"][reg.host()]["auth"], base64("dave:pa55"));
    assert_eq!(v["auths"]["other.example"]["auth"], "b3RoZXI6eA==");
    assert_eq!(v["psFormat"], "table");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // What login stored is what the client then uses.
    let c = client_with_auth(AuthConfig::from_dir(cfg_dir.path()).unwrap());
    assert!(c.get_manifest(&reg.reference("x:1")).unwrap().is_none());

    assert!(auth::logout(&AuthConfig::from_dir(cfg_dir.path()).unwrap(), reg.host()).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["auths"].get(reg.host()).is_none());
    assert_eq!(v["auths"]["other.example"]["auth"], "b3RoZXI6eA==");
    assert!(!auth::logout(&AuthConfig::from_dir(cfg_dir.path()).unwrap(), reg.host()).unwrap());
}

#[test]
fn login_through_a_bearer_token_server() {
    let reg = TestRegistry::start();
    let proxy = TokenProxy::start_with_user(reg.host(), "erin", "pw");
    let cfg_dir = tempfile::tempdir().unwrap();
    let options = ClientOptions {
        auth: AuthConfig::from_dir(cfg_dir.path()).unwrap(),
        ..support::options()
    };
    assert!(auth::login(&options, proxy.host(), "erin", "bad").is_err());
    assert!(!cfg_dir.path().join("config.json").exists());
    auth::login(&options, &format!("http://{}", proxy.host()), "erin", "pw").unwrap();
    let cfg = AuthConfig::from_dir(cfg_dir.path()).unwrap();
    assert_eq!(
        cfg.credentials(proxy.host()).unwrap(),
        Some(basic("erin", "pw"))
    );
}

#[test]
fn login_stores_through_the_credential_helper() {
    let reg = TestRegistry::start_with_htpasswd("fay", "pw");
    let bin = tempfile::tempdir().unwrap();
    let store = bin.path().join("stored");
    let helper = bin.path().join("docker-credential-file");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  store) cat > {s} ;;\n  get) read server; if [ -f {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) rm -f {s} ;;\nesac\n",
            s = store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(cfg_dir.path(), r#"{"credsStore": "file"}"#)
        .with_helper_path(bin.path().as_os_str());
    let options = ClientOptions {
        auth: cfg.clone(),
        ..support::options()
    };
    assert_eq!(
        auth::login(&options, reg.host(), "fay", "pw").unwrap(),
        Stored::Helper("file".into())
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(saved["Username"], "fay");
    assert_eq!(saved["ServerURL"], reg.host());
    assert_eq!(
        std::fs::read_to_string(cfg_dir.path().join("config.json")).unwrap(),
        r#"{"credsStore": "file"}"#
    );
    assert!(
        client_with_auth(cfg.clone())
            .get_manifest(&reg.reference("y:1"))
            .unwrap()
            .is_none()
    );
    assert!(auth::logout(&cfg, reg.host()).unwrap());
    assert!(!store.exists());
}
