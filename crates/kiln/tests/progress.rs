//! `kiln build --progress=...` through the real binary: what each mode writes to stderr.
//! Builds run `RUN` steps on a busybox image imported into a scratch store, so they need
//! runc and root; without them the tests say so and pass vacuously.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
const BUSYBOX: &str = "/bin/busybox";

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kiln-progress-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn can_run_containers() -> bool {
    let runc = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let root = fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let ok = runc && root && Path::new(BUSYBOX).is_file();
    if !ok {
        eprintln!("skipping: needs root, runc and {BUSYBOX}");
    }
    ok
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A store holding `busybox:progress` and a context with `dockerfile`.
fn setup(scratch: &Scratch, dockerfile: &str) -> (PathBuf, PathBuf) {
    let rootfs = scratch.0.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    let tar = scratch.0.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let store = scratch.0.join("store");
    let out = Command::new(KILN)
        .arg("--root")
        .arg(&store)
        .arg("import")
        .arg(&tar)
        .arg("busybox:progress")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let context = scratch.0.join("context");
    fs::create_dir_all(&context).unwrap();
    fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    (store, context)
}

fn build(store: &Path, context: &Path, progress: &str) -> Output {
    Command::new(KILN)
        .arg("--root")
        .arg(store)
        .args(["build", "--progress", progress])
        .arg(context)
        .env_remove("KILN_ROOT")
        .output()
        .unwrap()
}

const LOGGING: &str = "FROM busybox:progress\nRUN echo first && sleep 0.2 && echo second\n";
const FAILING: &str = "FROM busybox:progress\nRUN echo about to fail && exit 3\n";

/// Step numbers in the order lines mention them.
fn numbers(stderr: &str) -> Vec<usize> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix('#')?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn plain_numbers_steps_and_times_log_lines() {
    if !can_run_containers() {
        return;
    }
    let scratch = Scratch::new("plain");
    let (store, context) = setup(&scratch, LOGGING);
    let out = build(&store, &context, "plain");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for line in stderr.lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with('#'), "{line:?} in\n{stderr}");
    }
    let seen = numbers(&stderr);
    let mut first_seen: Vec<usize> = Vec::new();
    for n in seen {
        if !first_seen.contains(&n) {
            first_seen.push(n);
        }
    }
    let expected: Vec<usize> = (1..=first_seen.len()).collect();
    assert_eq!(first_seen, expected, "numbered in start order:\n{stderr}");
    let run = stderr
        .lines()
        .find(|l| l.ends_with("RUN echo first && sleep 0.2 && echo second"))
        .unwrap_or_else(|| panic!("no RUN step in\n{stderr}"));
    let n = run.split(' ').next().unwrap();
    let first = stderr
        .lines()
        .find(|l| l.starts_with(&format!("{n} ")) && l.ends_with(" first"))
        .unwrap_or_else(|| panic!("no log line in\n{stderr}"));
    let offset: f64 = first.split(' ').nth(1).unwrap().parse().unwrap();
    assert!((0.0..60.0).contains(&offset), "{first}");
    let done = stderr
        .lines()
        .find(|l| l.starts_with(&format!("{n} DONE ")))
        .unwrap_or_else(|| panic!("no DONE in\n{stderr}"));
    let secs: f64 = done
        .trim_start_matches(&format!("{n} DONE "))
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(secs >= 0.2, "{done}");
}

#[test]
fn plain_and_quiet_report_the_failing_step() {
    if !can_run_containers() {
        return;
    }
    let scratch = Scratch::new("fail");
    let (store, context) = setup(&scratch, FAILING);
    let out = build(&store, &context, "plain");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('#') && l.contains(" ERROR: ") && l.contains("exit code: 3")),
        "{stderr}"
    );
    let out = build(&store, &context, "quiet");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("RUN echo about to fail && exit 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" about to fail\n"),
        "the log tail: {stderr}"
    );
    assert!(!stderr.contains(" DONE "), "only the failure: {stderr}");
}

#[test]
fn quiet_success_prints_no_progress() {
    if !can_run_containers() {
        return;
    }
    let scratch = Scratch::new("quiet");
    let (store, context) = setup(&scratch, LOGGING);
    let out = build(&store, &context, "quiet");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn rawjson_is_one_object_per_event() {
    if !can_run_containers() {
        return;
    }
    let scratch = Scratch::new("rawjson");
    let (store, context) = setup(&scratch, LOGGING);
    let out = build(&store, &context, "rawjson");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let run: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| {
            r["name"]
                .as_str()
                .is_some_and(|n| n.contains("RUN echo first"))
        })
        .collect();
    assert_eq!(run.first().unwrap()["status"], "started", "{stderr}");
    assert_eq!(run.last().unwrap()["status"], "done", "{stderr}");
    // The engine may add lines of its own (cache decisions); the step's output is in order.
    let logs: Vec<&str> = run
        .iter()
        .filter_map(|r| r["log"].as_str())
        .filter(|l| ["first", "second"].contains(l))
        .collect();
    assert_eq!(logs, ["first", "second"], "{stderr}");
    assert!(
        run.iter()
            .all(|r| r["time"].is_string() && r["vertex"] == run[0]["vertex"])
    );
}

#[test]
fn tty_redraws_and_ends_with_a_summary() {
    if !can_run_containers() {
        return;
    }
    let scratch = Scratch::new("tty");
    let (store, context) = setup(&scratch, LOGGING);
    let out = build(&store, &context, "tty");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("\x1b["), "cursor movement: {stderr:?}");
    assert!(stderr.contains("[+] Building"), "{stderr:?}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.ends_with("FINISHED"), "{stderr:?}");
}

#[test]
fn an_unknown_mode_is_a_usage_error() {
    let scratch = Scratch::new("bogus");
    let context = scratch.0.join("context");
    fs::create_dir_all(&context).unwrap();
    fs::write(context.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = build(&scratch.0.join("store"), &context, "fancy");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid progress mode \"fancy\""),
        "{}",
        text(&out.stderr)
    );
}
