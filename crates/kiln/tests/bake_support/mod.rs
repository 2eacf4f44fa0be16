//! Helpers for the `kiln bake` execution tests: a throw-away project directory with its own
//! store holding a busybox base image, the real kiln binary run inside it, and readers for
//! what it printed (plain progress, `kiln images --format json`) and exported.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into the base image; enough for the RUN lines of these tests.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ls", "mkdir", "true", "false", "test", "printf", "tr", "wc",
];

fn works(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether RUN can really execute here (root, runc, busybox, tar). Prints why not.
pub fn prerequisites() -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_string());
    }
    if !Path::new(BUSYBOX).is_file() {
        missing.push(BUSYBOX.to_string());
    }
    if !works("runc", "--version") {
        missing.push("runc".to_string());
    }
    if !works("tar", "--version") {
        missing.push("tar".to_string());
    }
    if !missing.is_empty() {
        eprintln!("skipping: kiln bake execution tests need {missing:?}");
    }
    missing.is_empty()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project directory (the bake working directory) and a store with `busybox:latest`.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
}

impl Project {
    /// A fresh project, or `None` (after printing why) when RUN cannot execute here.
    pub fn new() -> Option<Project> {
        if !prerequisites() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("kiln-bake-exec-")
            .tempdir()
            .unwrap();
        let store = dir.path().join(".store");
        let project = Project { dir, store };
        project.import_busybox();
        Some(project)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn import_busybox(&self) {
        let rootfs = self.path(".rootfs");
        for d in ["bin", "etc", "tmp"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let tar = self.path(".rootfs.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar failed: {}", text(&out.stderr));
        let out = self.kiln(&["import", tar.to_str().unwrap(), "busybox:latest"]);
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
    }

    /// Writes `contents` to `rel` inside the project (parents created).
    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    /// Runs kiln against this project's store, from the project directory.
    pub fn kiln(&self, args: &[&str]) -> Output {
        Command::new(KILN)
            .arg("--root")
            .arg(&self.store)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("KILN_ROOT")
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap()
    }

    /// `kiln bake --progress=plain ARGS...`; its result with the progress parsed.
    pub fn bake(&self, args: &[&str]) -> Bake {
        let mut full = vec!["bake", "--progress=plain"];
        full.extend_from_slice(args);
        let out = self.kiln(&full);
        let stderr = text(&out.stderr);
        Bake {
            code: out.status.code(),
            stdout: text(&out.stdout),
            steps: parse_progress(&stderr),
            stderr,
        }
    }

    /// Like `bake`, failing the test unless kiln exits 0.
    pub fn bake_ok(&self, args: &[&str]) -> Bake {
        let bake = self.bake(args);
        assert_eq!(
            bake.code,
            Some(0),
            "kiln bake {args:?} failed:\n{}",
            bake.stderr
        );
        bake
    }

    /// Every tagged image of the store: "repo:tag" -> (full image ID, manifest digest).
    pub fn images(&self) -> BTreeMap<String, (String, String)> {
        let out = self.kiln(&["images", "--format", "json", "--no-trunc"]);
        assert!(out.status.success(), "images failed: {}", text(&out.stderr));
        let mut images = BTreeMap::new();
        for line in text(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("kiln images printed non-JSON {line:?}: {e}"));
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            images.insert(
                format!("{}:{}", field("Repository"), field("Tag")),
                (field("ID"), field("Digest")),
            );
        }
        images
    }

    /// The store's tags other than the imported base.
    pub fn built_tags(&self) -> Vec<String> {
        self.images()
            .into_keys()
            .filter(|t| t != "busybox:latest")
            .collect()
    }

    /// Contents of a file a `type=local` export wrote.
    pub fn read(&self, rel: &str) -> String {
        let path = self.path(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }
}

/// One `#N` block of plain progress: its header line and everything printed under it.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: u32,
    /// "[target] [stage i/n] INSTRUCTION" (or "[target] FROM ...", "[target] context").
    pub header: String,
    pub lines: Vec<String>,
}

impl Step {
    /// The bake target the step is labelled with.
    pub fn target(&self) -> &str {
        self.header
            .strip_prefix('[')
            .and_then(|h| h.split_once(']'))
            .map(|(t, _)| t)
            .unwrap_or_default()
    }

    pub fn is_run(&self) -> bool {
        self.header.contains("] RUN ")
    }

    pub fn is_copy(&self) -> bool {
        self.header.contains("] COPY ")
    }

    pub fn cached(&self) -> bool {
        self.lines.iter().any(|l| l == "CACHED")
    }

    pub fn done(&self) -> bool {
        self.lines.iter().any(|l| l.starts_with("DONE"))
    }

    pub fn errored(&self) -> bool {
        self.lines.iter().any(|l| l.starts_with("ERROR"))
    }

    /// The reasons of its `cache miss: ...` log lines.
    pub fn misses(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.split_once("cache miss: ").map(|(_, r)| r))
            .collect()
    }
}

/// Groups plain progress into steps, in order of first appearance.
pub fn parse_progress(stderr: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((num, body)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(id) = num.parse::<u32>() else {
            continue;
        };
        match steps.iter_mut().find(|s| s.id == id) {
            Some(step) => step.lines.push(body.to_string()),
            None => steps.push(Step {
                id,
                header: body.to_string(),
                lines: Vec::new(),
            }),
        }
    }
    steps
}

/// What one `kiln bake` run did.
pub struct Bake {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub steps: Vec<Step>,
}

impl Bake {
    /// Steps whose header ends with `instruction` (e.g. "RUN echo one > /one").
    pub fn steps_for(&self, instruction: &str) -> Vec<&Step> {
        self.steps
            .iter()
            .filter(|s| s.header.ends_with(instruction))
            .collect()
    }

    /// The one step for `instruction`; fails the test if there is not exactly one.
    pub fn step(&self, instruction: &str) -> &Step {
        let found = self.steps_for(instruction);
        assert_eq!(
            found.len(),
            1,
            "expected one step for {instruction:?}, progress:\n{}",
            self.stderr
        );
        found[0]
    }

    /// The `ERROR: ...` summary lines kiln prints at the end (not the `#N ERROR` ones).
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("ERROR:"))
            .collect()
    }
}
