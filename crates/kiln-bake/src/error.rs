//! Typed errors of bake resolution.

use std::fmt;

/// Where an expression sits in a bake file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// One evaluation problem, positioned.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub kind: DiagKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DiagKind {
    UnknownVariable(String),
    UnknownFunction(String),
    Other(String),
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DiagKind::UnknownVariable(name) => write!(
                f,
                "{}: Unknown variable; There is no variable named \"{name}\".",
                self.pos
            ),
            DiagKind::UnknownFunction(name) => write!(
                f,
                "{}: Call to unknown function; There is no function named \"{name}\".",
                self.pos
            ),
            DiagKind::Other(msg) => write!(f, "{}: {msg}", self.pos),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    /// The file could not be parsed as HCL, JSON or YAML.
    #[error("{pos}: {message}")]
    Parse { pos: Pos, message: String },
    /// Evaluation failed; every diagnostic names its file, line and column.
    #[error("{}", render_diags(.0))]
    Eval(Vec<Diagnostic>),
    #[error("failed to read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Resolution-level problem (unknown target, bad override, ...).
    #[error("{0}")]
    Resolve(String),
}

fn render_diags(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl BakeError {
    pub fn resolve(msg: impl Into<String>) -> Self {
        BakeError::Resolve(msg.into())
    }

    pub fn at(pos: Pos, msg: impl Into<String>) -> Self {
        BakeError::Eval(vec![Diagnostic {
            pos,
            kind: DiagKind::Other(msg.into()),
        }])
    }

    /// Names of variables reported as unknown, for callers that list them.
    pub fn missing_variables(&self) -> Vec<String> {
        match self {
            BakeError::Eval(diags) => diags
                .iter()
                .filter_map(|d| match &d.kind {
                    DiagKind::UnknownVariable(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

pub type Result<T, E = BakeError> = std::result::Result<T, E>;
