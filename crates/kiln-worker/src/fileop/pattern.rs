//! Source path patterns with Go's `filepath.Match` rules, which COPY and ADD use: `*`
//! is any run of characters except `/`, `?` is one character except `/`, `[...]` is a
//! character class (`^` negates, `a-z` ranges), and `\` makes the next character
//! literal. There is no `**`: two stars are just two runs.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyRun,
    AnyOne,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern for one or more path components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `text`; the error says what is malformed (Go's `ErrBadPattern`).
    pub fn compile(text: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            let token = match ch {
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                '\\' => Token::Literal(chars.next().ok_or("trailing backslash")?),
                '[' => compile_class(&mut chars)?,
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Self { tokens })
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        // alive[i]: the tokens seen so far can match exactly chars[..i].
        let mut alive = vec![false; chars.len() + 1];
        alive[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; chars.len() + 1];
            match token {
                Token::AnyRun => {
                    for i in 0..=chars.len() {
                        let extend = i > 0 && next[i - 1] && chars[i - 1] != '/';
                        next[i] = alive[i] || extend;
                    }
                }
                _ => {
                    for i in 0..chars.len() {
                        if alive[i] && single_matches(token, chars[i]) {
                            next[i + 1] = true;
                        }
                    }
                }
            }
            alive = next;
        }
        alive[chars.len()]
    }
}

fn single_matches(token: &Token, ch: char) -> bool {
    match token {
        Token::Literal(lit) => *lit == ch,
        Token::AnyOne => ch != '/',
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&ch)) != *negated
        }
        Token::AnyRun => false,
    }
}

fn compile_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, String> {
    let negated = chars.peek() == Some(&'^');
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    loop {
        if chars.peek() == Some(&']') && !ranges.is_empty() {
            chars.next();
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.peek() == Some(&'-') {
            chars.next();
            class_char(chars)?
        } else {
            lo
        };
        if hi < lo {
            return Err(format!("empty range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped character of a class; `-` and `]` must be escaped there.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    match chars.next() {
        None => Err("unterminated character class".into()),
        Some('-') | Some(']') => Err("unescaped - or ] in character class".into()),
        Some('\\') => chars
            .next()
            .ok_or_else(|| "trailing backslash in character class".to_string()),
        Some(ch) => Ok(ch),
    }
}

/// Whether a path component uses any wildcard (an escaped one does not count).
pub fn has_wildcards(text: &str) -> bool {
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

    fn matches(pattern: &str, name: &str) -> bool {
        Pattern::compile(pattern).unwrap().matches(name)
    }

    #[test]
    fn go_filepath_match_cases() {
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a?b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("*x", "xxx", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(matches(pattern, name), expected, "{pattern:?} vs {name:?}");
        }
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["[", "[^", "[]a]", "[-]", "[a-", "a\\", "[z-a]", "[\\"] {
            assert!(Pattern::compile(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wildcard_detection_skips_escapes() {
        assert!(has_wildcards("*.txt"));
        assert!(has_wildcards("a[bc]"));
        assert!(!has_wildcards("plain.txt"));
        assert!(!has_wildcards("a\\*b"));
    }
}
