//! `kiln bake` building real images: several targets as one graph, `target:` contexts,
//! failure modes (fail-fast, `--keep-going`, `--atomic`), the build cache across bakes and
//! `--metadata-file`. Every RUN runs in a runc container, so the tests need root, runc and
//! a static busybox; without them each test says so and returns.

#[path = "bake_support/mod.rs"]
mod bake_support;

use std::collections::BTreeSet;

use bake_support::Project;

/// One Dockerfile: a base stage with a random marker and three stages built on it.
const SHARED_BASE_DOCKERFILE: &str = r#"FROM busybox AS base
RUN echo "$RANDOM-$RANDOM-$RANDOM" > /shared-marker
FROM base AS one
RUN echo one > /one
FROM base AS two
RUN echo two > /two
FROM base AS three
RUN echo three > /three
"#;

fn shared_base_bake(project: &Project) {
    project.write("Dockerfile", SHARED_BASE_DOCKERFILE);
    let mut hcl = String::from("group \"default\" { targets = [\"one\", \"two\", \"three\"] }\n");
    for name in ["one", "two", "three"] {
        hcl.push_str(&format!(
            "target \"{name}\" {{\n  target = \"{name}\"\n  tags = [\"shared/{name}:latest\"]\n  \
             output = [\"type=local,dest=out/{name}\"]\n}}\n"
        ));
    }
    project.write("docker-bake.hcl", &hcl);
}

#[test]
fn shared_base_stage_runs_once_for_three_targets() {
    let Some(project) = Project::new() else {
        return;
    };
    shared_base_bake(&project);
    let bake = project.bake_ok(&[]);

    let base_run = r#"RUN echo "$RANDOM-$RANDOM-$RANDOM" > /shared-marker"#;
    let base_steps = bake.steps_for(base_run);
    assert_eq!(
        base_steps.len(),
        1,
        "the shared base RUN should appear once:\n{}",
        bake.stderr
    );
    assert!(
        base_steps[0].done(),
        "base RUN did not run:\n{}",
        bake.stderr
    );
    for name in ["one", "two", "three"] {
        let step = bake.step(&format!("RUN echo {name} > /{name}"));
        assert_eq!(step.target(), name, "step labelled with the wrong target");
        assert!(step.done(), "{name}'s RUN did not run:\n{}", bake.stderr);
    }

    let marker = project.read("out/one/shared-marker");
    assert!(marker.trim().len() > 2, "marker looks empty: {marker:?}");
    for name in ["one", "two", "three"] {
        assert_eq!(
            project.read(&format!("out/{name}/shared-marker")),
            marker,
            "{name} got a different base"
        );
        assert_eq!(
            project.read(&format!("out/{name}/{name}")),
            format!("{name}\n")
        );
    }
    assert!(
        !project.path("out/one/two").exists(),
        "one holds two's file"
    );
    assert_eq!(
        project.built_tags(),
        vec![
            "shared/one:latest",
            "shared/three:latest",
            "shared/two:latest"
        ]
    );
}

#[test]
fn identical_steps_of_different_dockerfiles_run_once() {
    let Some(project) = Project::new() else {
        return;
    };
    for name in ["x", "y"] {
        project.write(
            &format!("{name}/Dockerfile"),
            &format!("FROM busybox\nRUN echo $RANDOM$RANDOM > /m\nRUN echo {name} > /{name}\n"),
        );
    }
    project.write(
        "docker-bake.hcl",
        r#"group "default" { targets = ["x", "y"] }
target "x" {
  context = "x"
  output = ["type=local,dest=out/x"]
}
target "y" {
  context = "y"
  output = ["type=local,dest=out/y"]
}
"#,
    );
    let bake = project.bake_ok(&[]);
    assert_eq!(
        bake.steps_for("RUN echo $RANDOM$RANDOM > /m").len(),
        1,
        "{}",
        bake.stderr
    );
    assert_eq!(project.read("out/x/m"), project.read("out/y/m"));
    assert_eq!(project.read("out/y/y"), "y\n");
}

