//! `.dockerignore` matching with the semantics of Docker's pattern matcher.
//!
//! Patterns are evaluated in order and the last one that matches a path decides:
//! a plain pattern excludes, a `!` pattern re-includes. A pattern that matches a
//! directory also matches everything below it. Paths and patterns are relative to
//! the build context, slash-separated and lexically cleaned (a leading `/` is
//! ignored). [`load_for_build`] picks the ignore file a build uses.

mod clean;
mod file;
mod glob;

use std::path::PathBuf;

pub use file::{IgnoreFile, load_for_build, parse};

use clean::clean;
use glob::PathGlob;

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    #[error("syntax error in pattern {pattern:?}: {problem}")]
    Syntax { pattern: String, problem: String },
}

/// Failure to load an ignore file.
#[derive(Debug, thiserror::Error)]
pub enum DockerignoreError {
    #[error("{file}:{line}: {source}")]
    InvalidPattern {
        file: String,
        line: usize,
        #[source]
        source: PatternError,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One compiled line of an ignore file.
#[derive(Debug, Clone)]
pub struct IgnorePattern {
    text: String,
    exception: bool,
    glob: PathGlob,
}

impl IgnorePattern {
    /// Normalises one line the way Docker's reader does: trimmed, `!` split off,
    /// cleaned, leading `/` removed. `None` for a blank line.
    fn new(line: &str) -> Result<Option<Self>, PatternError> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let (exception, body) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        if body.is_empty() {
            return Err(PatternError::LoneExclamation);
        }
        let cleaned = clean(body);
        let text = match cleaned.strip_prefix('/') {
            Some(relative) if !relative.is_empty() => relative.to_string(),
            _ => cleaned,
        };
        let glob = PathGlob::compile(&text)?;
        Ok(Some(Self {
            text,
            exception,
            glob,
        }))
    }

    /// The cleaned pattern, without its `!`.
    pub fn pattern(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` line that re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// Whether the pattern matches `path` itself or one of its parent directories.
    fn matches_path_or_parent(&self, path: &str) -> bool {
        self.glob.matches_path_or_parent(path)
    }
}

/// An ordered list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<IgnorePattern>,
}

/// Per-pattern results for one directory, handed to its children during a walk so
/// parents are not re-matched for every entry (see [`IgnoreMatcher::matches_in_walk`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkState {
    /// For each pattern: it matches this path or one of its parents.
    matched: Vec<bool>,
}

/// What the patterns decide for every path below a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Below {
    AllIncluded,
    AllExcluded,
    Mixed,
}

impl IgnoreMatcher {
    /// Builds a matcher from pattern lines (no comment handling: see [`parse`] for
    /// the file format). Blank lines are skipped.
    pub fn new<I, S>(lines: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns = Vec::new();
        for line in lines {
            if let Some(pattern) = IgnorePattern::new(line.as_ref())? {
                patterns.push(pattern);
            }
        }
        Ok(Self { patterns })
    }

    pub fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any `!` pattern exists; without one, an excluded directory can always
    /// be skipped whole.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `path` (relative to the context) is excluded from the build context.
    /// The context root itself is never excluded. An excluded directory may still
    /// contain re-included entries (`docs` then `!docs/README.md`), so a walker
    /// descends into it unless [`IgnoreMatcher::can_skip_dir`] says otherwise.
    pub fn matches(&self, path: &str) -> bool {
        let Some(path) = normalise(path) else {
            return false;
        };
        self.decide(|_, pattern| pattern.matches_path_or_parent(&path))
    }

    /// [`IgnoreMatcher::matches`] for a walk: pass the state returned for the parent
    /// directory (`None` for entries at the context root, or when the parent state
    /// is unknown) and keep the returned state for this entry's children.
    pub fn matches_in_walk(&self, path: &str, parent: Option<&WalkState>) -> (bool, WalkState) {
        let Some(path) = normalise(path) else {
            return (false, WalkState::default());
        };
        let matched: Vec<bool> = self
            .patterns
            .iter()
            .enumerate()
            .map(
                |(index, pattern)| match parent.and_then(|p| p.matched.get(index)) {
                    Some(true) => true,
                    Some(false) => pattern.glob.matches(&path),
                    None => pattern.matches_path_or_parent(&path),
                },
            )
            .collect();
        let excluded = self.decide(|index, _| matched.get(index) == Some(&true));
        (excluded, WalkState { matched })
    }

    /// Whether every path strictly below `dir` is excluded, whatever its name: no
    /// later `!` pattern could re-include anything there. This says nothing about
    /// `dir` itself; see [`IgnoreMatcher::can_skip_dir`].
    pub fn excludes_everything_below(&self, dir: &str) -> bool {
        let Some(dir) = normalise(dir) else {
            // The context root is never skipped; a walker always enters it.
            return false;
        };
        let prefix = format!("{dir}/");
        let mut below = Below::AllIncluded;
        for pattern in &self.patterns {
            let always = pattern.matches_path_or_parent(&dir)
                || pattern.glob.matches_every_child_of(&prefix);
            let maybe = !always && pattern.glob.could_match_below(&prefix);
            below = transition(below, pattern.exception, always, maybe);
        }
        below == Below::AllExcluded
    }

    /// Whether a context walk can skip `dir` and everything in it: the directory is
    /// excluded and nothing below it can be re-included.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        self.matches(dir) && self.excludes_everything_below(dir)
    }

    /// Applies the patterns in order; `hit` reports whether pattern `index` matches.
    /// It is only asked when the pattern could change the outcome, which keeps the
    /// common case (few exceptions) cheap.
    fn decide(&self, mut hit: impl FnMut(usize, &IgnorePattern) -> bool) -> bool {
        let mut excluded = false;
        for (index, pattern) in self.patterns.iter().enumerate() {
            if pattern.exception == excluded && hit(index, pattern) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }
}

/// Three-valued evaluation of one pattern over all paths below a directory.
fn transition(below: Below, exception: bool, always: bool, maybe: bool) -> Below {
    match (exception, always, maybe) {
        (false, true, _) => Below::AllExcluded,
        (true, true, _) => Below::AllIncluded,
        (false, false, true) if below == Below::AllIncluded => Below::Mixed,
        (true, false, true) if below == Below::AllExcluded => Below::Mixed,
        _ => below,
    }
}

/// Cleans a context-relative path; `None` for the context root.
fn normalise(path: &str) -> Option<String> {
    let cleaned = clean(path);
    let relative = cleaned.trim_start_matches('/');
    if relative.is_empty() || relative == "." {
        None
    } else {
        Some(relative.to_string())
    }
}

#[cfg(test)]
mod tests;
