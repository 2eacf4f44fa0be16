//! The whole-build short cut answers an unchanged request from its last record, and never
//! when anything the build depended on changed.

mod support;

use std::fs;

use support::{Env, read, run_ok, text};

const SHORT_CUT: &str = "nothing changed since the last build of this request";

fn build(env: &Env, ctx: &std::path::Path, extra: &[&str]) -> (String, String) {
    let iid = env.path("iid");
    let out = env.path("out");
    let _ = fs::remove_dir_all(&out);
    let mut args = vec!["-t", "app:1", "--iidfile", iid.to_str().unwrap()];
    let output = format!("type=local,dest={}", out.display());
    args.extend(["--output", output.as_str()]);
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let progress = env.build_ok(&args);
    (progress, fs::read_to_string(iid).unwrap())
}

#[test]
fn unchanged_requests_are_answered_and_every_change_is_seen() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG MODE=dev\nCOPY app.txt /app.txt\nRUN echo $MODE > /mode\n",
            ),
            ("app.txt", "one\n"),
            ("notes.md", "ignored later\n"),
        ],
    );
    let (first, id) = build(&env, &ctx, &[]);
    assert!(!first.contains(SHORT_CUT));
    let (second, again) = build(&env, &ctx, &[]);
    assert!(second.contains(SHORT_CUT), "{second}");
    assert_eq!(id, again);
    assert_eq!(
        read(&env.path("out"), "app.txt"),
        "one\n",
        "outputs are still written"
    );

    // A changed context file.
    fs::write(ctx.join("app.txt"), "two\n").unwrap();
    let (changed, _) = build(&env, &ctx, &[]);
    assert!(!changed.contains(SHORT_CUT), "{changed}");
    assert_eq!(read(&env.path("out"), "app.txt"), "two\n");

    // A changed build arg.
    let (arg, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(!arg.contains(SHORT_CUT), "{arg}");
    assert_eq!(read(&env.path("out"), "mode"), "prod\n");

    // A new .dockerignore (even one that ignores nothing the build reads).
    let (before, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(before.contains(SHORT_CUT), "{before}");
    fs::write(ctx.join(".dockerignore"), "*.md\n").unwrap();
    let (ignore, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(!ignore.contains(SHORT_CUT), "{ignore}");

    // An ignored file changed, and a read file rewritten with the same bytes: stat data
    // differs, the checksums do not.
    fs::write(ctx.join("notes.md"), "edited, and ignored\n").unwrap();
    let (ignored, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(ignored.contains(SHORT_CUT), "{ignored}");
    fs::write(ctx.join("app.txt"), "two\n").unwrap();
    let (touched, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(touched.contains(SHORT_CUT), "{touched}");
    assert_eq!(read(&env.path("out"), "app.txt"), "two\n");
    // Changed again right away, same size: too recent for stat data, so summed again.
    fs::write(ctx.join("app.txt"), "six\n").unwrap();
    let (resized, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(!resized.contains(SHORT_CUT), "{resized}");
    assert_eq!(read(&env.path("out"), "app.txt"), "six\n");

    // The base image name now points at another image.
    let other = env.path("other");
    fs::create_dir_all(other.join("bin")).unwrap();
    fs::copy("/bin/busybox", other.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo"] {
        std::os::unix::fs::symlink("busybox", other.join("bin").join(applet)).unwrap();
    }
    fs::write(other.join("marker"), "other base\n").unwrap();
    let tar = env.path("other.tar");
    run_ok(
        "tar",
        &[
            "-C",
            other.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    let imported = env.kiln(&["import", tar.to_str().unwrap(), "busybox:latest"]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let (base, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(!base.contains(SHORT_CUT), "{base}");
    assert_eq!(read(&env.path("out"), "marker"), "other base\n");

    // The image it would answer with was removed.
    let (cached, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert!(cached.contains(SHORT_CUT), "{cached}");
    let removed = env.kiln(&["rmi", "-f", "app:1"]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let (rebuilt, _) = build(&env, &ctx, &["--build-arg", "MODE=prod"]);
    assert_eq!(read(&env.path("out"), "mode"), "prod\n", "{rebuilt}");
}

#[test]
fn no_cache_never_takes_the_short_cut() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo x > /x\n")]);
    build(&env, &ctx, &[]);
    let (progress, _) = build(&env, &ctx, &["--no-cache"]);
    assert!(!progress.contains(SHORT_CUT), "{progress}");
    assert!(progress.contains("cache disabled"), "{progress}");
}

/// What the store's files look like: (path, size, mtime) of everything in the database and
/// blob directories.
fn store_state(store: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut state = Vec::new();
    for dir in [store.to_path_buf(), store.join("blobs/sha256")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_file() {
                state.push((
                    entry.path().display().to_string(),
                    meta.len(),
                    meta.modified().unwrap(),
                ));
            }
        }
    }
    state.sort();
    state
}

#[test]
fn an_answer_from_the_record_writes_nothing_to_the_store() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY app.txt /app.txt\n"),
            ("app.txt", "one\n"),
        ],
    );
    let build = |tag: &str| env.build_ok(&["-t", tag, ctx.to_str().unwrap()]);
    build("app:1");
    assert!(build("app:1").contains(SHORT_CUT));
    let before = store_state(&env.store);
    let again = build("app:1");
    assert!(again.contains(SHORT_CUT), "{again}");
    assert_eq!(
        store_state(&env.store),
        before,
        "a no-op wrote to the store"
    );
    // A new name for the same image is a write, and still no build.
    let renamed = build("app:2");
    assert!(renamed.contains(SHORT_CUT), "{renamed}");
    let images = env.kiln(&["images", "--format", "json"]);
    assert!(
        text(&images.stdout).contains("\"Tag\":\"2\""),
        "{}",
        text(&images.stdout)
    );
}

fn plan_files(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.store.join("plans"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Stat data of files written less than a second ago is not trusted (the racy window).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn a_settled_context_is_checked_by_its_stat_plan() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY src/*.txt /in/\nCOPY data /data\n",
            ),
            ("src/a.txt", "a\n"),
            ("src/skip.md", "not matched\n"),
            ("data/x", "xxxx\n"),
        ],
    );
    settle();
    let (first, _) = build(&env, &ctx, &[]);
    assert!(!first.contains(SHORT_CUT));
    let recorded = plan_files(&env);
    assert_eq!(recorded.len(), 2, "one plan per COPY: {recorded:?}");
    let (second, _) = build(&env, &ctx, &[]);
    assert!(second.contains(SHORT_CUT), "{second}");

    // A file that is no wildcard match, edited: nothing the build reads changed.
    fs::write(ctx.join("src/skip.md"), "edited\n").unwrap();
    let (unmatched, _) = build(&env, &ctx, &[]);
    assert!(unmatched.contains(SHORT_CUT), "{unmatched}");

    // A new wildcard match appears.
    fs::write(ctx.join("src/b.txt"), "b\n").unwrap();
    let (matched, _) = build(&env, &ctx, &[]);
    assert!(!matched.contains(SHORT_CUT), "{matched}");
    assert_eq!(read(&env.path("out"), "in/b.txt"), "b\n");

    // Settled again, the record carries a new plan for the wildcard COPY; the old one is
    // gone, the unchanged `data` plan stays.
    settle();
    let (refreshed, _) = build(&env, &ctx, &[]);
    assert!(refreshed.contains(SHORT_CUT), "{refreshed}");
    let now = plan_files(&env);
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now.iter().filter(|p| recorded.contains(p)).count(), 1);

    // Same size, new content, in a copied directory.
    fs::write(ctx.join("data/x"), "yyyy\n").unwrap();
    let (edited, _) = build(&env, &ctx, &[]);
    assert!(!edited.contains(SHORT_CUT), "{edited}");
    assert_eq!(read(&env.path("out"), "data/x"), "yyyy\n");
}
