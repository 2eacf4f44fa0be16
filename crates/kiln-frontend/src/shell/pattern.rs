//! The glob patterns of `${v#p}`, `${v%p}` and `${v/p/r}`.
//!
//! `*` matches any run of characters, `?` one character, and a backslash makes `*`,
//! `?` or `\` literal; `\}` and `\/` are the braces-syntax escapes and stand for the
//! plain character. There are no bracket expressions. Like BuildKit, wildcards do
//! not match a newline. Matching simulates the pattern as a small automaton over the
//! value, so cost is linear in value length times pattern length for one start
//! position, with no backtracking blow-up.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
}

/// A parsed substitution pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob {
    tokens: Vec<Token>,
}

/// Why a pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PatternError(pub(super) String);

impl Glob {
    pub(super) fn parse(pattern: &str) -> Result<Self, PatternError> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            let token = match ch {
                // `**` means the same as `*`; one token keeps the live-state count low.
                '*' if tokens.last() == Some(&Token::AnyRun) => continue,
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                '\\' => match chars.peek().copied() {
                    // The escape only protected the delimiter from the `${...}` syntax.
                    Some('}' | '/') => continue,
                    Some(next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        Token::Literal(next)
                    }
                    Some(other) => {
                        return Err(PatternError(format!("invalid escape '\\{other}'")));
                    }
                    None => return Err(PatternError("invalid escape at end of pattern".into())),
                },
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Self { tokens })
    }

    /// The same pattern read right to left, for matching suffixes as prefixes of the
    /// reversed value.
    fn reversed(&self) -> Self {
        Self {
            tokens: self.tokens.iter().rev().copied().collect(),
        }
    }

    /// Lengths (in chars) of the prefixes of `value` that the whole pattern matches,
    /// reported shortest first to `on_match`, which returns false to stop early.
    fn for_each_prefix_match(
        &self,
        run: &mut Run,
        value: &[char],
        mut on_match: impl FnMut(usize) -> bool,
    ) {
        let accept = self.tokens.len();
        run.current.clear();
        self.enter(&mut run.current, 0);
        if run.current.contains(accept) && !on_match(0) {
            return;
        }
        for (consumed, ch) in value.iter().enumerate() {
            run.next.clear();
            for &index in &run.current.list {
                let target = match self.tokens.get(index) {
                    Some(Token::Literal(expected)) if *expected == *ch => index + 1,
                    Some(Token::AnyOne) if *ch != '\n' => index + 1,
                    Some(Token::AnyRun) if *ch != '\n' => index,
                    _ => continue,
                };
                self.enter(&mut run.next, target);
            }
            std::mem::swap(&mut run.current, &mut run.next);
            if run.current.list.is_empty() {
                return;
            }
            if run.current.contains(accept) && !on_match(consumed + 1) {
                return;
            }
        }
    }

    /// Adds a position and every position after it reachable without consuming
    /// input (a `*` may match nothing).
    fn enter(&self, set: &mut StateSet, mut index: usize) {
        while set.insert(index) && self.tokens.get(index) == Some(&Token::AnyRun) {
            index += 1;
        }
    }

    fn prefix_match(&self, run: &mut Run, value: &[char], longest: bool) -> Option<usize> {
        let mut found = None;
        self.for_each_prefix_match(run, value, |len| {
            found = Some(len);
            longest
        });
        found
    }

    /// `${v#p}` (shortest) and `${v##p}` (longest).
    pub(super) fn remove_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        match self.prefix_match(&mut Run::new(self), &chars, longest) {
            Some(len) => chars.get(len..).unwrap_or_default().iter().collect(),
            None => value.to_string(),
        }
    }

    /// `${v%p}` (shortest) and `${v%%p}` (longest).
    pub(super) fn remove_suffix(&self, value: &str, longest: bool) -> String {
        let reversed_value: Vec<char> = value.chars().rev().collect();
        let reversed = self.reversed();
        match reversed.prefix_match(&mut Run::new(&reversed), &reversed_value, longest) {
            Some(len) => {
                let keep = reversed_value.len().saturating_sub(len);
                value.chars().take(keep).collect()
            }
            None => value.to_string(),
        }
    }

    /// Leftmost match starting at or after `from`, longest at that position, as a
    /// char range.
    fn find_from(&self, run: &mut Run, value: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=value.len()).find_map(|start| {
            let rest = value.get(start..)?;
            self.prefix_match(run, rest, true)
                .map(|len| (start, start + len))
        })
    }

    /// `${v/p/r}` (first match) and `${v//p/r}` (every match). The replacement is
    /// literal text. `None` if the result would exceed `max_len` bytes: nested
    /// replace-all expansions grow exponentially, so the size has to be capped.
    pub(super) fn replace(
        &self,
        value: &str,
        replacement: &str,
        all: bool,
        max_len: usize,
    ) -> Option<String> {
        let chars: Vec<char> = value.chars().collect();
        let mut run = Run::new(self);
        let mut out = String::with_capacity(value.len());
        let mut copied_up_to = 0;
        let mut search_from = 0;
        let mut previous_end = None;
        while search_from <= chars.len() {
            let Some((start, end)) = self.find_from(&mut run, &chars, search_from) else {
                break;
            };
            // An empty match right where the previous match ended is not a new match;
            // without this rule `x//` style patterns would replace twice per position.
            let accepted = !(start == end && previous_end == Some(start));
            search_from = if end == search_from { end + 1 } else { end };
            previous_end = Some(end);
            if accepted {
                out.extend(chars.get(copied_up_to..start).unwrap_or_default());
                out.push_str(replacement);
                copied_up_to = end;
                if out.len() > max_len {
                    return None;
                }
                if !all {
                    break;
                }
            }
        }
        out.extend(chars.get(copied_up_to..).unwrap_or_default());
        (out.len() <= max_len).then_some(out)
    }
}

