//! Cancelling a running step and cleaning up after a kiln process that was killed.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{RUNC, can_run_containers, fixture};
use kiln_store::Store;
use kiln_worker::{CancelToken, Error, ProcessSpec, RuncExecutor, Snapshotter, cleanup_stale};

#[test]
fn cancel_mid_run_leaves_nothing_behind() {
    if !can_run_containers("cancel_mid_run_leaves_nothing_behind") {
        return;
    }
    let f = fixture();
    let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
    let cancel = CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let mut lines = Vec::new();
    let err = f
        .executor
        .run(
            active.rootfs(),
            &ProcessSpec::new(["sh", "-c", "echo started; sleep 30"]),
            &cancel,
            &mut |_, l| lines.push(l.to_owned()),
        )
        .unwrap_err();
    canceller.join().unwrap();
    let took = started.elapsed();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    assert_eq!(lines, ["started"]);
    assert_eq!(f.runc_containers(), "", "runc state left");
    assert!(
        !f.tmp_entries().iter().any(|e| e.starts_with("run-")),
        "bundle left: {:?}",
        f.tmp_entries()
    );
    f.snapshotter.abort(active).unwrap();
    assert!(
        f.mounts_in_store().is_empty(),
        "mounts left: {:?}",
        f.mounts_in_store()
    );
    assert!(f.tmp_entries().is_empty(), "{:?}", f.tmp_entries());
    println!("cancel took {took:?} (cancel requested after 500ms)");
}

#[test]
fn already_cancelled_token_runs_nothing() {
    if !can_run_containers("already_cancelled_token_runs_nothing") {
        return;
    }
    let f = fixture();
    let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = f
        .executor
        .run(
            active.rootfs(),
            &ProcessSpec::new(["true"]),
            &cancel,
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled));
    drop(active); // dropping an active mount cleans it up too
    assert!(f.mounts_in_store().is_empty());
    assert!(f.tmp_entries().is_empty(), "{:?}", f.tmp_entries());
}

const CHILD_ROOT: &str = "KILN_WORKER_TEST_CHILD_ROOT";
const CHILD_BASE: &str = "KILN_WORKER_TEST_CHILD_BASE";

/// Child process entry: prepares a mount and runs a long container until killed.
#[test]
fn child_process_entry() {
    let (Ok(root), Ok(base)) = (std::env::var(CHILD_ROOT), std::env::var(CHILD_BASE)) else {
        return;
    };
    let store = Arc::new(Store::open(&root).unwrap());
    let snapshotter = Snapshotter::new(Arc::clone(&store));
    let active = snapshotter.prepare(Some(&base)).unwrap();
    let exec = RuncExecutor::new(&store).with_runc_binary(RUNC);
    let _ = exec.run(
        active.rootfs(),
        &ProcessSpec::new(["sleep", "60"]),
        &CancelToken::new(),
        &mut |_, _| {},
    );
}

#[test]
fn stale_cleanup_after_killed_kiln_process() {
    if !can_run_containers("stale_cleanup_after_killed_kiln_process") {
        return;
    }
    let f = fixture();
    // A live step of our own must survive the cleanup.
    let ours = f.snapshotter.prepare(Some(&f.base)).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ROOT, f.store.root())
        .env(CHILD_BASE, &f.base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f.runc_containers().contains("running") && f.runc_containers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "child never started its container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(
        f.runc_containers(),
        "",
        "the container should outlive its killed kiln"
    );
    assert_eq!(
        f.mounts_in_store().len(),
        2,
        "ours and the dead process's mounts"
    );

    let report = cleanup_stale(&f.store, &f.executor).unwrap();
    assert_eq!(report.containers, 1, "{report:?}");
    assert_eq!(report.active_snapshots, 1, "{report:?}");
    assert_eq!(f.runc_containers(), "");
    assert_eq!(
        f.mounts_in_store(),
        [ours.rootfs().to_path_buf()],
        "only our live mount may remain"
    );
    assert!(ours.rootfs().join("bin/busybox").exists());
    f.snapshotter.abort(ours).unwrap();
    assert!(f.tmp_entries().is_empty(), "{:?}", f.tmp_entries());
    assert_eq!(
        cleanup_stale(&f.store, &f.executor).unwrap(),
        Default::default()
    );
}

#[test]
fn cancel_at_any_moment_of_startup_cleans_up() {
    if !can_run_containers("cancel_at_any_moment_of_startup_cleans_up") {
        return;
    }
    let f = fixture();
    for delay_ms in [0u64, 2, 5, 10, 20, 30, 45, 70] {
        let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
        let cancel = CancelToken::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay_ms));
                cancel.cancel();
            })
        };
        let started = Instant::now();
        let result = f.executor.run(
            active.rootfs(),
            &ProcessSpec::new(["sleep", "30"]),
            &cancel,
            &mut |_, _| {},
        );
        canceller.join().unwrap();
        assert!(
            matches!(result, Err(Error::Cancelled)),
            "delay {delay_ms}ms: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "delay {delay_ms}ms took {:?}",
            started.elapsed()
        );
        assert_eq!(
            f.runc_containers(),
            "",
            "delay {delay_ms}ms left a container"
        );
        f.snapshotter.abort(active).unwrap();
        assert!(
            f.mounts_in_store().is_empty(),
            "delay {delay_ms}ms left mounts"
        );
        assert!(
            f.tmp_entries().is_empty(),
            "delay {delay_ms}ms left {:?}",
            f.tmp_entries()
        );
    }
}
