//! One `.dockerignore` pattern, compiled.
//!
//! Semantics follow Docker's pattern matcher rather than plain `filepath.Match`: `*`
//! and `?` stay within one path component, `**` spans any number of components,
//! `[...]` is a character class (`^` negates), `\` makes the next character literal.
//! Docker short-cuts three shapes with string tests, and those short-cuts are part
//! of the observable behaviour (`**.pyc` matches `a/b.pyc` because it is a suffix
//! test, not a component match), so they are kept as distinct kinds here.

use super::PatternError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    AnyOne,
    /// `*`: a run of characters other than `/`.
    AnyRun,
    /// `**` followed by more pattern means "nothing, or anything ending in `/`",
    /// which takes two positions: this one may skip the group entirely...
    DirsStart,
    /// ...while this one, once entered, must see a `/` to leave.
    DirsLoop,
    /// `**` at the end of a pattern that also uses other wildcards: anything.
    AnyRest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcards: the path must equal the pattern.
    Exact(String),
    /// Literal text then a final `**`: the path must start with the text.
    Prefix(String),
    /// A leading `**` then literal text: the path must end with the text (or, when
    /// the text starts with `/`, equal the rest of it).
    Suffix(String),
    Glob(Vec<Token>),
}

/// Which kind the pattern compiles to, decided while scanning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Exact,
    Prefix,
    Suffix,
    Glob,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathGlob {
    kind: Kind,
}

impl PathGlob {
    /// Compiles an already cleaned pattern.
    pub(super) fn compile(pattern: &str) -> Result<Self, PatternError> {
        let bad = |problem: &str| PatternError::Syntax {
            pattern: pattern.to_string(),
            problem: problem.to_string(),
        };
        let mut tokens = Vec::new();
        let mut shape = Shape::Exact;
        let mut chars = pattern.chars().peekable();
        let mut at_start = true;
        while let Some(ch) = chars.next() {
            match ch {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_some() {
                        tokens.extend([Token::DirsStart, Token::DirsLoop]);
                        shape = Shape::Glob;
                    } else if shape == Shape::Exact {
                        shape = Shape::Prefix;
                    } else {
                        tokens.push(Token::AnyRest);
                        shape = Shape::Glob;
                    }
                    if at_start {
                        // Stays a suffix test unless a later wildcard makes it a glob.
                        shape = Shape::Suffix;
                    }
                }
                '*' => {
                    tokens.push(Token::AnyRun);
                    shape = Shape::Glob;
                }
                '?' => {
                    tokens.push(Token::AnyOne);
                    shape = Shape::Glob;
                }
                '\\' => {
                    let escaped = chars.next().ok_or_else(|| bad("trailing backslash"))?;
                    tokens.push(Token::Literal(escaped));
                    shape = Shape::Glob;
                }
                '[' => {
                    tokens.push(parse_class(&mut chars).map_err(bad)?);
                    shape = Shape::Glob;
                }
                ']' => {
                    tokens.push(Token::Literal(ch));
                    shape = Shape::Glob;
                }
                other => tokens.push(Token::Literal(other)),
            }
            at_start = false;
        }
        // Suffix and prefix shapes begin or end with the two-byte `**`.
        let kind = match shape {
            Shape::Exact => Kind::Exact(pattern.to_string()),
            Shape::Prefix => Kind::Prefix(
                pattern
                    .get(..pattern.len().saturating_sub(2))
                    .unwrap_or_default()
                    .to_string(),
            ),
            Shape::Suffix => Kind::Suffix(pattern.get(2..).unwrap_or_default().to_string()),
            Shape::Glob => Kind::Glob(tokens),
        };
        Ok(Self { kind })
    }

    pub(super) fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(text) => path == text,
            Kind::Prefix(text) => path.starts_with(text.as_str()),
            Kind::Suffix(text) => {
                path.ends_with(text.as_str())
                    || text.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Glob(tokens) => {
                let mut run = Automaton::new(tokens);
                path.chars().all(|ch| run.step(ch)) && run.accepts()
            }
        }
    }

    /// Whether the pattern matches `path` or one of its parent directories, in one
    /// pass over the path where the pattern shape allows it.
    pub(super) fn matches_path_or_parent(&self, path: &str) -> bool {
        match &self.kind {
            // A parent that starts with the text makes the path start with it too.
            Kind::Prefix(text) => path.starts_with(text.as_str()),
            Kind::Exact(text) => path
                .strip_prefix(text.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            Kind::Suffix(_) => {
                self.matches(path)
                    || path.match_indices('/').any(|(slash, _)| {
                        path.get(..slash).is_some_and(|parent| self.matches(parent))
                    })
            }
            Kind::Glob(tokens) => {
                let mut run = Automaton::new(tokens);
                for ch in path.chars() {
                    // Every `/` ends a parent directory's path.
                    if ch == '/' && run.accepts() {
                        return true;
                    }
                    if !run.step(ch) {
                        return false;
                    }
                }
                run.accepts()
            }
        }
    }

    /// Whether some path starting with `prefix` could match. May answer true when
    /// no such path exists (never the reverse), which only costs a walker a visit.
    pub(super) fn could_match_below(&self, prefix: &str) -> bool {
        match &self.kind {
            Kind::Exact(text) => text.starts_with(prefix),
            Kind::Prefix(text) => text.starts_with(prefix) || prefix.starts_with(text.as_str()),
            Kind::Suffix(_) => true,
            Kind::Glob(tokens) => {
                let mut run = Automaton::new(tokens);
                prefix.chars().all(|ch| run.step(ch))
            }
        }
    }
}

