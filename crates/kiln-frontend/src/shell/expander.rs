//! The expansion engine: one pass over the text that removes quotes, applies escapes,
//! substitutes variables and feeds the word splitter.

use std::collections::BTreeSet;

use super::pattern::Glob;
use super::words::WordSplitter;
use super::{Env, Lexer, Options, ShellError};

/// Deep `${a:-${b:-...}}` nesting recurses; past this depth the input is rejected
/// rather than risking the stack. Real Dockerfiles nest two or three levels.
const MAX_NESTING: usize = 64;

/// `${v//p/r}` copies `r` once per match, and `r` may itself be such an expansion,
/// so nesting grows output exponentially; results past this size are rejected.
const MAX_REPLACE_BYTES: usize = 1 << 20;

pub(super) struct Expanded {
    pub(super) value: String,
    pub(super) words: Vec<String>,
    pub(super) used: BTreeSet<String>,
    pub(super) unset: BTreeSet<String>,
}

pub(super) fn expand(lexer: &Lexer, text: &str, env: &dyn Env) -> Result<Expanded, ShellError> {
    let mut expander = Expander {
        chars: text.chars().collect(),
        pos: 0,
        escape: lexer.escape,
        options: lexer.options,
        raw_escapes: lexer.options.raw_escapes,
        env,
        depth: 0,
        used: BTreeSet::new(),
        unset: BTreeSet::new(),
    };
    match expander.expand_until(None, lexer.options.raw_escapes) {
        Ok((value, words)) => Ok(Expanded {
            value,
            words,
            used: expander.used,
            unset: expander.unset,
        }),
        Err(message) => Err(ShellError {
            message,
            input: text.to_string(),
        }),
    }
}

struct Expander<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    options: Options,
    /// Whether escape characters are kept in the output right now: patterns and
    /// replacements keep them so the pattern parser can tell `\*` from `*`.
    raw_escapes: bool,
    env: &'a dyn Env,
    depth: usize,
    used: BTreeSet<String>,
    unset: BTreeSet<String>,
}

/// The operator of a `${name<op>word}` form, as written.
#[derive(Clone, Copy)]
enum Operator {
    Default,
    Alternative,
    Required,
    RemovePrefix { longest: bool },
    RemoveSuffix { longest: bool },
}

