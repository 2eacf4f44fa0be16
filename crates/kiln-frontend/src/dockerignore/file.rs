//! Reading ignore files and choosing which one a build uses.

use std::path::{Path, PathBuf};

use super::{DockerignoreError, IgnoreMatcher, IgnorePattern};

/// The ignore file a build uses, parsed.
#[derive(Debug, Clone)]
pub struct IgnoreFile {
    pub path: PathBuf,
    pub matcher: IgnoreMatcher,
}

/// Parses ignore-file text. `source` names the file in error messages.
///
/// A UTF-8 byte-order mark is dropped, lines that start with `#` (before any
/// trimming, as in Docker) are comments, blank lines are skipped, and every other
/// line is one pattern.
pub fn parse(content: &str, source: &str) -> Result<IgnoreMatcher, DockerignoreError> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut patterns = Vec::new();
    for (index, line) in content.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        match IgnorePattern::new(line) {
            Ok(Some(pattern)) => patterns.push(pattern),
            Ok(None) => {}
            Err(source_error) => {
                return Err(DockerignoreError::InvalidPattern {
                    file: source.to_string(),
                    line: index + 1,
                    source: source_error,
                });
            }
        }
    }
    Ok(IgnoreMatcher { patterns })
}

/// Finds and parses the ignore file for a build, BuildKit's way: a
/// `<Dockerfile name>.dockerignore` next to the Dockerfile wins over
/// `<context>/.dockerignore`. `Ok(None)` when neither exists.
pub fn load_for_build(
    context_dir: &Path,
    dockerfile: &Path,
) -> Result<Option<IgnoreFile>, DockerignoreError> {
    let dockerfile_specific = dockerfile.file_name().map(|name| {
        let mut ignore_name = name.to_os_string();
        ignore_name.push(".dockerignore");
        dockerfile.with_file_name(ignore_name)
    });
    let candidates = dockerfile_specific
        .into_iter()
        .chain(std::iter::once(context_dir.join(".dockerignore")));
    for path in candidates {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(DockerignoreError::Read { path, source }),
        };
        // Docker reads patterns as bytes; invalid UTF-8 can only be part of a
        // pattern that matches nothing, so a lossy read loses no real match.
        let text = String::from_utf8_lossy(&bytes);
        let matcher = parse(&text, &path.display().to_string())?;
        return Ok(Some(IgnoreFile { path, matcher }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::dockerignore::{DockerignoreError, PatternError};

    fn pattern_texts(content: &str) -> Vec<String> {
        match parse(content, "test") {
            Ok(matcher) => matcher
                .patterns()
                .iter()
                .map(|p| {
                    let bang = if p.is_exception() { "!" } else { "" };
                    format!("{bang}{}", p.pattern())
                })
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn lines_are_normalised_like_docker() {
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n  spaced  \r\n./dot//slash/\n";
        assert_eq!(
            pattern_texts(content),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "spaced",
                "dot/slash",
            ]
        );
    }

    #[test]
    fn only_a_leading_hash_makes_a_comment() {
        assert_eq!(
            pattern_texts("\u{feff}#bom comment\n  # not a comment\n"),
            ["# not a comment"]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("ok\n# comment\n!\n", "ctx/.dockerignore");
        match err {
            Err(DockerignoreError::InvalidPattern { file, line, source }) => {
                assert_eq!(file, "ctx/.dockerignore");
                assert_eq!(line, 3);
                assert_eq!(source, PatternError::LoneExclamation);
            }
            other => panic!("expected an invalid-pattern error, got {other:?}"),
        }
        let message = parse("a\n\n[z-\n", "x.dockerignore")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("x.dockerignore:3: "), "{message}");
    }
}