fn chain_bake(project: &Project) {
    project.write("a/Dockerfile", "FROM busybox\nRUN echo level-a > /a\n");
    project.write("b/Dockerfile", "FROM a\nRUN echo level-b > /b\n");
    project.write("c/Dockerfile", "FROM b\nRUN echo level-c > /c\n");
    project.write(
        "docker-bake.hcl",
        r#"group "default" { targets = ["a", "b", "c"] }
target "a" {
  context = "a"
  tags = ["chain/a:1"]
}
target "b" {
  context = "b"
  contexts = { a = "target:a" }
  tags = ["chain/b:1"]
  output = ["type=local,dest=out/b"]
}
target "c" {
  context = "c"
  contexts = { b = "target:b" }
  tags = ["chain/c:1"]
  output = ["type=local,dest=out/c"]
}
"#,
    );
}

#[test]
fn target_contexts_chain_three_levels() {
    let Some(project) = Project::new() else {
        return;
    };
    chain_bake(&project);
    let bake = project.bake_ok(&[]);
    for level in ["a", "b", "c"] {
        let step = bake.step(&format!("RUN echo level-{level} > /{level}"));
        assert!(step.done(), "level {level} did not run:\n{}", bake.stderr);
        assert_eq!(
            project.read(&format!("out/c/{level}")),
            format!("level-{level}\n")
        );
    }
    assert_eq!(project.read("out/b/a"), "level-a\n");
    assert!(!project.path("out/b/c").exists(), "b holds c's file");
    assert_eq!(
        project.built_tags(),
        vec!["chain/a:1", "chain/b:1", "chain/c:1"]
    );
    // The top target alone still builds the whole chain, and tags only itself.
    let only_c = Project::new().unwrap();
    chain_bake(&only_c);
    only_c.bake_ok(&["c"]);
    assert_eq!(only_c.read("out/c/a"), "level-a\n");
    assert_eq!(only_c.built_tags(), vec!["chain/c:1"]);
}

/// Targets ok1 and ok2 succeed; target "broken" (stage "fails") exits 7.
fn failing_bake(project: &Project) {
    project.write(
        "Dockerfile",
        "FROM busybox AS good1\nRUN echo ok1 > /ok1\n\
         FROM busybox AS fails\nRUN echo kaboom && exit 7\n\
         FROM busybox AS good2\nRUN sleep 1 && echo ok2 > /ok2\n",
    );
    project.write(
        "docker-bake.hcl",
        r#"group "default" { targets = ["ok1", "broken", "ok2"] }
target "ok1" {
  target = "good1"
  tags = ["kg/ok1:latest"]
  output = ["type=local,dest=out/ok1"]
}
target "broken" {
  target = "fails"
  tags = ["kg/broken:latest"]
  output = ["type=local,dest=out/broken"]
}
target "ok2" {
  target = "good2"
  tags = ["kg/ok2:latest"]
  output = ["type=local,dest=out/ok2"]
}
"#,
    );
}

const FAILING_RUN: &str = "RUN echo kaboom && exit 7";

/// The failure is reported: the step is marked ERROR in progress under the failing target,
/// and a final ERROR line names the step and the exit code.
fn assert_failure_reported(bake: &bake_support::Bake) {
    let step = bake.step(FAILING_RUN);
    assert_eq!(step.target(), "broken");
    assert!(
        step.errored(),
        "failing step not marked ERROR:\n{}",
        bake.stderr
    );
    assert!(
        bake.error_lines()
            .iter()
            .any(|l| l.contains("exit 7") && l.contains("exit code: 7")),
        "no ERROR line names the failing step:\n{}",
        bake.stderr
    );
}

#[test]
fn keep_going_builds_independent_targets() {
    let Some(project) = Project::new() else {
        return;
    };
    failing_bake(&project);
    let bake = project.bake(&["--keep-going"]);
    assert_eq!(bake.code, Some(1), "{}", bake.stderr);
    assert_failure_reported(&bake);
    assert!(
        bake.step("RUN sleep 1 && echo ok2 > /ok2").done(),
        "{}",
        bake.stderr
    );
    assert_eq!(project.built_tags(), vec!["kg/ok1:latest", "kg/ok2:latest"]);
    assert_eq!(project.read("out/ok1/ok1"), "ok1\n");
    assert_eq!(project.read("out/ok2/ok2"), "ok2\n");
    assert!(!project.path("out/broken").exists());
}

