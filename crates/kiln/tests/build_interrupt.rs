//! SIGINT during a RUN: kiln stops quickly, fails, and leaves no mounts, containers or
//! temporary directories behind; the store still builds afterwards.

mod support;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Env, KILN, read, text};

/// Lines of our mountinfo that mention `root` (overlays name their layer dirs in the
/// options; binds and tmpfs name their mount point).
fn mounts_mentioning(root: &Path) -> Vec<String> {
    let root = root.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(root))
        .map(str::to_owned)
        .collect()
}

#[test]
fn sigint_during_run_cleans_up_and_the_store_still_works() {
    interrupted(libc::SIGINT);
}

#[test]
fn sigterm_during_run_cleans_up_and_the_store_still_works() {
    interrupted(libc::SIGTERM);
}

fn interrupted(signal: libc::c_int) {
    let Some(env) = Env::new() else { return };
    // A duration unique to this test, to find its container processes by command line.
    let nap = format!("sleep {}", 30 + signal);
    let dockerfile = "FROM busybox AS a\n\
             RUN echo a-sleeping && sleep 37 && echo woke > /woke\n\
             FROM busybox AS b\n\
             RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t \
                 --mount=type=bind,source=.,target=/ctx echo b-sleeping && sleep 37\n\
             FROM busybox\n\
             COPY --from=a /woke /a\n\
             COPY --from=b /bin/sh /b\n"
        .replace("sleep 37", &nap);
    let ctx = env.context("ctx", &[("Dockerfile", &dockerfile)]);
    let mut child = Command::new(KILN)
        .arg("--root")
        .arg(&env.store)
        .args(["build", "--progress=plain", "--output"])
        .arg(format!("type=local,dest={}", env.path("out").display()))
        .arg(&ctx)
        .env_remove("KILN_ROOT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Read progress on a thread; tell the test once the RUN has printed.
    let mut stderr = child.stderr.take().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut told = false;
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            let seen = text(&all);
            let has = |m: &str| seen.lines().any(|l| l.ends_with(m));
            if !told && has(" a-sleeping") && has(" b-sleeping") {
                told = true;
                let _ = started_tx.send(());
            }
        }
        text(&all)
    });
    let started = started_rx.recv_timeout(Duration::from_secs(30)).is_ok();
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the RUNs never started:\n{}", reader.join().unwrap());
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kiln still running 10s after signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let progress = reader.join().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        sent.elapsed()
    );
    assert!(
        !status.success(),
        "an interrupted build succeeded:\n{progress}"
    );
    assert!(!env.path("out").join("woke").exists());

    // No container process survives kiln.
    let survivors: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| text(&c).replace('\0', " "))
        .filter(|c| c.trim_end() == nap)
        .collect();
    assert!(survivors.is_empty(), "processes left: {survivors:?}");
    let mounts = mounts_mentioning(env.dir.path());
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
    let runc_root = env.store.join("runc");
    if runc_root.exists() {
        let out = Command::new("runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["list", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "", "containers left behind");
    }
    let tmp = env.store.join("tmp");
    if tmp.exists() {
        let left: Vec<_> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "store tmp/ not cleaned: {left:?}");
    }

    // The same store builds afterwards.
    let ctx2 = env.context(
        "ctx2",
        &[("Dockerfile", "FROM busybox\nRUN echo after > /after\n")],
    );
    let out = env.path("out2");
    env.build_ok(&[
        "--output",
        &format!("type=local,dest={}", out.display()),
        ctx2.to_str().unwrap(),
    ]);
    assert_eq!(read(&out, "after"), "after\n");
}

#[test]
fn a_failing_branch_cancels_running_siblings() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS slow\n\
             RUN sleep 43\n\
             FROM busybox AS bad\n\
             RUN sleep 0.5 && exit 3\n\
             FROM busybox\n\
             COPY --from=slow /bin/sh /s\n\
             COPY --from=bad /bin/sh /b\n",
        )],
    );
    let start = Instant::now();
    let out = env.build(&[ctx.to_str().unwrap()]);
    let took = start.elapsed();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("exit code: 3"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: the sibling RUN was not cancelled"
    );
    let mounts = mounts_mentioning(env.dir.path());
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
}
