//! The fleet scenario against a real registry (Debian's docker-registry on 127.0.0.1):
//! store A exports its cache with `--cache-to type=registry`, a fresh store B builds from
//! it with every step a hit and the same digest; parallel exporters to one ref merge; a
//! failed build exported what finished; a registry serving corrupt blobs or failing
//! requests costs retries or a re-run, never a wrong image.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kiln_registry::testutil::{FaultProxy, TestRegistry};
use support::{Env, build_with_metadata, have_commands, seed_busybox};

struct Fleet {
    env: Env,
    registry: TestRegistry,
    config: PathBuf,
}

impl Fleet {
    fn start() -> Option<Fleet> {
        let env = Env::new()?;
        if !have_commands(&["skopeo", "/usr/bin/docker-registry"]) {
            return None;
        }
        let registry = TestRegistry::start();
        seed_busybox(&env, &format!("{}/busybox:latest", registry.host()), None);
        let config = env.path("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        Some(Fleet {
            env,
            registry,
            config,
        })
    }

    fn context(&self, name: &str, last_step: &str) -> PathBuf {
        let host = self.registry.host();
        let dockerfile = format!(
            "FROM {host}/busybox:latest AS builder\n\
             RUN echo built > /artifact && head -c 300000 /dev/urandom > /tmp/builder-only\n\
             COPY src.txt /src.txt\n\
             RUN cat /src.txt >> /artifact\n\
             FROM {host}/busybox:latest\n\
             COPY --from=builder /artifact /app/artifact\n\
             RUN echo final > /app/final\n\
             {last_step}\n"
        );
        self.env.context(
            name,
            &[("Dockerfile", &dockerfile), ("src.txt", "source\n")],
        )
    }

    /// `kiln build` on its own store; (success, progress, manifest digest).
    fn build(&self, store: &str, args: &[&str]) -> (bool, String, String) {
        let store = self.env.path(store);
        let meta = self.env.path("meta.json");
        build_with_metadata(&store, Some(&self.config), &meta, args)
    }

    fn tags(&self, repository: &str) -> BTreeSet<String> {
        let client = kiln_registry::Client::new(kiln_registry::ClientOptions::default()).unwrap();
        client
            .list_tags(&self.registry.reference(repository))
            .unwrap()
            .into_iter()
            .collect()
    }
}