#[test]
fn keep_going_skips_targets_linked_to_a_failed_one() {
    let Some(project) = Project::new() else {
        return;
    };
    project.write("a/Dockerfile", "FROM busybox\nRUN exit 3\n");
    project.write("b/Dockerfile", "FROM a\nRUN echo b > /b\n");
    project.write("c/Dockerfile", "FROM busybox\nRUN echo c > /c\n");
    project.write(
        "docker-bake.hcl",
        r#"group "default" { targets = ["b", "c"] }
target "a" {
  context = "a"
}
target "b" {
  context = "b"
  contexts = { a = "target:a" }
  tags = ["dep/b:1"]
}
target "c" {
  context = "c"
  tags = ["dep/c:1"]
}
"#,
    );
    let bake = project.bake(&["--keep-going"]);
    assert_eq!(bake.code, Some(1), "{}", bake.stderr);
    assert!(bake.step("RUN exit 3").errored(), "{}", bake.stderr);
    assert!(
        bake.steps_for("RUN echo b > /b").iter().all(|s| !s.done()),
        "b ran on top of a failed base:\n{}",
        bake.stderr
    );
    assert_eq!(project.built_tags(), vec!["dep/c:1"]);
}

#[test]
fn fail_fast_reports_the_failure() {
    let Some(project) = Project::new() else {
        return;
    };
    failing_bake(&project);
    let bake = project.bake(&[]);
    assert_eq!(bake.code, Some(1), "{}", bake.stderr);
    assert_failure_reported(&bake);
    let tags = project.built_tags();
    assert!(!tags.contains(&"kg/broken:latest".to_string()), "{tags:?}");
    assert!(!project.path("out/broken").exists());
}

#[test]
fn failure_summary_names_the_failing_target() {
    let Some(project) = Project::new() else {
        return;
    };
    failing_bake(&project);
    let bake = project.bake(&["--keep-going"]);
    assert_eq!(bake.code, Some(1), "{}", bake.stderr);
    assert!(
        bake.error_lines()
            .iter()
            .any(|l| l.contains("exit 7") && l.contains("broken")),
        "the ERROR summary does not name target \"broken\":\n{}",
        bake.stderr
    );
}

#[test]
fn atomic_publishes_nothing_when_a_target_fails() {
    let Some(project) = Project::new() else {
        return;
    };
    failing_bake(&project);
    for flags in [&["--atomic"][..], &["--atomic", "--keep-going"][..]] {
        let bake = project.bake(flags);
        assert_eq!(bake.code, Some(1), "{flags:?}: {}", bake.stderr);
        assert_failure_reported(&bake);
        assert_eq!(
            project.built_tags(),
            Vec::<String>::new(),
            "{flags:?} tagged images"
        );
        assert!(
            !project.path("out").exists(),
            "{flags:?} exported a local output"
        );
    }
}

#[test]
fn second_identical_bake_is_all_cached() {
    let Some(project) = Project::new() else {
        return;
    };
    shared_base_bake(&project);
    let first = project.bake_ok(&[]);
    let before = project.images();
    // Unchanged, the request is answered whole from its record (bake_shortcut.rs); a
    // comment in the Dockerfile changes the request but no step, so every step is then
    // answered from the cache one by one.
    let unchanged = project.bake_ok(&[]);
    assert!(unchanged.steps.is_empty(), "{}", unchanged.stderr);
    project.write(
        "Dockerfile",
        &format!("# a comment\n{SHARED_BASE_DOCKERFILE}"),
    );
    let second = project.bake_ok(&[]);
    let after = project.images();

    let runs: Vec<_> = second.steps.iter().filter(|s| s.is_run()).collect();
    assert_eq!(runs.len(), 4, "{}", second.stderr);
    for step in runs {
        assert!(
            step.cached(),
            "{} not CACHED:\n{}",
            step.header,
            second.stderr
        );
    }
    assert!(
        !second.stderr.contains("cache miss"),
        "no-op bake missed the cache:\n{}",
        second.stderr
    );
    assert!(first.stderr.contains("cache miss"), "{}", first.stderr);
    assert_eq!(before.len(), 4, "{before:?}");
    assert_eq!(
        before, after,
        "image IDs or digests changed on a no-op bake"
    );
}

