use super::{IgnoreMatcher, PatternError, WalkState};

fn matcher(lines: &[&str]) -> IgnoreMatcher {
    IgnoreMatcher::new(lines).unwrap_or_else(|e| panic!("{lines:?}: {e}"))
}

#[test]
fn exceptions_apply_in_order_last_match_wins() {
    assert!(matcher(&["!fileutils.go", "*.go"]).matches("fileutils.go"));
    assert!(!matcher(&["*.go", "!fileutils.go"]).matches("fileutils.go"));
    let m = matcher(&["*.md", "!README*.md", "README-secret.md"]);
    assert!(m.matches("notes.md"));
    assert!(!m.matches("README.md"));
    assert!(m.matches("README-secret.md"));
}

#[test]
fn directory_patterns_cover_their_contents() {
    assert!(!matcher(&["docs", "!docs/README.md"]).matches("docs/README.md"));
    assert!(matcher(&["docs"]).matches("docs/a/b/c.txt"));
    assert!(!matcher(&["docs/*", "!docs/README.md"]).matches("docs/README.md"));
    assert!(matcher(&["docs/*", "!docs/README.md"]).matches("docs/other.md"));
    assert!(!matcher(&["**", "!util/docker/web"]).matches("util/docker/web/foo"));
    assert!(
        matcher(&["**", "!util/docker/web", "util/docker/web/foo"]).matches("util/docker/web/foo")
    );
    assert!(
        !matcher(&["**", "!dist/*.whl"])
            .matches("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl")
    );
}

#[test]
fn the_context_root_is_never_excluded() {
    let m = matcher(&["**", "*"]);
    assert!(!m.matches("."));
    assert!(!m.matches(""));
    assert!(!m.matches("/"));
    assert!(m.matches("anything"));
}

#[test]
fn leading_slash_and_unclean_paths() {
    let m = matcher(&["/secret", "./build//out/", "a/../tmp"]);
    for path in [
        "secret",
        "/secret",
        "./secret",
        "build/out",
        "build/out/x",
        "tmp",
        "x/../tmp/y",
    ] {
        assert!(m.matches(path), "{path} should be excluded");
    }
    for path in ["a/secret", "build", "a/tmp"] {
        assert!(!m.matches(path), "{path} should be included");
    }
}

#[test]
fn invalid_patterns_are_errors() {
    assert_eq!(
        IgnoreMatcher::new(["!"]).err(),
        Some(PatternError::LoneExclamation)
    );
    assert_eq!(
        IgnoreMatcher::new(["! "]).err(),
        Some(PatternError::LoneExclamation)
    );
    assert!(matches!(
        IgnoreMatcher::new(["ok", "a["]),
        Err(PatternError::Syntax { .. })
    ));
    assert!(IgnoreMatcher::new(["", "   "]).is_ok_and(|m| m.is_empty()));
}

#[test]
fn walk_state_gives_the_same_answers_as_matches() {
    let m = matcher(&[
        "docs",
        "!docs/keep",
        "*/tmp",
        "!a/tmp/x",
        "**/*.log",
        "!important.log",
    ]);
    let paths = [
        "a",
        "a/tmp",
        "a/tmp/x",
        "a/tmp/x/deep.log",
        "a/tmp/y",
        "docs",
        "docs/keep",
        "docs/keep/inner",
        "docs/other",
        "important.log",
        "b/important.log",
    ];
    for path in paths {
        // Rebuild the parent chain the way a walker would.
        let mut state: Option<WalkState> = None;
        let mut prefix = String::new();
        let mut verdict = false;
        for component in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            let (excluded, next) = m.matches_in_walk(&prefix, state.as_ref());
            verdict = excluded;
            state = Some(next);
        }
        assert_eq!(
            verdict,
            m.matches(path),
            "walk and direct disagree on {path}"
        );
    }
}

#[test]
fn directories_are_skippable_only_without_possible_reinclusion() {
    let plain = matcher(&["node_modules", "*.tmp"]);
    assert!(plain.can_skip_dir("node_modules"));
    assert!(plain.can_skip_dir("x.tmp"));
    assert!(!plain.can_skip_dir("src"));

    let with_exception = matcher(&["docs", "!docs/README.md", "build"]);
    assert!(!with_exception.can_skip_dir("docs"));
    assert!(with_exception.can_skip_dir("build"));

    // An exception anywhere below (via `**`) blocks skipping.
    let deep = matcher(&["vendor", "!**/LICENSE"]);
    assert!(!deep.can_skip_dir("vendor"));

    // An exception that matches the directory itself re-includes all of it...
    let reinclude = matcher(&["a", "!a/b"]);
    assert!(!reinclude.can_skip_dir("a/b"));
    assert!(!reinclude.matches("a/b/c"));
    // ...unless it comes before the exclusion.
    let earlier = matcher(&["!a", "a/b"]);
    assert!(earlier.can_skip_dir("a/b"));

    // A later exclusion that covers everything again makes it skippable.
    let covered = matcher(&["docs", "!docs/*.md", "docs"]);
    assert!(covered.can_skip_dir("docs"));

    // Everything below excluded, the directory itself kept.
    let contents = matcher(&["cache/*"]);
    assert!(!contents.can_skip_dir("cache"));
    assert!(contents.excludes_everything_below("cache"));
    assert!(!contents.excludes_everything_below("."));
}

#[test]
fn skip_decisions_agree_with_matches_on_sample_paths() {
    let sets: [&[&str]; 4] = [
        &["a", "!a/b/c", "a/b/c/d"],
        &["**/x", "!**/x/keep"],
        &["*", "!src", "src/gen"],
        &["logs/**", "!logs/**/*.keep", "logs/old"],
    ];
    let dirs = [
        "a", "a/b", "a/b/c", "x", "q/x", "src", "src/gen", "logs", "logs/old", "logs/new",
    ];
    let leaves = ["f", "keep", "d", "z.keep", "c/d", "keep/more"];
    for lines in sets {
        let m = matcher(lines);
        for dir in dirs {
            if !m.can_skip_dir(dir) {
                continue;
            }
            assert!(m.matches(dir), "{lines:?}: skipped {dir} must be excluded");
            for leaf in leaves {
                let path = format!("{dir}/{leaf}");
                assert!(
                    m.matches(&path),
                    "{lines:?}: skipped {dir} but {path} is included"
                );
            }
        }
    }
}
