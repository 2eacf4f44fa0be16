//! Shell-style word expansion as BuildKit's Dockerfile frontend performs it.
//!
//! This is not a shell: there is no command substitution, arithmetic or globbing of
//! file names. It removes quotes, applies the Dockerfile escape character and
//! expands `$name` / `${name...}` references (with the `-`, `+`, `?`, `#`, `%` and `/`
//! modifiers), optionally splitting the result into words the way BuildKit does.
//! Every lookup is recorded so callers can warn about undefined variables and know
//! which build arguments an instruction depends on.

mod expander;
mod pattern;
mod words;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where expansion looks variables up.
pub trait Env {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// `KEY=value` pairs in declaration order; a later pair shadows an earlier one, the way
/// repeated `ENV`/`ARG` instructions do.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// Result of expanding one word.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    pub value: String,
    /// Names of variables that were referenced and found in the environment.
    pub used: BTreeSet<String>,
    /// Names of variables that were referenced but not set.
    pub unset: BTreeSet<String>,
}

/// Result of expanding text and splitting it into words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WordsExpansion {
    pub words: Vec<String>,
    /// Names of variables that were referenced and found in the environment.
    pub used: BTreeSet<String>,
    /// Names of variables that were referenced but not set.
    pub unset: BTreeSet<String>,
}

/// Expansion failed: unbalanced quotes or braces, an unsupported modifier, a bad
/// pattern, or a `${name?message}` check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {input:?}: {message}")]
pub struct ShellError {
    /// What went wrong, without the input (e.g. `syntax error: bad substitution`).
    pub message: String,
    /// The text that was being expanded.
    pub input: String,
}

/// Expands `$VAR`-style references using an escape character (`\` or `` ` ``).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    options: Options,
}

/// BuildKit's knobs for the few places that expand text without treating it as
/// shell words (heredocs, `ONBUILD` triggers kept for later).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Keep quote characters in the output instead of removing them.
    pub(crate) raw_quotes: bool,
    /// Keep escape characters in the output.
    pub(crate) raw_escapes: bool,
    /// Treat `'` and `"` as ordinary characters.
    pub(crate) skip_quotes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    pub(crate) skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            options: Options::default(),
        }
    }

    /// Keep `'` and `"` in the output (they still group characters into words).
    #[must_use]
    pub fn with_raw_quotes(mut self, on: bool) -> Self {
        self.options.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (the escaped character is still literal).
    #[must_use]
    pub fn with_raw_escapes(mut self, on: bool) -> Self {
        self.options.raw_escapes = on;
        self
    }

    /// Treat quote characters as ordinary text (heredoc bodies).
    #[must_use]
    pub fn with_skip_quotes(mut self, on: bool) -> Self {
        self.options.skip_quotes = on;
        self
    }

    /// Leave `$name` / `${name...}` as written when `name` is unset.
    #[must_use]
    pub fn with_skip_unset(mut self, on: bool) -> Self {
        self.options.skip_unset = on;
        self
    }

    /// Expand `word` as one word (no splitting), quotes removed.
    pub fn expand_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let out = expander::expand(self, word, env)?;
        Ok(Expansion {
            value: out.value,
            used: out.used,
            unset: out.unset,
        })
    }

    /// Expand `text` and split it into words, quotes removed.
    pub fn expand_words(&self, text: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        Ok(self.expand_words_tracked(text, env)?.words)
    }

    /// Like [`Lexer::expand_words`], also reporting which variables were referenced.
    pub fn expand_words_tracked(
        &self,
        text: &str,
        env: &dyn Env,
    ) -> Result<WordsExpansion, ShellError> {
        let out = expander::expand(self, text, env)?;
        Ok(WordsExpansion {
            words: out.words,
            used: out.used,
            unset: out.unset,
        })
    }
}
