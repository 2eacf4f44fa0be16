//! Errors that point at the Dockerfile: file, line, the source line and a caret.

use std::fmt;
use std::sync::Arc;

/// A problem in a Dockerfile, located precisely enough to show the user where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FrontendError {
    /// The label the caller gave the file (usually its path); shared, errors are cloned.
    pub file: Arc<str>,
    /// 1-based line the problem starts on; 0 when it concerns no line.
    pub line: usize,
    /// 1-based last line of the instruction involved.
    pub end_line: usize,
    /// 1-based column and length (in characters) of the offending text on `line`.
    pub column: Option<(u32, u32)>,
    /// The text of `line`, when the line exists.
    pub source_line: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for FrontendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 means the problem is not on a line (e.g. an unknown --target).
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)?;
        }
        if let Some(text) = &self.source_line {
            let number = self.line.to_string();
            write!(f, "\n {number} | {text}")?;
            if let Some((col, len)) = self.column {
                let pad: String = text
                    .chars()
                    .take((col as usize).saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(
                    f,
                    "\n {} | {pad}{}",
                    " ".repeat(number.len()),
                    "^".repeat((len as usize).max(1))
                )?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// An error found while typing one instruction, before it is tied to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstrError {
    pub message: String,
    /// Text to point at inside the instruction's lines.
    pub needle: Option<String>,
    pub hint: Option<String>,
}

impl InstrError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            needle: None,
            hint: None,
        }
    }

    pub fn at(mut self, needle: impl Into<String>) -> Self {
        self.needle = Some(needle.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The source text of a Dockerfile, used to build located errors.
#[derive(Debug, Clone)]
pub(crate) struct SourceText<'a> {
    pub file: &'a str,
    pub src: &'a str,
}

impl SourceText<'_> {
    fn line_text(&self, line: usize) -> Option<&str> {
        let text = self.src.strip_prefix('\u{feff}').unwrap_or(self.src);
        text.lines().nth(line.checked_sub(1)?)
    }

    /// Locates `err` within lines `start..=end`: the caret goes under the first occurrence
    /// of the needle, or under the whole first line when there is none.
    pub fn error(&self, start: usize, end: usize, err: InstrError) -> FrontendError {
        let mut line = start.max(1);
        let mut column = None;
        if let Some(needle) = err.needle.as_deref().filter(|n| !n.is_empty()) {
            for candidate in start.max(1)..=end.max(start) {
                if let Some(pos) = self.line_text(candidate).and_then(|t| t.find(needle)) {
                    let text = self.line_text(candidate).unwrap_or_default();
                    let col = text.get(..pos).map_or(0, |p| p.chars().count()) + 1;
                    line = candidate;
                    column = Some((to_u32(col), to_u32(needle.chars().count())));
                    break;
                }
            }
        }
        let source_line = self.line_text(line).map(str::to_string);
        if column.is_none()
            && let Some(text) = &source_line
        {
            let lead = text.chars().take_while(|c| c.is_whitespace()).count();
            let len = text.trim().chars().count();
            if len > 0 {
                column = Some((to_u32(lead + 1), to_u32(len)));
            }
        }
        FrontendError {
            file: Arc::from(self.file),
            line,
            end_line: end.max(line),
            column,
            source_line,
            message: err.message,
            hint: err.hint,
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_caret_and_hint() {
        let src = SourceText {
            file: "Dockerfile",
            src: "FROM a\nRUN x\nCOPY --foo=bar a b\n",
        };
        let err = src.error(
            3,
            3,
            InstrError::new("unknown flag --foo for COPY")
                .at("--foo=bar")
                .hint("valid flags: --from"),
        );
        assert_eq!(
            err.to_string(),
            "Dockerfile:3: unknown flag --foo for COPY\n 3 | COPY --foo=bar a b\n   |      ^^^^^^^^^\nhint: valid flags: --from"
        );
    }

    #[test]
    fn needle_on_a_continuation_line_moves_the_error_there() {
        let src = SourceText {
            file: "f",
            src: "FROM a\nRUN --mount=type=cache \\\n  --mount=type=bogus x\n",
        };
        let err = src.error(2, 3, InstrError::new("bad").at("type=bogus"));
        assert_eq!((err.line, err.column), (3, Some((11, 10))));
    }

    #[test]
    fn missing_line_renders_message_only() {
        let src = SourceText { file: "f", src: "" };
        let err = src.error(1, 1, InstrError::new("file with no instructions"));
        assert_eq!(err.to_string(), "f:1: file with no instructions");
    }
}
