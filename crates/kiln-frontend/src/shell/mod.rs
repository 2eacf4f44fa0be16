//! Shell-style word expansion as BuildKit's Dockerfile frontend performs it.
//! (Placeholder API: the implementation replaces the bodies, keeping the signatures.)

use std::collections::{BTreeSet, HashMap};

/// Where expansion looks variables up.
pub trait Env {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    pub message: String,
}

/// Expands `$VAR`-style references using an escape character (`\` or `` ` ``).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Self { escape }
    }

    /// Expand `word` as one word (no splitting), quotes removed.
    pub fn expand_word(&self, word: &str, _env: &dyn Env) -> Result<Expansion, ShellError> {
        Ok(Expansion { value: word.to_string(), ..Default::default() })
    }

    /// Expand `text` and split it into words, quotes removed.
    pub fn expand_words(&self, text: &str, _env: &dyn Env) -> Result<Vec<String>, ShellError> {
        Ok(text.split_whitespace().map(str::to_string).collect())
    }
}