impl PathGlob {
    /// Whether every path directly below `prefix` (which ends in `/`) matches,
    /// whatever its name; then everything deeper matches through its parent.
    /// May answer false when it is true, never the reverse.
    pub(super) fn matches_every_child_of(&self, prefix: &str) -> bool {
        match &self.kind {
            Kind::Exact(_) => false,
            Kind::Prefix(text) => prefix.starts_with(text.as_str()),
            Kind::Suffix(text) => text.is_empty(),
            Kind::Glob(tokens) => {
                let mut run = Automaton::new(tokens);
                if !prefix.chars().all(|ch| run.step(ch)) {
                    return false;
                }
                // From some live position, the rest of the pattern must accept any
                // one component: only skippable tokens, one of them a `*` (which,
                // unlike `**`, also matches names containing newlines). A `**`
                // group is skippable from its start, not from inside its loop.
                run.active.iter().enumerate().any(|(index, live)| {
                    let rest = tokens.get(index..).unwrap_or_default();
                    *live
                        && rest.first() != Some(&Token::DirsLoop)
                        && rest.contains(&Token::AnyRun)
                        && rest.iter().all(|t| {
                            matches!(
                                t,
                                Token::AnyRun | Token::AnyRest | Token::DirsStart | Token::DirsLoop
                            )
                        })
                })
            }
        }
    }
}

/// Parses a class after its `[`, in `filepath.Match` syntax: optional `^`, then
/// characters or `lo-hi` ranges, each possibly `\`-escaped, then `]`.
fn parse_class(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Token, &'static str> {
    let negated = chars.peek() == Some(&'^');
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    loop {
        match chars.peek() {
            None => return Err("unterminated character class"),
            Some(']') if !ranges.is_empty() => {
                chars.next();
                return Ok(Token::Class { negated, ranges });
            }
            Some(_) => {}
        }
        let low = class_char(chars)?;
        let high = if chars.peek() == Some(&'-') {
            chars.next();
            class_char(chars)?
        } else {
            low
        };
        if low > high {
            return Err("character class range out of order");
        }
        ranges.push((low, high));
    }
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, &'static str> {
    match chars.next() {
        None => Err("unterminated character class"),
        Some('-' | ']') => Err("'-' or ']' must be escaped in a character class"),
        Some('\\') => chars.next().ok_or("unterminated character class"),
        Some(ch) => Ok(ch),
    }
}

/// A set-of-positions simulation of a token list: linear in path length times
/// pattern length, whatever the pattern.
struct Automaton<'a> {
    tokens: &'a [Token],
    active: Vec<bool>,
    next: Vec<bool>,
}

