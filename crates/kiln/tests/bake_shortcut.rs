//! `kiln bake`'s whole-request short cut: an unchanged bake answers every target from the
//! record of the last one without planning (it says so on stderr and shows no steps),
//! and any change to what a target depends on — a context file, a bake variable, the
//! base image, the bake file — sends it the long way and rebuilds correctly.

#[path = "bake_support/mod.rs"]
mod bake_support;

use std::fs;
use std::process::Command;

use bake_support::{KILN, Project, text};

const SHORT_CUT: &str = "nothing changed since the last bake of these targets";

const BAKE_FILE: &str = r#"variable "GREETING" { default = "hello" }
group "default" { targets = ["a", "b"] }
target "a" {
  context = "a"
  args = { GREETING = GREETING }
  tags = ["sc/a:latest"]
  output = ["type=local,dest=out/a"]
}
target "b" {
  context = "b"
  tags = ["sc/b:latest"]
  output = ["type=local,dest=out/b"]
}
"#;

fn project() -> Option<Project> {
    let project = Project::new()?;
    project.write("docker-bake.hcl", BAKE_FILE);
    project.write(
        "a/Dockerfile",
        "FROM busybox\nARG GREETING\nCOPY file.txt /file.txt\nRUN echo $GREETING > /greeting\n",
    );
    project.write("a/file.txt", "a1\n");
    project.write(
        "b/Dockerfile",
        "FROM busybox\nCOPY file.txt /file.txt\nRUN cat /file.txt /bin/marker > /seen 2>/dev/null; true\n",
    );
    project.write("b/file.txt", "b1\n");
    Some(project)
}

/// `kiln bake --progress=plain` with extra environment variables; (stderr, success).
fn bake_with_env(project: &Project, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(KILN);
    command
        .arg("--root")
        .arg(&project.store)
        .args(["bake", "--progress=plain"])
        .current_dir(project.dir.path())
        .env_remove("KILN_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("GREETING");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "kiln bake failed:\n{stderr}");
    stderr
}

#[test]
fn an_unchanged_bake_is_answered_from_its_record() {
    let Some(project) = project() else { return };
    let first = project.bake_ok(&[]);
    assert!(!first.stderr.contains(SHORT_CUT), "{}", first.stderr);
    let images = project.images();
    fs::remove_dir_all(project.path("out")).unwrap();
    let metadata = project.path("meta.json");
    let second = project.bake_ok(&["--metadata-file", metadata.to_str().unwrap()]);
    assert!(second.stderr.contains(SHORT_CUT), "{}", second.stderr);
    assert!(
        second.steps.is_empty(),
        "planned anyway:\n{}",
        second.stderr
    );
    assert_eq!(project.images(), images, "the same images answer");
    // Outputs are written again from the recorded images.
    assert_eq!(project.read("out/a/greeting"), "hello\n");
    assert_eq!(project.read("out/b/file.txt"), "b1\n");
    let meta: serde_json::Value = serde_json::from_str(&project.read("meta.json")).unwrap();
    for name in ["a", "b"] {
        let digest = meta[name]["containerimage.digest"].as_str().unwrap_or("");
        assert_eq!(digest, images[&format!("sc/{name}:latest")].1, "{meta}");
    }
    // A subset of the targets is another request.
    let only_a = project.bake_ok(&["a"]);
    assert!(!only_a.stderr.contains(SHORT_CUT), "{}", only_a.stderr);
}

#[test]
fn a_changed_context_file_variable_base_or_bake_file_rebuilds() {
    let Some(project) = project() else { return };
    project.bake_ok(&[]);
    assert!(project.bake_ok(&[]).stderr.contains(SHORT_CUT));

    // One target's context file.
    project.write("b/file.txt", "b2\n");
    let changed = project.bake_ok(&[]);
    assert!(!changed.stderr.contains(SHORT_CUT), "{}", changed.stderr);
    assert_eq!(project.read("out/b/file.txt"), "b2\n");
    assert!(project.bake_ok(&[]).stderr.contains(SHORT_CUT));

    // A bake variable, from the environment.
    let variable = bake_with_env(&project, &[("GREETING", "bonjour")]);
    assert!(!variable.contains(SHORT_CUT), "{variable}");
    assert_eq!(project.read("out/a/greeting"), "bonjour\n");
    let again = bake_with_env(&project, &[("GREETING", "bonjour")]);
    assert!(again.contains(SHORT_CUT), "{again}");

    // The base image: busybox:latest now names another image.
    let other = project.path(".other");
    fs::create_dir_all(other.join("bin")).unwrap();
    fs::copy("/bin/busybox", other.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", other.join("bin").join(applet)).unwrap();
    }
    fs::write(other.join("bin/marker"), "other base\n").unwrap();
    let tar = project.path(".other.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&other)
        .args(["-cf", tar.to_str().unwrap(), "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let imported = project.kiln(&["import", tar.to_str().unwrap(), "busybox:latest"]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let base = project.bake_ok(&[]);
    assert!(!base.stderr.contains(SHORT_CUT), "{}", base.stderr);
    assert_eq!(project.read("out/b/seen"), "b2\nother base\n");

    // The bake file.
    project.write(
        "docker-bake.hcl",
        &BAKE_FILE.replace("tags = [\"sc/b:latest\"]", "tags = [\"sc/b:2\"]"),
    );
    let edited = project.bake_ok(&[]);
    assert!(!edited.stderr.contains(SHORT_CUT), "{}", edited.stderr);
    assert!(project.images().contains_key("sc/b:2"));
    assert!(project.bake_ok(&[]).stderr.contains(SHORT_CUT));
}