fn blobs(store: &Path) -> BTreeSet<String> {
    std::fs::read_dir(store.join("blobs/sha256"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_fresh_store_answers_every_step_from_the_registry_cache() {
    let Some(fleet) = Fleet::start() else { return };
    let ctx = fleet.context("ctx", "");
    let cache = format!("{}/cache:main", fleet.registry.host());
    let to = format!("type=registry,ref={cache},mode=max");
    let (ok, progress, digest_a) = fleet.build("a", &["--cache-to", &to, ctx.to_str().unwrap()]);
    assert!(ok, "{progress}");
    assert!(!progress.contains("WARNING"), "{progress}");
    // One tag per recorded step: 2 RUN + 1 COPY in the builder, COPY + RUN in the image.
    let tags = fleet.tags("cache");
    assert_eq!(tags.len(), 5, "{tags:?}");
    assert!(tags.iter().all(|t| t.starts_with("main-")), "{tags:?}");

    let from = format!("type=registry,ref={cache}");
    let (ok, progress, digest_b) = fleet.build(
        "b",
        &["--cache-from", &from, "-t", "app:b", ctx.to_str().unwrap()],
    );
    assert!(ok, "{progress}");
    assert!(!progress.contains("cache miss"), "{progress}");
    assert_eq!(progress.matches(" CACHED").count(), 5, "{progress}");
    assert_eq!(digest_a, digest_b);
    // Only what the image is made of came over: the builder stage's layers did not.
    let store_b = fleet.env.path("b");
    let image: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            store_b
                .join("blobs/sha256")
                .join(digest_b.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let mut needed: BTreeSet<String> = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    needed.insert(image["config"]["digest"].as_str().unwrap().to_string());
    needed.insert(digest_b.clone());
    let extra: Vec<_> = blobs(&store_b).difference(&needed).cloned().collect();
    // The base image's manifest and config are the only other blobs.
    assert_eq!(extra.len(), 2, "unexpected blobs in store B: {extra:?}");
    assert!(
        std::fs::read_dir(store_b.join("snapshots")).map_or(0, |d| d.count()) == 0,
        "store B unpacked layers though every step was a hit"
    );
}

#[test]
fn parallel_exporters_merge_and_a_failed_build_keeps_what_finished() {
    let Some(fleet) = Fleet::start() else { return };
    let cache = format!("{}/shared:ci", fleet.registry.host());
    let to = format!("type=registry,ref={cache},mode=max");
    let one = fleet.context("one", "RUN echo one > /one");
    let two = fleet.context("two", "RUN echo two > /two");
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(|| fleet.build("p1", &["--cache-to", &to, one.to_str().unwrap()]));
        let b = s.spawn(|| fleet.build("p2", &["--cache-to", &to, two.to_str().unwrap()]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(first.0, "{}", first.1);
    assert!(second.0, "{}", second.1);
    // The shared five steps plus each build's own last step.
    assert_eq!(fleet.tags("shared").len(), 7);
    let from = format!("type=registry,ref={cache}");
    for (store, ctx) in [("q1", &one), ("q2", &two)] {
        let (ok, progress, _) = fleet.build(store, &["--cache-from", &from, ctx.to_str().unwrap()]);
        assert!(ok && !progress.contains("cache miss"), "{progress}");
    }

    // A build whose last step fails still exported the steps before it.
    let failing = fleet.context("failing", "RUN exit 3");
    let fail_to = format!(
        "type=registry,ref={}/failing:ci,mode=max",
        fleet.registry.host()
    );
    let (ok, progress, _) = fleet.build("f1", &["--cache-to", &fail_to, failing.to_str().unwrap()]);
    assert!(!ok, "{progress}");
    assert_eq!(fleet.tags("failing").len(), 5, "{progress}");
    let fixed = fleet.context("fixed", "");
    let fail_from = format!("type=registry,ref={}/failing:ci", fleet.registry.host());
    let (ok, progress, _) =
        fleet.build("f2", &["--cache-from", &fail_from, fixed.to_str().unwrap()]);
    assert!(ok && !progress.contains("cache miss"), "{progress}");
}

#[test]
fn a_faulty_registry_costs_retries_or_a_rerun_never_a_wrong_image() {
    let Some(fleet) = Fleet::start() else { return };
    let ctx = fleet.context("ctx", "");
    let proxy = FaultProxy::start(fleet.registry.host());
    let cache = format!("{}/cache:main", proxy.host());
    // Exporting through dropped connections and 500/429 answers: retried, all lands.
    proxy.drop_connections(2);
    proxy.fail_requests(2, 500, None);
    let (ok, progress, digest_a) = fleet.build(
        "a",
        &[
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(ok, "{progress}");
    assert!(!progress.contains("WARNING"), "{progress}");
    assert_eq!(fleet.tags("cache").len(), 5);

    // Every blob the cache serves is corrupt (record configs and layers alike): after the
    // client's retries no record is trusted, every step runs, and the image is right.
    proxy.only_requests_containing("/blobs/sha256:");
    proxy.corrupt_blobs(u32::MAX);
    let out_dir = fleet.env.path("out");
    let output = format!("type=local,dest={}", out_dir.display());
    let (ok, progress, _) = fleet.build(
        "b",
        &[
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            "--output",
            &output,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(ok, "{progress}");
    assert!(
        progress.contains("does not match its digest") && progress.contains("not used"),
        "{progress}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("app/artifact")).unwrap(),
        "built\nsource\n"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("app/final")).unwrap(),
        "final\n"
    );
    let _ = digest_a;
}

#[test]
fn inline_records_come_with_a_pushed_image() {
    let Some(fleet) = Fleet::start() else { return };
    let host = fleet.registry.host();
    let ctx = fleet.env.context(
        "single",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {host}/busybox:latest\nCOPY src.txt /src.txt\nRUN cat /src.txt > /out\n"
                ),
            ),
            ("src.txt", "inline\n"),
        ],
    );
    let image = format!("{host}/app:inline");
    let (ok, progress, digest_a) = fleet.build(
        "a",
        &[
            "-t",
            &image,
            "--push",
            "--cache-to",
            "type=inline",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(ok, "{progress}");
    // A fresh store takes the records from the image's config: no step runs, and the
    // image (which carries the same records again) is the same.
    let (ok, progress, digest_b) = fleet.build(
        "b",
        &[
            "--cache-from",
            &image,
            "--cache-to",
            "type=inline",
            "-t",
            "app:b",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(ok, "{progress}");
    assert!(!progress.contains("cache miss"), "{progress}");
    assert_eq!(progress.matches(" CACHED").count(), 2, "{progress}");
    assert_eq!(digest_a, digest_b);
}
