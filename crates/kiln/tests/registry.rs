//! Builds that pull from and push to a real registry (Debian's docker-registry on
//! 127.0.0.1): lazy base images, `--pull`, `--push`, credentials, skopeo interop.

mod support;

use std::path::Path;
use std::process::Output;

use kiln_registry::testutil::TestRegistry;
use support::{Env, have_commands, kiln_with_config, run_ok, seed_busybox, text};

/// What these tests need beyond [`Env`]: the registry, its password tool and skopeo.
const TOOLS: &[&str] = &["skopeo", "htpasswd", "/usr/bin/docker-registry"];

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "kiln failed ({:?}):\n{}",
        out.status,
        text(&out.stderr)
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn inspect(reference: &str, creds: Option<&str>) -> serde_json::Value {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&target);
    serde_json::from_str(&run_ok("skopeo", &args)).unwrap()
}

fn metadata_digest(path: &Path) -> String {
    support::metadata_digest(path).expect("the metadata file names the image digest")
}

fn blob_exists(store: &Path, digest: &str) -> bool {
    store
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .exists()
}

#[test]
fn base_images_are_pulled_lazily_and_results_pushed() {
    let Some(env) = Env::new() else { return };
    if !have_commands(TOOLS) {
        return;
    }
    let registry = TestRegistry::start();
    let host = registry.host();
    seed_busybox(&env, &format!("{host}/busybox:latest"), None);
    let base = inspect(&format!("{host}/busybox:latest"), None);
    let base_layer = base["Layers"][0].as_str().unwrap().to_string();
    let config = env.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();

    // Nothing reads the base's files and nothing is exported: its layer is never fetched.
    let store = env.path("fresh");
    let ctx = env.context(
        "lazy",
        &[(
            "Dockerfile",
            &format!("FROM {host}/busybox:latest\nENV STAGE=lazy\n"),
        )],
    );
    ok(kiln_with_config(
        &store,
        &config,
        &[
            "build",
            "--progress=plain",
            "--output",
            "type=cacheonly",
            ctx.to_str().unwrap(),
        ],
    ));
    assert!(
        !blob_exists(&store, &base_layer),
        "the base layer was fetched though no step needed it"
    );

    // A RUN needs the filesystem; the push sends the result under its tag.
    let ctx = env.context(
        "app",
        &[(
            "Dockerfile",
            &format!("FROM {host}/busybox:latest\nRUN echo pushed > /hello\n"),
        )],
    );
    let meta = env.path("app.json");
    let tag = format!("{host}/team/app:1");
    let progress = ok(kiln_with_config(
        &store,
        &config,
        &[
            "build",
            "--progress=plain",
            "-t",
            &tag,
            "--push",
            "--metadata-file",
            meta.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    ));
    assert!(blob_exists(&store, &base_layer));
    // The base layer came from another repository of the same registry: mounted, not sent.
    assert!(
        progress.contains(&format!("pushed {tag}@")) && progress.contains("1 mounted"),
        "{progress}"
    );
    let pushed = inspect(&tag, None);
    assert_eq!(pushed["Digest"].as_str().unwrap(), metadata_digest(&meta));
    let layers = pushed["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{pushed}");
    assert_eq!(layers[0].as_str().unwrap(), base_layer);

    // What kiln pushed, a third client copies and another kiln store builds on.
    let layout = env.path("copied-layout");
    run_ok(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{tag}"),
            &format!("oci:{}:copied", layout.display()),
        ],
    );
    let other = env.path("other");
    let ctx = env.context(
        "child",
        &[(
            "Dockerfile",
            &format!("FROM {tag}\nRUN cat /hello > /copy\n"),
        )],
    );
    let out_dir = env.path("child-out");
    ok(kiln_with_config(
        &other,
        &config,
        &[
            "build",
            "--progress=plain",
            "--output",
            &format!("type=local,dest={}", out_dir.display()),
            ctx.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("copy")).unwrap(),
        "pushed\n"
    );
}

#[test]
fn pull_flag_looks_the_tag_up_again() {
    let Some(env) = Env::new() else { return };
    if !have_commands(TOOLS) {
        return;
    }
    let registry = TestRegistry::start();
    let host = registry.host();
    let base = format!("{host}/base:1");
    seed_busybox(&env, &base, None);
    let config = env.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let store = env.path("store-b");
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN ls /marker > /seen 2>&1 || echo none > /seen\n"),
        )],
    );
    let seen = |args: &[&str]| {
        let dest = env.path("out");
        let _ = std::fs::remove_dir_all(&dest);
        let output = format!("type=local,dest={}", dest.display());
        let mut full = vec!["build", "--progress=plain", "--output", &output];
        full.extend_from_slice(args);
        full.push(ctx.to_str().unwrap());
        let progress = ok(kiln_with_config(&store, &config, &full));
        let answered = progress.contains("nothing changed since the last build");
        (
            std::fs::read_to_string(dest.join("seen")).unwrap(),
            answered,
        )
    };
    assert_eq!(seen(&[]), ("none\n".to_string(), false));
    // Unchanged, and the remembered resolution still stands: the short cut answers.
    assert_eq!(seen(&[]), ("none\n".to_string(), true));

    // The tag moves to an image with /marker.
    let moved = env.context(
        "mover",
        &[("Dockerfile", &format!("FROM {base}\nRUN touch /marker\n"))],
    );
    ok(kiln_with_config(
        &env.path("mover-store"),
        &config,
        &[
            "build",
            "--progress=plain",
            "-t",
            &base,
            "--push",
            moved.to_str().unwrap(),
        ],
    ));

    // Without --pull the remembered resolution stands (builds work offline); with it the
    // registry is asked again.
    assert_eq!(seen(&[]), ("none\n".to_string(), true));
    assert_eq!(seen(&["--pull"]), ("/marker\n".to_string(), false));
}

