//! Several kiln processes building at once against one store: every build succeeds, each
//! image holds what its own Dockerfile wrote, shared work is reused, and a killed build
//! leaves nothing a later build could mistake for a finished result.

mod support;

use std::process::{Command, Stdio};

use support::{Env, read, text};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// Four Dockerfiles sharing a base stage, each adding its own file.
fn contexts(env: &Env) -> Vec<std::path::PathBuf> {
    (0..4)
        .map(|i| {
            let dockerfile = format!(
                "FROM busybox AS base\nRUN echo shared > /shared && sleep 1\n\
                 FROM base\nRUN echo build-{i} > /mine && cat /shared >> /mine\n"
            );
            env.context(&format!("ctx{i}"), &[("Dockerfile", dockerfile.as_str())])
        })
        .collect()
}

#[test]
fn four_processes_build_at_once_on_one_store() {
    let Some(env) = Env::new() else { return };
    let contexts = contexts(&env);
    let children: Vec<_> = contexts
        .iter()
        .enumerate()
        .map(|(i, ctx)| {
            let out = env.path(&format!("out{i}"));
            Command::new(KILN)
                .arg("--root")
                .arg(&env.store)
                .args(["build", "--progress=plain", "-t"])
                .arg(format!("concurrent:{i}"))
                .arg("--output")
                .arg(format!("type=local,dest={}", out.display()))
                .arg(ctx)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "build {i} failed:\n{}",
            text(&output.stderr)
        );
        let out = env.path(&format!("out{i}"));
        assert_eq!(read(&out, "mine"), format!("build-{i}\nshared\n"));
    }
    let images = env.kiln(&["images"]);
    let listing = text(&images.stdout);
    let tagged = listing
        .lines()
        .filter(|line| line.starts_with("concurrent "))
        .count();
    assert_eq!(tagged, 4, "{listing}");
    // Everything is cached now, whichever process recorded it.
    for ctx in &contexts {
        let progress = env.build_ok(&[ctx.to_str().unwrap()]);
        assert!(!progress.contains("cache miss"), "{progress}");
    }
    support::assert_store_tmp_clean(&env.store);
}

#[test]
fn a_killed_build_leaves_no_result_behind() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "killed",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo partial > /p && sleep 30 && echo done > /d\n",
        )],
    );
    for attempt in 0..3 {
        let mut child = Command::new(KILN)
            .arg("--root")
            .arg(&env.store)
            .args(["build", "--progress=plain"])
            .arg(&ctx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at different points: early, while runc starts, while the step runs.
        std::thread::sleep(std::time::Duration::from_millis(150 + 400 * attempt));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // The next build on the same store cleans up after the killed ones and must run the
    // step for real: no record of the interrupted step may exist.
    let fixed = env.context(
        "fixed",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo partial > /p && echo done > /d\n",
        )],
    );
    let out = env.path("out");
    let progress = env.build_ok(&[
        "--output",
        &format!("type=local,dest={}", out.display()),
        fixed.to_str().unwrap(),
    ]);
    assert!(progress.contains("cache miss"), "{progress}");
    assert_eq!(read(&out, "d"), "done\n");
    support::assert_store_tmp_clean(&env.store);
    let listed = Command::new("runc")
        .args(["--root"])
        .arg(env.store.join("runc"))
        .arg("list")
        .output()
        .unwrap();
    let containers = text(&listed.stdout);
    assert!(
        containers.lines().count() <= 1,
        "containers left behind:\n{containers}"
    );
}

/// Delays spread over a build's life, varied per run without a random-number crate.
fn kill_delays(count: u64) -> Vec<u64> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    (0..count)
        .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 97_531) >> 7) % 1_200)
        .collect()
}

#[test]
fn builds_killed_at_random_points_never_leave_a_wrong_result() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY input.txt /input.txt\n\
                 RUN sleep 0.3 && tr a-z A-Z < /input.txt > /upper.txt\n\
                 RUN sleep 0.3 && wc -c < /upper.txt > /count.txt\n\
                 COPY input.txt /again.txt\n",
            ),
            ("input.txt", "hello kiln\n"),
        ],
    );
    for delay in kill_delays(8) {
        let mut child = Command::new(KILN)
            .arg("--root")
            .arg(&env.store)
            .args(["build", "--progress=quiet", "-t", "killed:1"])
            .arg(&ctx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        child.wait().unwrap();
    }
    // Whatever the killed builds recorded (nothing, or whole steps), a build now must
    // give exactly the files a clean build gives.
    let out = env.path("out");
    env.build_ok(&[
        "--output",
        &format!("type=local,dest={}", out.display()),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(read(&out, "upper.txt"), "HELLO KILN\n");
    assert_eq!(read(&out, "count.txt").trim(), "11");
    assert_eq!(read(&out, "again.txt"), "hello kiln\n");
    support::assert_store_tmp_clean(&env.store);
}