/// Three services, each a context directory with two files, a COPY and a RUN.
fn services_bake(project: &Project) {
    services_bake_with(project, true);
}

/// `services_bake`, with or without a `type=local` output per service.
fn services_bake_with(project: &Project, local_outputs: bool) {
    let mut hcl =
        String::from("group \"default\" { targets = [\"alpha\", \"beta\", \"gamma\"] }\n");
    for name in ["alpha", "beta", "gamma"] {
        project.write(&format!("svc/{name}/main.txt"), &format!("hello {name}\n"));
        project.write(&format!("svc/{name}/conf.ini"), &format!("name={name}\n"));
        project.write(
            &format!("svc/{name}/Dockerfile"),
            "FROM busybox\nCOPY . /app\nRUN cat /app/main.txt /app/conf.ini > /app/built\n",
        );
        let output = if local_outputs {
            format!("  output = [\"type=local,dest=out/{name}\"]\n")
        } else {
            String::new()
        };
        hcl.push_str(&format!(
            "target \"{name}\" {{\n  context = \"svc/{name}\"\n  tags = [\"svc/{name}:latest\"]\n{output}}}\n"
        ));
    }
    project.write("docker-bake.hcl", &hcl);
}

#[test]
fn one_changed_file_rebuilds_only_its_service() {
    let Some(project) = Project::new() else {
        return;
    };
    services_bake(&project);
    project.bake_ok(&[]);
    let before = project.images();
    project.write("svc/beta/main.txt", "hello beta, changed\n");
    let bake = project.bake_ok(&[]);
    let after = project.images();

    let of = |target: &str| -> Vec<&bake_support::Step> {
        bake.steps
            .iter()
            .filter(|s| s.target() == target && (s.is_copy() || s.is_run()))
            .collect()
    };
    let beta = of("beta");
    assert_eq!(beta.len(), 2, "{}", bake.stderr);
    for step in &beta {
        assert!(
            !step.cached() && step.done(),
            "{} did not re-run:\n{}",
            step.header,
            bake.stderr
        );
    }
    let copy = beta.iter().find(|s| s.is_copy()).unwrap();
    assert!(
        copy.misses()
            .iter()
            .any(|m| m.contains("main.txt") && m.contains("changed")),
        "COPY's cache miss does not name main.txt: {:?}\n{}",
        copy.misses(),
        bake.stderr
    );
    assert!(
        !copy.misses().iter().any(|m| m.contains("conf.ini")),
        "unchanged conf.ini blamed: {:?}",
        copy.misses()
    );
    for other in ["alpha", "gamma"] {
        let steps = of(other);
        assert_eq!(steps.len(), 2, "{}", bake.stderr);
        for step in steps {
            assert!(step.cached(), "{} re-ran:\n{}", step.header, bake.stderr);
            assert!(
                step.misses().is_empty(),
                "{}: {:?}",
                step.header,
                step.misses()
            );
        }
        let tag = format!("svc/{other}:latest");
        assert_eq!(before[&tag], after[&tag], "{other}'s image changed");
    }
    assert_ne!(before["svc/beta:latest"], after["svc/beta:latest"]);
    assert_eq!(
        project.read("out/beta/app/built"),
        "hello beta, changed\nname=beta\n"
    );
}

#[test]
fn metadata_file_has_a_digest_per_target() {
    let Some(project) = Project::new() else {
        return;
    };
    services_bake(&project);
    project.bake_ok(&["--metadata-file", "meta.json"]);
    let meta: serde_json::Value = serde_json::from_str(&project.read("meta.json")).unwrap();
    let object = meta.as_object().expect("metadata is a JSON object");
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["alpha", "beta", "gamma"]));
    let images = project.images();
    let mut digests = BTreeSet::new();
    for (name, entry) in object {
        let digest = entry["containerimage.digest"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no containerimage.digest: {entry}"));
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}: bad digest {digest}"
        );
        let tag = format!("svc/{name}:latest");
        assert_eq!(
            images[&tag].1, digest,
            "{name}'s digest is not its tagged image's"
        );
        digests.insert(digest.to_string());
    }
    assert_eq!(digests.len(), 3, "targets share a digest: {digests:?}");
}