#[test]
fn pushing_to_a_registry_with_basic_auth_needs_a_login() {
    let Some(env) = Env::new() else { return };
    if !have_commands(TOOLS) {
        return;
    }
    let registry = TestRegistry::start_with_htpasswd("ci", "s3cret");
    let host = registry.host();
    seed_busybox(&env, &format!("{host}/busybox:latest"), Some("ci:s3cret"));
    let config = env.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            &format!("FROM {host}/busybox:latest\nRUN echo secret-free > /f\n"),
        )],
    );
    let tag = format!("{host}/private/app:1");
    let store = env.path("store");
    let build = [
        "build",
        "--progress=plain",
        "-t",
        &tag,
        "--push",
        ctx.to_str().unwrap(),
    ];
    let denied = kiln_with_config(&store, &config, &build);
    assert!(!denied.status.success());
    let message = text(&denied.stderr);
    assert!(
        message.contains(host) && message.to_lowercase().contains("unauthorized"),
        "{message}"
    );

    ok(kiln_with_config(
        &store,
        &config,
        &["login", host, "-u", "ci", "-p", "s3cret"],
    ));
    ok(kiln_with_config(&store, &config, &build));
    let pushed = inspect(&tag, Some("ci:s3cret"));
    assert_eq!(pushed["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn an_unreachable_registry_is_a_clear_error() {
    let Some(env) = Env::new() else { return };
    let config = env.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // Nothing listens on port 9 of loopback.
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM 127.0.0.1:9/nothing:1\nRUN true\n")],
    );
    let out = kiln_with_config(
        &env.path("store"),
        &config,
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let message = text(&out.stderr);
    assert!(
        message.contains("127.0.0.1:9/nothing:1") && message.contains("could not be pulled"),
        "{message}"
    );
}

#[test]
fn a_broken_docker_config_fails_only_what_needs_a_registry() {
    let Some(env) = Env::new() else { return };
    let config = env.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.json"), "{ not json").unwrap();
    // A build from kiln's own image never reads the credentials.
    let local = env.context("local", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    let out = kiln_with_config(
        &env.store,
        &config,
        &["build", "--progress=plain", local.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A pull does, and says which file is wrong.
    let remote = env.context(
        "remote",
        &[("Dockerfile", "FROM 127.0.0.1:9/nothing:1\nRUN true\n")],
    );
    let out = kiln_with_config(
        &env.store,
        &config,
        &["build", "--progress=plain", remote.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let message = text(&out.stderr);
    assert!(message.contains("config.json"), "{message}");
}
