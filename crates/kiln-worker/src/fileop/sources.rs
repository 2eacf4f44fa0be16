//! Expanding COPY/ADD source arguments into the paths they name in an input.
//!
//! A source is cleaned as if rooted (so `../x` is clamped to `x`); the components
//! before the first wildcard are resolved in the input like any path, and the rest are
//! matched one component at a time while walking down, lexically sorted, never
//! following symlinked directories. A matched directory is not searched further. What
//! the input's `.dockerignore` excludes is invisible here, as it is absent from the
//! build context BuildKit would have received.

use std::path::Path;

use kiln_frontend::dockerignore::IgnoreMatcher;

use super::error::{FileOpError, io_err};
use super::paths::{clean_absolute, lstat, resolve};
use super::pattern::{Pattern, has_wildcards};

/// One path a source argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SourceMatch {
    /// The path in the input as named, relative, slash-separated; empty for the root.
    pub named: String,
    /// With `--parents`: the part of `named` after the pivot (`/./`, or the whole path),
    /// recreated under the destination.
    pub keep: String,
    pub from_wildcard: bool,
}

/// How sources are looked up in one input.
pub(super) struct SourceLookup<'a> {
    pub root: &'a Path,
    pub ignore: &'a IgnoreMatcher,
    pub allow_wildcard: bool,
    pub follow_symlinks: bool,
    pub parents: bool,
}

