//! `kiln build --progress=...` through the real binary: what each mode writes to stderr.
//! Builds run `RUN` steps on a busybox image imported into a scratch store, so they need
//! runc and root; without them the tests say so and pass vacuously.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Env, text};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// A store holding `busybox:progress` and a context with `dockerfile`, or `None` (after
/// saying why) where containers cannot run.
fn setup(dockerfile: &str) -> Option<(Env, PathBuf, PathBuf)> {
    let env = Env::new()?;
    env.import_busybox(&env.store, "busybox:progress");
    let context = env.context("context", &[("Dockerfile", dockerfile)]);
    let store = env.store.clone();
    Some((env, store, context))
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
    let Some((_env, store, context)) = setup(LOGGING) else {
        return;
    };
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
    let Some((_env, store, context)) = setup(FAILING) else {
        return;
    };
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
    let Some((_env, store, context)) = setup(LOGGING) else {
        return;
    };
    let out = build(&store, &context, "quiet");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn rawjson_is_one_object_per_event() {
    let Some((_env, store, context)) = setup(LOGGING) else {
        return;
    };
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
    let Some((_env, store, context)) = setup(LOGGING) else {
        return;
    };
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
    let env = Env::bare();
    let context = env.context("context", &[("Dockerfile", "FROM scratch\n")]);
    let out = build(&env.store, &context, "fancy");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid progress mode \"fancy\""),
        "{}",
        text(&out.stderr)
    );
}