#[test]
fn no_cache_reruns_every_step() {
    let Some(project) = Project::new() else {
        return;
    };
    services_bake(&project);
    project.bake_ok(&[]);
    let bake = project.bake_ok(&["--no-cache"]);
    let steps: Vec<_> = bake
        .steps
        .iter()
        .filter(|s| s.is_copy() || s.is_run())
        .collect();
    assert_eq!(steps.len(), 6, "{}", bake.stderr);
    for step in steps {
        assert!(
            step.done() && !step.cached(),
            "{} did not re-run:\n{}",
            step.header,
            bake.stderr
        );
    }
}

#[test]
fn concurrent_bakes_share_one_store() {
    let Some(project) = Project::new() else {
        return;
    };
    // No local outputs: three processes racing to one directory is not what is tested.
    services_bake_with(&project, false);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = std::process::Command::new(bake_support::KILN);
            cmd.arg("--root")
                .arg(&project.store)
                .args(["bake", "--progress=plain"])
                .current_dir(project.dir.path())
                .env_remove("KILN_ROOT")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent bake failed:\n{}",
            bake_support::text(&out.stderr)
        );
    }
    assert_eq!(
        project.built_tags(),
        vec!["svc/alpha:latest", "svc/beta:latest", "svc/gamma:latest"]
    );
    // Racing bakes may each have run a step (RUN output is not reproducible), so the tags
    // may name any run's result; what was cached must be whole and stable from now on.
    let again = project.bake_ok(&[]);
    assert!(!again.stderr.contains("cache miss"), "{}", again.stderr);
    let images = project.images();
    let third = project.bake_ok(&[]);
    assert!(!third.stderr.contains("cache miss"), "{}", third.stderr);
    assert_eq!(project.images(), images);
}

#[test]
fn check_and_call_answer_per_target_without_building() {
    let Some(project) = Project::new() else {
        return;
    };
    project.write(
        "docker-bake.hcl",
        "target \"good\" {\n  dockerfile = \"good.Dockerfile\"\n  tags = [\"kg/good\"]\n}\n\
         target \"lint\" {\n  dockerfile = \"lint.Dockerfile\"\n  tags = [\"kg/lint\"]\n}\n",
    );
    project.write(
        "good.Dockerfile",
        "FROM busybox AS final\nRUN echo ok > /ok\n",
    );
    project.write(
        "lint.Dockerfile",
        "# check=error=true\nFROM busybox as final\nRUN echo lint > /lint\n",
    );
    let checked = project.bake(&["--check", "good", "lint"]);
    assert_eq!(
        checked.code,
        Some(1),
        "{}{}",
        checked.stdout,
        checked.stderr
    );
    assert!(
        checked.stdout.contains("target good:"),
        "{}",
        checked.stdout
    );
    assert!(
        checked.stdout.contains("FromAsCasing"),
        "{}",
        checked.stdout
    );
    assert!(project.built_tags().is_empty(), "--check built something");

    let outline = project.bake(&["--call=targets", "good"]);
    assert_eq!(outline.code, Some(0), "{}", outline.stderr);
    assert!(outline.stdout.contains("final"), "{}", outline.stdout);
    assert!(project.built_tags().is_empty());
}

/// A bake file with only `target "default" {}` builds that target when none is named,
/// as buildx does (its implicit group `default` holds the target of the same name).
#[test]
fn a_lone_default_target_is_built_by_default() {
    let Some(project) = Project::new() else {
        return;
    };
    project.write("Dockerfile", "FROM busybox\nRUN echo lone > /lone\n");
    project.write(
        "docker-bake.hcl",
        "target \"default\" {\n  output = [\"type=local,dest=out\"]\n}\n",
    );
    let bake = project.bake_ok(&[]);
    assert!(bake.step("RUN echo lone > /lone").done(), "{}", bake.stderr);
    assert_eq!(project.read("out/lone"), "lone\n");
}
