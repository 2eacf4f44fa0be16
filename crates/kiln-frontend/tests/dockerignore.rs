//! Choosing and loading the ignore file for a build, against real directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_frontend::dockerignore::{DockerignoreError, load_for_build};

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "kiln-dockerignore-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Self(path)
    }

    fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn dockerfile_specific_ignore_file_takes_precedence() {
    let ctx = ScratchDir::new();
    ctx.write(".dockerignore", "from-context\n");
    let dockerfile = ctx.write("build/app.Dockerfile", "FROM scratch\n");
    ctx.write(
        "build/app.Dockerfile.dockerignore",
        "from-dockerfile\n!keep\n",
    );

    let loaded = load_for_build(ctx.path(), &dockerfile)
        .expect("load")
        .expect("an ignore file");
    assert_eq!(
        loaded.path,
        ctx.path().join("build/app.Dockerfile.dockerignore")
    );
    assert!(loaded.matcher.matches("from-dockerfile"));
    assert!(!loaded.matcher.matches("from-context"));
    assert!(loaded.matcher.has_exceptions());
}

#[test]
fn context_ignore_file_is_the_fallback() {
    let ctx = ScratchDir::new();
    ctx.write(
        ".dockerignore",
        "# comment\nnode_modules\n*.log\n!important.log\n",
    );
    let dockerfile = ctx.write("Dockerfile", "FROM scratch\n");
    // Another Dockerfile's ignore file must not be picked up.
    ctx.write("other.Dockerfile.dockerignore", "*\n");

    let loaded = load_for_build(ctx.path(), &dockerfile)
        .expect("load")
        .expect("an ignore file");
    assert_eq!(loaded.path, ctx.path().join(".dockerignore"));
    let m = &loaded.matcher;
    assert!(m.matches("node_modules/x/y.js"));
    assert!(m.can_skip_dir("node_modules"));
    assert!(m.matches("debug.log"));
    assert!(!m.matches("important.log"));
    assert!(!m.matches("src/main.rs"));
}

#[test]
fn dockerfile_outside_the_context_still_has_its_own_ignore_file() {
    let ctx = ScratchDir::new();
    let elsewhere = ScratchDir::new();
    ctx.write(".dockerignore", "a\n");
    let dockerfile = elsewhere.write("Dockerfile", "FROM scratch\n");
    elsewhere.write("Dockerfile.dockerignore", "b\n");

    let loaded = load_for_build(ctx.path(), &dockerfile)
        .expect("load")
        .expect("an ignore file");
    assert!(loaded.matcher.matches("b"));
    assert!(!loaded.matcher.matches("a"));
}

#[test]
fn no_ignore_file_means_none() {
    let ctx = ScratchDir::new();
    let dockerfile = ctx.write("Dockerfile", "FROM scratch\n");
    assert!(
        load_for_build(ctx.path(), &dockerfile)
            .expect("load")
            .is_none()
    );
}

#[test]
fn invalid_pattern_error_names_file_and_line() {
    let ctx = ScratchDir::new();
    let dockerfile = ctx.write("Dockerfile", "FROM scratch\n");
    let ignore = ctx.write(".dockerignore", "ok\n\n[unclosed\n");
    match load_for_build(ctx.path(), &dockerfile) {
        Err(err @ DockerignoreError::InvalidPattern { .. }) => {
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{}:3:", ignore.display())),
                "{message}"
            );
        }
        other => panic!("expected an invalid-pattern error, got {other:?}"),
    }
}

#[test]
fn unreadable_ignore_file_is_an_error() {
    let ctx = ScratchDir::new();
    let dockerfile = ctx.write("Dockerfile", "FROM scratch\n");
    // A directory where the file should be cannot be read as one.
    std::fs::create_dir_all(ctx.path().join(".dockerignore")).expect("mkdir");
    assert!(matches!(
        load_for_build(ctx.path(), &dockerfile),
        Err(DockerignoreError::Read { .. })
    ));
}

#[test]
fn patterns_behave_as_documented_end_to_end() {
    let ctx = ScratchDir::new();
    let dockerfile = ctx.write("Dockerfile", "FROM scratch\n");
    ctx.write(
        ".dockerignore",
        "\u{feff}**/*.tmp\n/docs\n!docs/README.md\n./build//out\n**/.git\n",
    );
    let m = load_for_build(ctx.path(), &dockerfile)
        .expect("load")
        .expect("an ignore file")
        .matcher;
    for excluded in [
        "x.tmp",
        "a/b/c.tmp",
        "docs/guide.md",
        "build/out/bin",
        ".git",
        "sub/.git/HEAD",
    ] {
        assert!(m.matches(excluded), "{excluded} should be excluded");
    }
    for included in ["docs/README.md", "build/other", "a/b/c.tmpl", "Dockerfile"] {
        assert!(!m.matches(included), "{included} should be included");
    }
    assert!(!m.can_skip_dir("docs"));
    assert!(m.can_skip_dir("sub/.git"));
}
