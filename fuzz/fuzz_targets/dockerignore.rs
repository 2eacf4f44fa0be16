//! Parsing an ignore file must never panic; the walk API must agree with
//! `matches`; and a directory reported skippable must have nothing included below.
//!
//! Input: ignore-file text, a NUL byte, then newline-separated paths to check.
#![no_main]

use kiln_frontend::dockerignore::{IgnoreMatcher, WalkState, parse};
use libfuzzer_sys::fuzz_target;

/// Paths whose components are plain names, so prefixes are the parent chain.
fn plain(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

fn walk(matcher: &IgnoreMatcher, path: &str) -> bool {
    let mut state: Option<WalkState> = None;
    let mut verdict = false;
    let mut end = 0;
    for component in path.split('/') {
        end += component.len();
        let prefix = &path[..end];
        let (excluded, next) = matcher.matches_in_walk(prefix, state.as_ref());
        verdict = excluded;
        state = Some(next);
        end += 1;
    }
    verdict
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (content, paths) = text.split_once('\0').unwrap_or((&text, ""));
    let Ok(matcher) = parse(content, "fuzz.dockerignore") else {
        return;
    };
    let paths: Vec<&str> = paths.split('\n').filter(|p| plain(p)).take(16).collect();
    for path in &paths {
        let direct = matcher.matches(path);
        assert_eq!(direct, walk(&matcher, path), "walk disagrees on {path:?}");
        if matcher.can_skip_dir(path) {
            assert!(direct, "skippable {path:?} is not excluded");
        }
        if matcher.excludes_everything_below(path) {
            for leaf in &paths {
                let below = format!("{path}/{leaf}");
                assert!(
                    matcher.matches(&below),
                    "everything below {path:?} is excluded, yet {below:?} is included"
                );
            }
        }
    }
});
