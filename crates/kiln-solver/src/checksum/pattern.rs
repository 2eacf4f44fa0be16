//! One path component of a COPY source with Go's `filepath.Match` rules: `*` any run,
//! `?` one character, `[...]` a class (`^` negates, `lo-hi` ranges), `\` escapes. The
//! worker expands sources with the same rules; this copy only decides which context
//! entries a checksum covers.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Char(char),
    Star,
    Question,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// A compiled pattern for one path component (a name without `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ComponentPattern {
    pieces: Vec<Piece>,
}

impl ComponentPattern {
    /// Compiles `text`; the error says what is malformed.
    pub(super) fn compile(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            pieces.push(match ch {
                '*' => Piece::Star,
                '?' => Piece::Question,
                '\\' => Piece::Char(chars.next().ok_or("trailing backslash")?),
                '[' => class(&mut chars)?,
                other => Piece::Char(other),
            });
        }
        Ok(Self { pieces })
    }

    /// Whether all of `name` matches.
    pub(super) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // reachable[i]: the pieces consumed so far can match exactly name[..i].
        let mut reachable = vec![false; name.len() + 1];
        reachable[0] = true;
        for piece in &self.pieces {
            let mut next = vec![false; name.len() + 1];
            if *piece == Piece::Star {
                let mut open = false;
                for (i, slot) in next.iter_mut().enumerate() {
                    open = reachable[i] || (open && name[i - 1] != '/');
                    *slot = open;
                }
            } else {
                for (i, &ch) in name.iter().enumerate() {
                    next[i + 1] = reachable[i] && piece_matches(piece, ch);
                }
            }
            reachable = next;
        }
        reachable[name.len()]
    }
}

fn piece_matches(piece: &Piece, ch: char) -> bool {
    match piece {
        Piece::Char(c) => *c == ch,
        Piece::Question => ch != '/',
        Piece::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != *negated
        }
        Piece::Star => false,
    }
}

fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Piece, String> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Piece::Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = match chars.next_if_eq(&'-') {
            Some(_) => class_char(chars)?,
            None => lo,
        };
        if hi < lo {
            return Err(format!("empty range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    match chars.next() {
        None => Err("unterminated character class".into()),
        Some('-' | ']') => Err("unescaped - or ] in character class".into()),
        Some('\\') => chars.next().ok_or_else(|| "unterminated character class".into()),
        Some(ch) => Ok(ch),
    }
}

/// Whether a component uses a wildcard that is not escaped.
pub(super) fn has_wildcards(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go_filepath_match() {
        for (pattern, name, expected) in [
            ("*.txt", "a.txt", true),
            ("*.txt", "a.md", false),
            ("a*c", "abbbc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[\\]]", "]", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("*", "", true),
            ("x*y*z", "xaaybbz", true),
        ] {
            let compiled = ComponentPattern::compile(pattern).unwrap();
            assert_eq!(compiled.matches(name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in ["[", "[]", "[a-", "a\\", "[z-a]", "[-]"] {
            assert!(ComponentPattern::compile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaped_wildcards_are_literal() {
        assert!(has_wildcards("a*"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("a\\*b"));
        assert!(!has_wildcards("plain"));
    }
}
