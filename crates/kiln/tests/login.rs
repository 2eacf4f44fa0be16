//! `kiln login` / `kiln logout` against a real docker-registry with htpasswd auth.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use kiln_registry::testutil::TestRegistry;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

fn kiln(config: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(KILN)
        .args(args)
        .env("DOCKER_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

#[test]
fn login_and_logout_with_password_stdin() {
    let reg = TestRegistry::start_with_htpasswd("kiln", "letmein");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"detachKeys": "ctrl-x"}"#,
    )
    .unwrap();

    let out = kiln(
        config.path(),
        &["login", reg.host(), "-u", "kiln", "--password-stdin"],
        "wrong\n",
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("ERROR: cannot log in to") && err.contains("unauthorized"),
        "{err}"
    );

    let out = kiln(
        config.path(),
        &["login", reg.host(), "-u", "kiln", "--password-stdin"],
        "letmein\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let v = config_json(config.path());
    assert!(v["auths"][reg.host()]["auth"].is_string(), "{v}");
    assert_eq!(v["detachKeys"], "ctrl-x");
    let mode = std::fs::metadata(config.path().join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = kiln(config.path(), &["logout", reg.host()], "");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("Removing login credentials for {}\n", reg.host())
    );
    assert!(
        config_json(config.path())["auths"]
            .get(reg.host())
            .is_none()
    );
    let out = kiln(config.path(), &["logout", reg.host()], "");
    assert_eq!(
        text(&out.stdout),
        format!("Not logged in to {}\n", reg.host())
    );
}

#[test]
fn login_flags_and_missing_input() {
    let reg = TestRegistry::start_with_htpasswd("kiln", "pw");
    let config = tempfile::tempdir().unwrap();
    let out = kiln(
        config.path(),
        &["login", reg.host(), "-u", "kiln", "-p", "pw"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--password-stdin"));

    let out = kiln(
        config.path(),
        &["login", reg.host(), "--password-stdin"],
        "pw",
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--password-stdin needs --username"));

    // Not a terminal and no password given: a clear error instead of a prompt.
    let out = kiln(config.path(), &["login", reg.host(), "-u", "kiln"], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a terminal"),
        "{}",
        text(&out.stderr)
    );

    // Docker Hub is the default server (nothing stored, so nothing to remove).
    let out = kiln(config.path(), &["logout"], "");
    assert_eq!(
        text(&out.stdout),
        "Not logged in to https://index.docker.io/v1/\n"
    );
}