impl<'a> Automaton<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        let mut active = vec![false; tokens.len() + 1];
        if let Some(first) = active.first_mut() {
            *first = true;
        }
        let mut automaton = Self {
            tokens,
            next: active.clone(),
            active,
        };
        close(automaton.tokens, &mut automaton.active);
        automaton
    }

    /// Consumes one character; false once no position is alive.
    fn step(&mut self, ch: char) -> bool {
        self.next.iter_mut().for_each(|slot| *slot = false);
        for (index, token) in self.tokens.iter().enumerate() {
            if self.active.get(index) != Some(&true) {
                continue;
            }
            let (stay, advance) = match token {
                Token::Literal(expected) => (false, *expected == ch),
                Token::AnyOne => (false, ch != '/'),
                Token::AnyRun => (ch != '/', false),
                // Docker compiles these to regexes whose `.` skips newlines.
                Token::DirsStart => (false, false),
                Token::DirsLoop => (ch != '\n', ch == '/'),
                Token::AnyRest => (ch != '\n', false),
                Token::Class { negated, ranges } => {
                    let inside = ranges
                        .iter()
                        .any(|(low, high)| (*low..=*high).contains(&ch));
                    (false, inside != *negated)
                }
            };
            if stay && let Some(slot) = self.next.get_mut(index) {
                *slot = true;
            }
            if advance && let Some(slot) = self.next.get_mut(index + 1) {
                *slot = true;
            }
        }
        close(self.tokens, &mut self.next);
        std::mem::swap(&mut self.active, &mut self.next);
        self.active.contains(&true)
    }

    fn accepts(&self) -> bool {
        self.active.last() == Some(&true)
    }
}

