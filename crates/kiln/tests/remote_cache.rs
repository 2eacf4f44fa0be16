//! `--cache-to` / `--cache-from` with `type=local` (an OCI image layout directory): a fresh
//! store answers every step from another store's records and makes the same image, pulling
//! only the blobs that image needs; parallel exports to one directory merge; a failed
//! build still exported what finished; a damaged blob costs a re-run, not the build.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{Env, KILN, Layout, kiln_at, read, run_ok, text};

const TWO_STAGES: &str = "\
FROM busybox AS builder
RUN echo built > /artifact && echo scratch > /tmp/big
COPY src.txt /src.txt
RUN cat /src.txt >> /artifact

FROM busybox
COPY --from=builder /artifact /app/artifact
COPY app.txt /app/app.txt
RUN echo final > /app/final
";

fn two_stage_context(env: &Env) -> PathBuf {
    env.context(
        "ctx",
        &[
            ("Dockerfile", TWO_STAGES),
            ("src.txt", "source\n"),
            ("app.txt", "app\n"),
        ],
    )
}

/// Another store with the very same busybox image (`kiln import` dates what it makes, so
/// the image is saved and loaded).
fn fresh_store(env: &Env, name: &str) -> PathBuf {
    let archive = env.path("busybox.tar");
    if !archive.exists() {
        let out = env.kiln(&["save", "-o", archive.to_str().unwrap(), "busybox:latest"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let store = env.path(name);
    let out = kiln_at(&store, &["load", "-i", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    store
}

/// `kiln build --progress=plain` on `store`; returns (success, progress, manifest digest).
fn build_at(store: &Path, env: &Env, args: &[&str]) -> (bool, String, String) {
    let metadata = env.path(&format!("meta-{}", support_name(store)));
    support::build_with_metadata(store, None, &metadata, args)
}

fn support_name(store: &Path) -> String {
    store.file_name().unwrap().to_string_lossy().into_owned()
}

fn blobs(store: &Path) -> BTreeSet<String> {
    fs::read_dir(store.join("blobs/sha256"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn snapshots(store: &Path) -> usize {
    fs::read_dir(store.join("snapshots")).map_or(0, |entries| entries.count())
}

fn index(layout: &Path) -> Vec<Value> {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap())
        .expect("index.json is valid JSON");
    index["manifests"].as_array().cloned().unwrap_or_default()
}

fn layout_json(layout: &Path, digest: &str) -> Value {
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The record configs of a cache layout.
fn records(layout: &Path) -> Vec<Value> {
    index(layout)
        .iter()
        .map(|entry| {
            let manifest = layout_json(layout, entry["digest"].as_str().unwrap());
            layout_json(layout, manifest["config"]["digest"].as_str().unwrap())
        })
        .collect()
}

fn assert_all_cached(progress: &str, steps: usize) {
    assert!(!progress.contains("cache miss"), "{progress}");
    let cached = progress.matches(" CACHED").count();
    assert!(
        cached >= steps,
        "{cached} steps cached, wanted {steps}:\n{progress}"
    );
}

/// Builds `ctx` on the test's own store with `--cache-to type=local,dest=CACHE{options}`
/// (options such as `,mode=max`) after the `extra` flags; returns (success, progress,
/// manifest digest).
fn export_cache(
    env: &Env,
    ctx: &Path,
    cache: &Path,
    options: &str,
    extra: &[&str],
) -> (bool, String, String) {
    let to = format!("type=local,dest={}{options}", cache.display());
    let mut args = extra.to_vec();
    args.extend(["--cache-to", &to, ctx.to_str().unwrap()]);
    build_at(&env.store, env, &args)
}

/// Builds `ctx` on `store` with `--cache-from type=local,src=CACHE{options}` after the
/// `extra` flags (such as `--output`), and asserts it succeeded; returns (progress,
/// manifest digest).
fn build_from_cache(
    env: &Env,
    store: &Path,
    cache: &Path,
    options: &str,
    extra: &[&str],
    ctx: &Path,
) -> (String, String) {
    let from = format!("type=local,src={}{options}", cache.display());
    let mut args = extra.to_vec();
    args.extend(["--cache-from", &from, ctx.to_str().unwrap()]);
    let (ok, progress, digest) = build_at(store, env, &args);
    assert!(ok, "{progress}");
    (progress, digest)
}

/// Builds `ctx` on a fresh store (`store-b`) from the records in `cache`, after the `extra`
/// flags, writing the image's files to a directory; asserts the build succeeded; returns
/// (progress, manifest digest, that directory).
fn build_files_from_cache(
    env: &Env,
    cache: &Path,
    extra: &[&str],
    ctx: &Path,
) -> (String, String, PathBuf) {
    let store = fresh_store(env, "store-b");
    let out = env.path("out");
    let output = local_output(&out);
    let mut args = extra.to_vec();
    args.extend(["--output", &output]);
    let (progress, digest) = build_from_cache(env, &store, cache, "", &args, ctx);
    (progress, digest, out)
}

/// `--output` writing the image's files to `dir`.
fn local_output(dir: &Path) -> String {
    format!("type=local,dest={}", dir.display())
}

/// `--output` writing the image as an OCI layout directory `dir`.
fn layout_output(dir: &Path) -> String {
    format!("type=oci,dest={},tar=false", dir.display())
}

/// The manifest of the (only) image in an OCI layout directory.
fn image_manifest(layout: &Path) -> Value {
    layout_json(layout, index(layout)[0]["digest"].as_str().unwrap())
}

/// The config a manifest in `layout` names.
fn manifest_config(layout: &Path, manifest: &Value) -> Value {
    layout_json(layout, manifest["config"]["digest"].as_str().unwrap())
}

#[test]
fn a_fresh_store_builds_the_same_image_from_another_stores_records() {
    let Some(env) = Env::new() else { return };
    let ctx = two_stage_context(&env);
    let cache = env.path("cache");
    let (ok, progress, digest_a) = export_cache(&env, &ctx, &cache, ",mode=max", &["-t", "app:a"]);
    assert!(ok, "{progress}");
    assert!(!progress.contains("WARNING"), "{progress}");
    // Every step of both stages has a record, each under its own tag.
    let steps: Vec<String> = records(&cache)
        .iter()
        .map(|r| r["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps.len(), 6, "{steps:?}");
    let skopeo_tag = index(&cache)[0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(skopeo_tag.starts_with("latest-") && skopeo_tag.len() == 7 + 64);
    let raw = run_ok(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci:{}:{skopeo_tag}", cache.display()),
        ],
    );
    assert!(
        raw.contains("application/vnd.kiln.cache.record.v1+json"),
        "{raw}"
    );

    let b = fresh_store(&env, "store-b");
    let before = blobs(&b);
    let archive = env.path("b.tar");
    let output = format!("type=oci,dest={}", archive.display());
    let (progress, digest_b) = build_from_cache(
        &env,
        &b,
        &cache,
        "",
        &["-t", "app:b", "--output", &output],
        &ctx,
    );
    assert_all_cached(&progress, 6);
    assert_eq!(digest_a, digest_b, "the same image");
    assert_eq!(snapshots(&b), 0, "nothing was unpacked:\n{progress}");
    // Only the final image's blobs were pulled: not the builder stage's layers.
    let layout = Layout::from_archive(&archive, &env.path("b-layout")).dir;
    let in_image = blobs_of_layout(&layout);
    let pulled: Vec<String> = blobs(&b).difference(&before).cloned().collect();
    let foreign: Vec<&String> = pulled.iter().filter(|b| !in_image.contains(*b)).collect();
    assert!(
        foreign.is_empty(),
        "blobs the image does not need: {foreign:?}"
    );
    assert_eq!(
        pulled.len(),
        5,
        "three layers, a config and a manifest: {pulled:?}"
    );

    // The image runs: its files are there.
    let out = env.path("out");
    let local = local_output(&out);
    build_from_cache(&env, &b, &cache, "", &["--output", &local], &ctx);
    assert_eq!(read(&out, "app/artifact"), "built\nsource\n");
    assert_eq!(read(&out, "app/final"), "final\n");

    // A step that misses builds on the imported records' files.
    fs::write(ctx.join("app.txt"), "changed\n").unwrap();
    build_from_cache(&env, &b, &cache, "", &["--output", &local], &ctx);
    assert_eq!(read(&out, "app/app.txt"), "changed\n");
    assert_eq!(read(&out, "app/artifact"), "built\nsource\n");
    // What was unpacked is now in the local cache: the final stage needs no remote. (The
    // builder stage was never unpacked, so it runs; the unused build arg keeps the
    // whole-build short cut from answering.)
    let (ok, progress, _) = build_at(
        &b,
        &env,
        &[
            "--build-arg",
            "UNUSED=1",
            "--output",
            &local,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(ok, "{progress}");
    let final_stage = progress.split("[stage-1 2/4]").nth(1).unwrap_or_default();
    assert_all_cached(final_stage, 3);
}

fn blobs_of_layout(layout: &Path) -> BTreeSet<String> {
    blobs_in(&layout.join("blobs/sha256"))
}

fn blobs_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn mode_min_exports_only_the_image_layers() {
    let Some(env) = Env::new() else { return };
    let ctx = two_stage_context(&env);
    let cache = env.path("cache");
    let (ok, progress, _) = export_cache(&env, &ctx, &cache, "", &[]);
    assert!(ok, "{progress}");
    let mut steps: Vec<String> = records(&cache)
        .iter()
        .map(|r| {
            r["step"]
                .as_str()
                .unwrap()
                .rsplit('#')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    steps.sort();
    assert_eq!(steps, ["[stage-1 2/4]", "[stage-1 3/4]", "[stage-1 4/4]"]);
}

#[test]
fn parallel_exports_to_one_directory_all_land() {
    let Some(env) = Env::new() else { return };
    let cache = env.path("cache");
    let to = format!("type=local,dest={},mode=max", cache.display());
    let other = fresh_store(&env, "store-c");
    let contexts: Vec<PathBuf> = (0..2)
        .map(|n| {
            env.context(
                &format!("ctx{n}"),
                &[(
                    "Dockerfile",
                    &format!(
                        "FROM busybox\nRUN echo {n} > /n\nRUN echo again{n} >> /n\nRUN echo third{n} > /t\n"
                    ),
                )],
            )
        })
        .collect();
    let stores = [env.store.clone(), other];
    let children: Vec<_> = stores
        .iter()
        .zip(&contexts)
        .map(|(store, ctx)| {
            kiln_at(
                store,
                &[
                    "build",
                    "--progress=plain",
                    "--cache-to",
                    &to,
                    ctx.to_str().unwrap(),
                ],
            )
        })
        .collect();
    // Started one after the other above; run them truly at once as well.
    let both: Vec<_> = stores
        .iter()
        .zip(&contexts)
        .map(|(store, ctx)| {
            let ctx = ctx.clone();
            let store = store.clone();
            let to = to.replace("cache", "cache2");
            std::thread::spawn(move || {
                Command::new(KILN)
                    .arg("--root")
                    .arg(&store)
                    .args(["build", "--progress=plain", "--no-cache", "--cache-to", &to])
                    .arg(&ctx)
                    .env_remove("KILN_ROOT")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for out in children {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for handle in both {
        let out = handle.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let cache2 = env.path("cache2");
    for layout in [&cache, &cache2] {
        assert_eq!(records(layout).len(), 6, "three records from each build");
        let tags: BTreeSet<String> = index(layout)
            .iter()
            .map(|e| {
                e["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(tags.len(), 6);
    }
    // A third store hits every step of both builds.
    let third = fresh_store(&env, "store-d");
    for ctx in &contexts {
        let (progress, _) = build_from_cache(&env, &third, &cache2, "", &[], ctx);
        assert_all_cached(&progress, 3);
    }
}

#[test]
fn a_failed_build_still_exported_the_steps_before_the_failure() {
    let Some(env) = Env::new() else { return };
    let good = "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n";
    let ctx = env.context("ctx", &[("Dockerfile", &format!("{good}RUN false\n"))]);
    let cache = env.path("cache");
    let (ok, progress, _) = export_cache(&env, &ctx, &cache, ",mode=max", &[]);
    assert!(!ok, "the build fails:\n{progress}");
    assert_eq!(records(&cache).len(), 2, "{progress}");

    fs::write(ctx.join("Dockerfile"), good).unwrap();
    let (progress, _, out) = build_files_from_cache(&env, &cache, &[], &ctx);
    assert_all_cached(&progress, 2);
    assert_eq!(read(&out, "two"), "two\n");
}

#[test]
fn a_damaged_blob_makes_its_step_run_again() {
    let Some(env) = Env::new() else { return };
    let ctx = two_stage_context(&env);
    let cache = env.path("cache");
    let (ok, progress, _) = export_cache(&env, &ctx, &cache, ",mode=max", &[]);
    assert!(ok, "{progress}");
    // Flip a byte in every layer blob.
    let mut damaged = 0;
    for entry in index(&cache) {
        let manifest = layout_json(&cache, entry["digest"].as_str().unwrap());
        for layer in manifest["layers"].as_array().unwrap() {
            let hex = layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:");
            let path = cache.join("blobs/sha256").join(hex);
            let mut bytes = fs::read(&path).unwrap();
            let last = bytes.len() - 10;
            bytes[last] ^= 0xff;
            fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert_eq!(damaged, 6);
    let (progress, _, out) = build_files_from_cache(&env, &cache, &["-t", "app:b"], &ctx);
    assert!(progress.contains("the step ran again"), "{progress}");
    assert_eq!(read(&out, "app/artifact"), "built\nsource\n");
    assert_eq!(read(&out, "app/app.txt"), "app\n");
    assert_eq!(read(&out, "app/final"), "final\n");
}

#[test]
fn bad_cache_specs_are_refused_before_building() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context("ctx", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    for (flag, value, expected) in [
        ("--cache-to", "type=local", "dest=DIRECTORY"),
        ("--cache-to", "type=registry", "needs ref"),
        ("--cache-to", "type=gha", "not supported"),
        (
            "--cache-to",
            "type=local,dest=/x,mode=all",
            "expected min or max",
        ),
    ] {
        let out = env.build(&[flag, value, ctx.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(expected),
            "{value}: {}",
            text(&out.stderr)
        );
    }
    // A destination that cannot be written is a warning, unless ignore-error=false.
    let progress = env.build_ok(&[
        "--cache-to",
        "type=local,dest=/proc/kiln-cache",
        ctx.to_str().unwrap(),
    ]);
    assert!(progress.contains("WARNING: --cache-to"), "{progress}");
    let out = env.build(&[
        "--cache-to",
        "type=local,dest=/proc/kiln-cache,ignore-error=false",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // An import that cannot be read is a warning.
    let progress = env.build_ok(&[
        "--cache-from",
        "type=local,src=/nonexistent",
        ctx.to_str().unwrap(),
    ]);
    assert!(progress.contains("WARNING: --cache-from"), "{progress}");
}

/// `kiln bake` in `dir` on `store`.
fn bake_at(store: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(KILN)
        .arg("--root")
        .arg(store)
        .args(["bake", "--progress=plain"])
        .current_dir(dir)
        .env_remove("KILN_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn bake_targets_export_and_import_their_cache() {
    let Some(env) = Env::new() else { return };
    let project = env.context(
        "project",
        &[
            ("Dockerfile", "FROM busybox\nRUN echo baked > /baked\nRUN echo more >> /baked\n"),
            (
                "docker-bake.hcl",
                "group \"default\" { targets = [\"app\"] }\ntarget \"app\" {\n  cache-to = [\"type=local,dest=cache,mode=max\"]\n  \
                 cache-from = [\"type=local,src=cache\"]\n}\n",
            ),
        ],
    );
    // The first bake has no cache to read yet: a warning, not a failure.
    let (ok, progress) = bake_at(&env.store, &project);
    assert!(ok, "{progress}");
    assert_eq!(records(&project.join("cache")).len(), 2, "{progress}");
    let b = fresh_store(&env, "store-b");
    let (ok, progress) = bake_at(&b, &project);
    assert!(ok, "{progress}");
    assert_all_cached(&progress, 2);
}

#[test]
fn records_written_with_other_compression_are_unpacked_and_written_again() {
    let Some(env) = Env::new() else { return };
    let ctx = two_stage_context(&env);
    let cache = env.path("cache");
    let (ok, progress, digest_a) =
        export_cache(&env, &ctx, &cache, ",mode=max,compression=zstd", &[]);
    assert!(ok, "{progress}");
    let media_types: BTreeSet<String> = index(&cache)
        .iter()
        .flat_map(|e| {
            let manifest = layout_json(&cache, e["digest"].as_str().unwrap());
            manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["mediaType"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        media_types.into_iter().collect::<Vec<_>>(),
        ["application/vnd.oci.image.layer.v1.tar+zstd"]
    );
    let (progress, digest_b, out) = build_files_from_cache(&env, &cache, &[], &ctx);
    assert_all_cached(&progress, 6);
    assert_eq!(read(&out, "app/artifact"), "built\nsource\n");
    assert_eq!(digest_a, digest_b, "re-written gzip layers are the same");
}

#[test]
fn inline_records_travel_with_the_image() {
    let Some(env) = Env::new() else { return };
    let ctx = two_stage_context(&env);
    let layout = env.path("image-layout");
    let output = layout_output(&layout);
    let (ok, progress, _) = build_at(
        &env.store,
        &env,
        &[
            "-t",
            "app:v1",
            "--cache-to",
            "type=inline",
            "--output",
            &output,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(ok, "{progress}");
    let manifest = image_manifest(&layout);
    let config = manifest_config(&layout, &manifest);
    let inline = config["kiln.cache.v1"]["records"].as_array().unwrap();
    assert_eq!(inline.len(), 3, "the final stage's steps: {config}");

    // Another store imports the image's records through the layout tag naming it.
    let b = fresh_store(&env, "store-b");
    let layout_b = env.path("image-layout-b");
    let (progress, _) = build_from_cache(
        &env,
        &b,
        &layout,
        ",tag=v1",
        &["-t", "app:v1", "--output", &layout_output(&layout_b)],
        &ctx,
    );
    // The builder stage has no records inline: it runs (and so dates the image anew);
    // the final stage is all hits, with the very same layers.
    let final_stage = progress.split("[stage-1 2/4]").nth(1).unwrap_or_default();
    assert_all_cached(final_stage, 3);
    let manifest_b = image_manifest(&layout_b);
    assert_eq!(manifest["layers"], manifest_b["layers"]);
}

/// Rewrites every record of `cache` whose config names a layer so that it claims a wrong
/// diff_id (a consistent, digest-valid record that lies), and returns how many.
fn falsify_diff_ids(cache: &Path) -> usize {
    let put = |bytes: &[u8]| -> (String, u64) {
        use sha2::Digest as _;
        let hex = hex_of(&sha2::Sha256::digest(bytes));
        fs::write(cache.join("blobs/sha256").join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len() as u64)
    };
    let mut index_doc: Value =
        serde_json::from_slice(&fs::read(cache.join("index.json")).unwrap()).unwrap();
    let mut falsified = 0;
    for entry in index_doc["manifests"].as_array_mut().unwrap() {
        let mut manifest = layout_json(cache, entry["digest"].as_str().unwrap());
        let mut config = layout_json(cache, manifest["config"]["digest"].as_str().unwrap());
        if config["layer"].is_null() {
            continue;
        }
        config["layer"]["diff_id"] = Value::String(format!("sha256:{}", "0".repeat(64)));
        let (digest, size) = put(&serde_json::to_vec(&config).unwrap());
        manifest["config"]["digest"] = Value::String(digest);
        manifest["config"]["size"] = Value::from(size);
        let (digest, size) = put(&serde_json::to_vec(&manifest).unwrap());
        entry["digest"] = Value::String(digest);
        entry["size"] = Value::from(size);
        falsified += 1;
    }
    fs::write(
        cache.join("index.json"),
        serde_json::to_vec(&index_doc).unwrap(),
    )
    .unwrap();
    falsified
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_record_claiming_a_wrong_diff_id_never_reaches_an_image() {
    let Some(env) = Env::new() else { return };
    let ctx = two_stage_context(&env);
    let cache = env.path("cache");
    let (ok, progress, _) = export_cache(&env, &ctx, &cache, ",mode=max", &[]);
    assert!(ok, "{progress}");
    assert!(falsify_diff_ids(&cache) > 0);
    // Store B's image takes the final stage's layers straight from the records unless
    // their diff_ids are checked: each lying record must cost a re-run instead.
    let b = fresh_store(&env, "store-b");
    let layout = env.path("image-b");
    let (progress, _) = build_from_cache(
        &env,
        &b,
        &cache,
        "",
        &["--output", &layout_output(&layout)],
        &ctx,
    );
    assert!(progress.contains("the step ran again"), "{progress}");
    let manifest = image_manifest(&layout);
    let config = manifest_config(&layout, &manifest);
    for (layer, diff_id) in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        let blob = fs::read(
            layout.join("blobs/sha256").join(
                layer["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            ),
        )
        .unwrap();
        use sha2::Digest as _;
        let actual = format!(
            "sha256:{}",
            hex_of(&sha2::Sha256::digest(support::decompress(&blob)))
        );
        assert_eq!(
            diff_id.as_str().unwrap(),
            actual,
            "a layer's diff_id is wrong"
        );
    }
}