/// The live pattern positions during a match, kept as a list (cheap to walk when
/// few are live, which is the norm) plus a membership table.
struct StateSet {
    list: Vec<usize>,
    member: Vec<bool>,
}

impl StateSet {
    fn new(positions: usize) -> Self {
        Self {
            list: Vec::new(),
            member: vec![false; positions],
        }
    }

    /// False if already present (or out of range).
    fn insert(&mut self, index: usize) -> bool {
        match self.member.get_mut(index) {
            Some(slot) if !*slot => {
                *slot = true;
                self.list.push(index);
                true
            }
            _ => false,
        }
    }

    fn contains(&self, index: usize) -> bool {
        self.member.get(index) == Some(&true)
    }

    fn clear(&mut self) {
        for &index in &self.list {
            if let Some(slot) = self.member.get_mut(index) {
                *slot = false;
            }
        }
        self.list.clear();
    }
}

/// Scratch space for matching one pattern, reused across start positions.
struct Run {
    current: StateSet,
    next: StateSet,
}

impl Run {
    fn new(glob: &Glob) -> Self {
        Self {
            current: StateSet::new(glob.tokens.len() + 1),
            next: StateSet::new(glob.tokens.len() + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Glob, PatternError};

    fn glob(pattern: &str) -> Glob {
        Glob::parse(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?}: {e:?}"))
    }

    #[test]
    fn prefix_removal_shortest_and_longest() {
        assert_eq!(glob("*x*y").remove_prefix("xxyy", false), "y");
        assert_eq!(glob("*x").remove_prefix("xxyy", true), "yy");
        assert_eq!(glob("*").remove_prefix("xxyy", false), "xxyy");
        assert_eq!(glob("*").remove_prefix("xxyy", true), "");
        assert_eq!(glob("?\\?").remove_prefix("???y", false), "?y");
        assert_eq!(glob("z").remove_prefix("xxyy", false), "xxyy");
    }

    #[test]
    fn suffix_removal_shortest_and_longest() {
        assert_eq!(glob("\\**").remove_suffix("xx**", true), "xx");
        assert_eq!(glob("\\**\\*").remove_suffix("a***yy*", true), "a");
        assert_eq!(glob(".*").remove_suffix("file.tar.gz", false), "file.tar");
        assert_eq!(glob(".*").remove_suffix("file.tar.gz", true), "file");
        assert_eq!(glob("").remove_suffix("abc", true), "abc");
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        let pattern = glob("()[]{\\}^$.\\*\\?|\\\\");
        assert_eq!(pattern.remove_prefix("()[]{}^$.*?|\\x", false), "x");
    }

    fn replaced(pattern: &str, value: &str, replacement: &str, all: bool) -> String {
        glob(pattern)
            .replace(value, replacement, all, usize::MAX)
            .unwrap_or_else(|| panic!("{pattern:?} on {value:?} hit the size cap"))
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(
            replaced("\\*/", "/foo*/*/*.txt", ".", false),
            "/foo.*/*.txt"
        );
        assert_eq!(replaced("\\*/", "/foo*/*/*.txt", ".", true), "/foo..*.txt");
        assert_eq!(replaced("/?/", "/a/foo/b/c.txt", "/", true), "/foo/c.txt");
        assert_eq!(replaced("o*", "foo boo", "0", false), "f0");
    }

    #[test]
    fn empty_pattern_matches_between_characters() {
        assert_eq!(replaced("", "xy", "w", false), "wxy");
        assert_eq!(replaced("", "xy", "w", true), "wxwyw");
        assert_eq!(replaced("", "xy", "", true), "xy");
    }

    #[test]
    fn replacement_output_is_capped() {
        let pattern = glob("");
        assert_eq!(
            pattern.replace("abc", "12345", true, 100).as_deref(),
            Some("12345a12345b12345c12345")
        );
        assert_eq!(pattern.replace("abc", "12345", true, 22), None);
        assert_eq!(
            glob("x").replace("abc", "long", false, 3).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn huge_patterns_against_short_values_stay_cheap() {
        // Cost follows the live positions, not the pattern length: a pattern grown
        // to the size cap by nested expansions must not make each step that long.
        let stars = "*".repeat(200_000);
        let literals = format!("*{}", "ab".repeat(200_000));
        let value = "abcabc".repeat(4);
        assert_eq!(glob(&stars).remove_prefix(&value, true), "");
        assert_eq!(glob(&literals).remove_prefix(&value, false), value);
        assert_eq!(glob(&literals).remove_suffix(&value, true), value);
        assert_eq!(replaced(&literals, &value, "x", true), value);
    }

    #[test]
    fn wildcards_stop_at_newline() {
        assert_eq!(glob("a*").remove_prefix("ab\ncd", true), "\ncd");
        assert_eq!(glob("?").remove_prefix("\nx", false), "\nx");
    }

    #[test]
    fn multibyte_characters_are_single_units() {
        assert_eq!(glob("?").remove_prefix("한국어", false), "국어");
        assert_eq!(glob("?").remove_suffix("👽🚀🖖", false), "👽🚀");
    }

    #[test]
    fn bad_escapes_are_errors() {
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(
                matches!(Glob::parse(bad), Err(PatternError(_))),
                "{bad:?} should be rejected"
            );
        }
    }
}