impl Expander<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += 1;
        Some(ch)
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(value) => {
                self.used.insert(name.to_string());
                Some(value.to_string())
            }
            None => {
                self.unset.insert(name.to_string());
                None
            }
        }
    }

    /// Expands until `stop` (consumed, not included) or the end of input, returning
    /// the text and its words. Reaching the end while looking for `stop` is an error.
    fn expand_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "expansion nested more than {MAX_NESTING} levels deep"
            ));
        }
        self.depth += 1;
        let saved_raw_escapes = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.expand_until_inner(stop);
        self.raw_escapes = saved_raw_escapes;
        self.depth -= 1;
        result
    }

    fn expand_until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut out = String::new();
        let mut words = WordSplitter::default();
        let quotes = !self.options.skip_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((out, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                    words.push_splittable_str(&value);
                }
                '\'' if quotes => {
                    let value = self.single_quoted()?;
                    out.push_str(&value);
                    words.push_literal_str(&value);
                }
                '"' if quotes => {
                    let value = self.double_quoted()?;
                    out.push_str(&value);
                    words.push_literal_str(&value);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            out.push(ch);
                            words.push_literal(ch);
                        }
                        // An escape at the very end escapes nothing and disappears.
                        let Some(escaped) = self.next() else { break };
                        out.push(escaped);
                        words.push_literal(escaped);
                    } else {
                        out.push(ch);
                        words.push_splittable(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((out, words.finish())),
        }
    }

    /// Everything up to the closing `'` is literal; nothing can be escaped inside.
    fn single_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        self.pos += 1;
        if self.options.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.options.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(ch) => out.push(ch),
            }
        }
    }

    /// Inside `"`, `$` still expands and the escape character only escapes `"`, `$`
    /// and itself; before anything else it is kept as a literal character.
    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        self.pos += 1;
        if self.options.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    if self.options.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(ch) => {
                    self.pos += 1;
                    let mut literal = ch;
                    if ch == self.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // The loop reports the missing closing quote.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                literal = next;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(literal);
                }
            }
        }
    }

    /// Reads a variable name: a run of digits (positional parameter), one special
    /// parameter character, or letters, digits and underscores.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(ch) if ch.is_numeric() => {
                while let Some(digit) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(digit);
                    self.pos += 1;
                }
                return name;
            }
            Some(ch @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(ch);
                return name;
            }
            _ => {}
        }
        while let Some(ch) = self
            .peek()
            .filter(|c| c.is_alphabetic() || c.is_numeric() || *c == '_')
        {
            name.push(ch);
            self.pos += 1;
        }
        name
    }

    /// Expands the reference starting at the `$` under the cursor.
    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.options.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(first) = self.next() else {
            return Err(format!("syntax error: missing '}}' after ${{{name}"));
        };
        let (colon, op_char) = if first == ':' {
            (true, self.next())
        } else {
            (false, Some(first))
        };
        match op_char {
            Some('}') if !colon => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.options.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some('/') if !colon => self.replace(name),
            Some(op @ ('-' | '+' | '?' | '#' | '%')) => {
                let operator = match op {
                    '-' => Operator::Default,
                    '+' => Operator::Alternative,
                    '?' => Operator::Required,
                    '#' => Operator::RemovePrefix {
                        longest: self.eat(op),
                    },
                    _ => Operator::RemoveSuffix {
                        longest: self.eat(op),
                    },
                };
                self.modifier(name, colon, operator)
            }
            None => Err("syntax error: missing '}'".into()),
            Some(ch) => {
                let colon = if colon { ":" } else { "" };
                Err(format!(
                    "unsupported modifier ({colon}{ch}) in substitution"
                ))
            }
        }
    }

    /// Consumes `ch` if it is next (the doubled `##` / `%%` forms).
    fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads the word of a `${...}` form up to its closing brace.
    fn braced_word(&mut self, raw_escapes: bool, stop: char) -> Result<String, String> {
        match self.expand_until(Some(stop), raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(if stop == '}' {
                "syntax error: missing '}'".to_string()
            } else {
                format!("syntax error: missing '{stop}' in ${{}}")
            }),
            Err(other) => Err(other),
        }
    }

    fn modifier(
        &mut self,
        name: String,
        colon: bool,
        operator: Operator,
    ) -> Result<String, String> {
        let is_pattern = matches!(
            operator,
            Operator::RemovePrefix { .. } | Operator::RemoveSuffix { .. }
        );
        let word = self.braced_word(is_pattern, '}')?;
        let value = self.lookup(&name);
        let Some(value) = value else {
            if self.options.skip_unset {
                return Ok(format!(
                    "${{{name}{}{word}}}",
                    operator_text(colon, operator)
                ));
            }
            return match operator {
                Operator::Default => Ok(word),
                Operator::Alternative => Ok(String::new()),
                Operator::Required => Err(required_message(&name, &word, "unset")),
                Operator::RemovePrefix { .. } | Operator::RemoveSuffix { .. } => {
                    apply_pattern(operator, &word, "")
                }
            };
        };
        let empty_counts_as_unset = colon && value.is_empty();
        match operator {
            Operator::Default if empty_counts_as_unset => Ok(word),
            Operator::Default => Ok(value),
            Operator::Alternative if empty_counts_as_unset => Ok(String::new()),
            Operator::Alternative => Ok(word),
            Operator::Required if empty_counts_as_unset => {
                Err(required_message(&name, &word, "empty"))
            }
            Operator::Required => Ok(value),
            Operator::RemovePrefix { .. } | Operator::RemoveSuffix { .. } => {
                apply_pattern(operator, &word, &value)
            }
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn replace(&mut self, name: String) -> Result<String, String> {
        let all = self.eat('/');
        let pattern = self.braced_word(true, '/')?;
        let replacement = self.braced_word(true, '}')?;
        let value = self.lookup(&name);
        let Some(value) = value.or_else(|| (!self.options.skip_unset).then(String::new)) else {
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
        };
        let glob = Glob::parse(&pattern)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {}", e.0))?;
        glob.replace(&value, &replacement, all, MAX_REPLACE_BYTES)
            .ok_or_else(|| format!("substitution result is larger than {MAX_REPLACE_BYTES} bytes"))
    }
}

fn operator_text(colon: bool, operator: Operator) -> String {
    let op = match operator {
        Operator::Default => "-",
        Operator::Alternative => "+",
        Operator::Required => "?",
        Operator::RemovePrefix { longest: false } => "#",
        Operator::RemovePrefix { longest: true } => "##",
        Operator::RemoveSuffix { longest: false } => "%",
        Operator::RemoveSuffix { longest: true } => "%%",
    };
    if colon {
        format!(":{op}")
    } else {
        op.to_string()
    }
}

fn required_message(name: &str, word: &str, state: &str) -> String {
    if word.is_empty() {
        format!("{name}: is not allowed to be {state}")
    } else {
        format!("{name}: {word}")
    }
}

fn apply_pattern(operator: Operator, pattern: &str, value: &str) -> Result<String, String> {
    let glob = Glob::parse(pattern)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {}", e.0))?;
    Ok(match operator {
        Operator::RemovePrefix { longest } => glob.remove_prefix(value, longest),
        Operator::RemoveSuffix { longest } => glob.remove_suffix(value, longest),
        Operator::Default | Operator::Alternative | Operator::Required => value.to_string(),
    })
}