impl SourceLookup<'_> {
    /// The paths `source` names, in order. Empty only for a wildcard that matched
    /// nothing; a literal path that does not exist is an error.
    pub(super) fn expand(&self, source: &str) -> Result<Vec<SourceMatch>, FileOpError> {
        let (pattern, pivot_depth) = match source.find("/./") {
            Some(at) if self.parents => {
                let pivot = clean_absolute(&source[..at]);
                let depth = pivot.split('/').filter(|p| !p.is_empty()).count();
                (format!("{}/{}", &source[..at], &source[at + 3..]), depth)
            }
            _ => (source.to_string(), 0),
        };
        let cleaned = clean_absolute(&pattern);
        let components: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
        let first_wildcard = components
            .iter()
            .position(|c| has_wildcards(c))
            .filter(|_| self.allow_wildcard);
        let mut named = Vec::new();
        match first_wildcard {
            None => {
                let path = components.join("/");
                if !self.visible(&path, self.follow_symlinks)? {
                    return Err(FileOpError::SourceNotFound {
                        pattern: source.to_string(),
                    });
                }
                named.push(path);
            }
            Some(index) => {
                let patterns = components[index..]
                    .iter()
                    .map(|c| Pattern::compile(c))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|problem| FileOpError::BadPattern {
                        pattern: source.to_string(),
                        problem,
                    })?;
                let prefix = components[..index].join("/");
                let base = resolve(self.root, &prefix, self.follow_symlinks)?;
                if lstat(&base)?.is_some_and(|m| m.is_dir()) {
                    self.walk(&base, &prefix, &patterns, &mut named)?;
                }
            }
        }
        let from_wildcard = first_wildcard.is_some();
        Ok(named
            .into_iter()
            .map(|named| {
                let keep = if self.parents {
                    named
                        .split('/')
                        .filter(|p| !p.is_empty())
                        .skip(pivot_depth)
                        .collect::<Vec<_>>()
                        .join("/")
                } else {
                    String::new()
                };
                SourceMatch {
                    named,
                    keep,
                    from_wildcard,
                }
            })
            .collect())
    }

    /// Collects entries below `dir` (named `named_dir`) matching `patterns`, one
    /// pattern per level.
    fn walk(
        &self,
        dir: &Path,
        named_dir: &str,
        patterns: &[Pattern],
        out: &mut Vec<String>,
    ) -> Result<(), FileOpError> {
        let Some((pattern, deeper)) = patterns.split_first() else {
            return Ok(());
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io_err("read directory", dir))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err("read directory", dir))?
            .into_iter()
            // A non-UTF-8 name cannot be written in a Dockerfile pattern.
            .filter_map(|name| name.into_string().ok())
            .collect();
        names.sort();
        for name in names.into_iter().filter(|n| pattern.matches(n)) {
            let named = if named_dir.is_empty() {
                name.clone()
            } else {
                format!("{named_dir}/{name}")
            };
            if deeper.is_empty() {
                if self.visible(&named, false)? {
                    out.push(named);
                }
                continue;
            }
            let path = dir.join(&name);
            if lstat(&path)?.is_some_and(|m| m.is_dir()) && !self.ignored_dir_whole(&path) {
                self.walk(&path, &named, deeper, out)?;
            }
        }
        Ok(())
    }

    /// Whether `named` exists and the input's ignore patterns leave it (or, for a
    /// directory, something in it) in the context.
    fn visible(&self, named: &str, follow_last: bool) -> Result<bool, FileOpError> {
        if follow_last {
            // A symlink that is itself ignored is absent, whatever it points to.
            let link = resolve(self.root, named, false)?;
            if self
                .context_path(&link)
                .is_some_and(|rel| self.ignore.matches(&rel))
                && lstat(&link)?.is_some_and(|m| m.file_type().is_symlink())
            {
                return Ok(false);
            }
        }
        let real = resolve(self.root, named, follow_last)?;
        let Some(meta) = lstat(&real)? else {
            return Ok(false);
        };
        let Some(rel) = self.context_path(&real) else {
            return Ok(true);
        };
        if !self.ignore.matches(&rel) {
            return Ok(true);
        }
        Ok(meta.is_dir() && !self.ignore.excludes_everything_below(&rel))
    }

    fn ignored_dir_whole(&self, real: &Path) -> bool {
        self.context_path(real)
            .is_some_and(|rel| self.ignore.can_skip_dir(&rel))
    }

    /// `real` relative to the input root, for ignore matching; `None` for the root.
    pub(super) fn context_path(&self, real: &Path) -> Option<String> {
        let rel = real.strip_prefix(self.root).ok()?.to_string_lossy();
        (!rel.is_empty()).then(|| rel.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "a.txt",
            "b.txt",
            "c.md",
            "x/y/one.txt",
            "x/z/two.txt",
            "x/y/n.md",
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
        dir
    }

    fn expand(root: &Path, ignore: &[&str], parents: bool, source: &str) -> Vec<(String, String)> {
        let ignore = IgnoreMatcher::new(ignore).unwrap();
        let lookup = SourceLookup {
            root,
            ignore: &ignore,
            allow_wildcard: true,
            follow_symlinks: true,
            parents,
        };
        lookup
            .expand(source)
            .unwrap()
            .into_iter()
            .map(|m| (m.named, m.keep))
            .collect()
    }

    fn names(found: Vec<(String, String)>) -> Vec<String> {
        found.into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn wildcards_match_per_component_in_order() {
        let dir = tree();
        let root = dir.path();
        assert_eq!(names(expand(root, &[], false, "*.txt")), ["a.txt", "b.txt"]);
        assert_eq!(
            names(expand(root, &[], false, "x/*/*.txt")),
            ["x/y/one.txt", "x/z/two.txt"]
        );
        assert_eq!(names(expand(root, &[], false, "../../x/?")), ["x/y", "x/z"]);
        assert!(expand(root, &[], false, "*.none").is_empty());
        assert_eq!(names(expand(root, &[], false, "./x/../c.md")), ["c.md"]);
        assert_eq!(names(expand(root, &[], false, ".")), [""]);
    }

    #[test]
    fn ignored_paths_are_invisible() {
        let dir = tree();
        let root = dir.path();
        assert_eq!(names(expand(root, &["b.txt"], false, "*.txt")), ["a.txt"]);
        assert_eq!(names(expand(root, &["x/z"], false, "x/*")), ["x/y"]);
        std::os::unix::fs::symlink("a.txt", root.join("alias")).unwrap();
        assert_eq!(names(expand(root, &[], false, "alias")), ["alias"]);
        let ignore = IgnoreMatcher::new(["alias"]).unwrap();
        let lookup = SourceLookup {
            root,
            ignore: &ignore,
            allow_wildcard: true,
            follow_symlinks: true,
            parents: false,
        };
        assert!(lookup.expand("alias").is_err());
        let ignore = IgnoreMatcher::new(["a.txt"]).unwrap();
        let lookup = SourceLookup {
            root,
            ignore: &ignore,
            allow_wildcard: true,
            follow_symlinks: true,
            parents: false,
        };
        assert!(matches!(
            lookup.expand("a.txt"),
            Err(FileOpError::SourceNotFound { .. })
        ));
    }

    #[test]
    fn parents_keep_the_path_after_the_pivot() {
        let dir = tree();
        let root = dir.path();
        assert_eq!(
            expand(root, &[], true, "x/*/one.txt"),
            [("x/y/one.txt".to_string(), "x/y/one.txt".to_string())]
        );
        assert_eq!(
            expand(root, &[], true, "./x/./y/*.txt"),
            [("x/y/one.txt".to_string(), "y/one.txt".to_string())]
        );
        assert_eq!(
            expand(root, &[], false, "x/./y/one.txt"),
            [("x/y/one.txt".to_string(), String::new())]
        );
    }
}