/// Marks positions reachable without consuming input: every `*`/`**` may match
/// nothing. Marks only go forward, so one pass in order reaches chains of them.
fn close(tokens: &[Token], active: &mut [bool]) {
    for (index, token) in tokens.iter().enumerate() {
        if active.get(index) != Some(&true) {
            continue;
        }
        let reachable: &[usize] = match token {
            Token::AnyRun | Token::AnyRest => &[1],
            Token::DirsStart => &[1, 2],
            _ => &[],
        };
        for step in reachable {
            if let Some(slot) = active.get_mut(index + step) {
                *slot = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PathGlob;

    fn matches(pattern: &str, path: &str) -> bool {
        match PathGlob::compile(pattern) {
            Ok(glob) => glob.matches(path),
            Err(e) => panic!("{pattern:?}: {e}"),
        }
    }

    #[test]
    fn double_star_forms() {
        let yes = [
            ("**", "file"),
            ("**", "dir/file"),
            ("**/**", "dir/file"),
            ("dir/**", "dir/file"),
            ("dir/**", "dir/dir2/file"),
            ("**/dir", "dir"),
            ("**/dir2/*", "dir/dir2/file"),
            ("**/dir2/**", "dir/dir2/dir3/file"),
            ("**file", "file"),
            ("**file", "dir/dir/file"),
            ("**/file*.txt", "dir/dir/file.txt"),
            ("**/**/*.txt", "file.txt"),
            ("a**/*.txt", "a/file.txt"),
            ("a**/*.txt", "a/dir/dir/file.txt"),
            ("a/*.txt**", "a/file.txt"),
            ("**/foo/bar", "dir/dir2/foo/bar"),
            ("abc/**", "abc/def/ghi"),
            // A leading `**` followed by literal text is a plain suffix test.
            ("**.pyc", "a/b/c.pyc"),
            ("**file", "dir/myfile"),
        ];
        for (pattern, path) in yes {
            assert!(matches(pattern, path), "{pattern:?} should match {path:?}");
        }
        let no = [
            ("**/dir", "dir/file"),
            ("**/**/*.txt2", "dir/dir/file.txt"),
            ("a/*.txt", "a/dir/file.txt"),
            ("abc/**", "abc"),
            ("**/.foo", "bar.foo"),
            ("**/*.txt", "dir/file.txt2"),
            // `**/` only ever stands for whole directories.
            ("**/foo*", "xfoo"),
            ("**/foo*", "dir/xfoo"),
            ("a/**/b*", "a/xb"),
        ];
        for (pattern, path) in no {
            assert!(
                !matches(pattern, path),
                "{pattern:?} should not match {path:?}"
            );
        }
    }

    #[test]
    fn any_wildcard_or_bracket_after_leading_double_star_disables_the_suffix_test() {
        // `]` counts as pattern syntax for this decision, as in Docker.
        assert!(matches("**a]", "x/a]"));
        assert!(!matches("**a]", "xa]"));
        assert!(matches("**a", "xa"));
        assert!(matches("**/**", "a/b/c"));
        assert!(matches("**/**", "a"));
    }

    #[test]
    fn single_component_wildcards_and_classes() {
        assert!(matches("*", "abc"));
        assert!(!matches("a*b", "a/b"));
        assert!(!matches("a?b", "a/b"));
        assert!(matches("a*b*c*d*e*/f", "axbxcxdxexxx/f"));
        assert!(!matches("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"));
        assert!(matches("a*b?c*x", "abxbbxdbxebxczzx"));
        assert!(matches("a[b-d]e", "ace"));
        assert!(!matches("a[b-d]e", "aae"));
        assert!(matches("a[^b-d]e", "aze"));
        assert!(matches("[a-ζ]*", "α"));
        assert!(matches("[\\]a]", "]"));
        assert!(matches("[x\\-]", "-"));
        assert!(matches("a?b", "a☺b"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
        assert!(matches("a\\\\", "a\\"));
        assert!(matches("a.|)$(}+{bc", "a.|)$(}+{bc"));
        assert!(!matches("abc.def", "abcZdef"));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "[a-b-c]", "\\", "[z-a]",
        ] {
            assert!(
                PathGlob::compile(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn could_match_below_is_sound_for_each_kind() {
        let glob = |p: &str| PathGlob::compile(p).unwrap_or_else(|e| panic!("{e}"));
        assert!(glob("a/b/c").could_match_below("a/"));
        assert!(!glob("x/b").could_match_below("a/"));
        assert!(glob("a/**").could_match_below("a/b/"));
        assert!(glob("a/b/**").could_match_below("a/"));
        assert!(!glob("b/**").could_match_below("a/"));
        assert!(glob("**.md").could_match_below("anything/"));
        assert!(glob("*/keep").could_match_below("a/"));
        assert!(!glob("*/keep").could_match_below("a/b/c/"));
        assert!(glob("**/keep").could_match_below("a/b/c/"));
        assert!(!glob("[b-z]/x").could_match_below("a/"));
    }

    #[test]
    fn parent_matching_in_one_pass_agrees_with_matching_each_parent() {
        let patterns = [
            "a", "a/b", "a/b/c", "a**", "a/**", "**/b", "**b", "*", "*/b", "a/*", "[ab]/?",
            "**/*.log", "a?/b*", "x",
        ];
        let paths = [
            "a", "a/b", "a/b/c", "a/b/c/d", "ab/b", "ab/bc/x", "x/y.log", "b", "q/b/z",
        ];
        for pattern in patterns {
            let glob = PathGlob::compile(pattern).unwrap_or_else(|e| panic!("{e}"));
            for path in paths {
                let slow = glob.matches(path)
                    || path
                        .match_indices('/')
                        .any(|(slash, _)| glob.matches(&path[..slash]));
                assert_eq!(
                    glob.matches_path_or_parent(path),
                    slow,
                    "{pattern:?} on {path:?}"
                );
            }
        }
    }

    #[test]
    fn every_child_detection() {
        let glob = |p: &str| PathGlob::compile(p).unwrap_or_else(|e| panic!("{e}"));
        assert!(glob("cache/*").matches_every_child_of("cache/"));
        assert!(glob("*/*").matches_every_child_of("cache/"));
        assert!(glob("**/*").matches_every_child_of("a/b/"));
        assert!(glob("cache/**").matches_every_child_of("cache/"));
        assert!(glob("**").matches_every_child_of("x/"));
        assert!(!glob("cache/*.tmp").matches_every_child_of("cache/"));
        assert!(!glob("cache/?").matches_every_child_of("cache/"));
        assert!(!glob("other/*").matches_every_child_of("cache/"));
        assert!(!glob("cache/x").matches_every_child_of("cache/"));
    }
}
