//! Dockerfile text → raw AST, with BuildKit's line, comment, directive and heredoc rules.
//!
//! The AST is deliberately untyped: every instruction keeps its keyword, extracted
//! `--flags`, argument words and source lines. Typing and validation happen in
//! [`crate::dockerfile::instructions`], so that the conformance rendering can be checked
//! independently of instruction semantics.

mod args;
mod directives;
mod heredoc;
mod render;

use serde::Serialize;

pub use directives::{Directive, Directives};
pub use heredoc::Heredoc;
pub use heredoc::parse_opener as heredoc_opener;
pub use render::go_quote;

/// A Dockerfile split into instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub directives: Directives,
    /// The escape character in effect (`\` unless `# escape=` changed it).
    pub escape: char,
    pub nodes: Vec<Node>,
    pub warnings: Vec<ParseWarning>,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`run`, `Run`, `RUN`...).
    pub keyword: String,
    /// The logical line: continuations joined, comment lines dropped, heredoc bodies excluded.
    pub original: String,
    /// `--name[=value]` words found before the arguments, without quotes.
    pub flags: Vec<String>,
    pub args: Vec<String>,
    /// The instruction an `ONBUILD` wraps.
    pub onbuild: Option<Box<Node>>,
    /// Whether the arguments were written as a JSON array (exec form).
    pub json: bool,
    pub heredocs: Vec<Heredoc>,
    /// 1-based first and last source line, heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines immediately above the instruction, `#` and surrounding blanks removed.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in lower case, as instruction dispatch compares it.
    pub fn command(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// BuildKit's debugging rendering, e.g. `copy ["--from=a"] "x" "/y"`.
    pub fn dump(&self) -> String {
        render::dump(self)
    }
}

/// A non-fatal finding while parsing (BuildKit reports these as warnings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    pub line: usize,
    pub message: String,
    pub url: String,
}

/// Why the text is not a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {start_line}: {message}")]
pub struct ParseError {
    pub start_line: usize,
    pub end_line: usize,
    pub message: String,
    /// Text inside the line to point the caret at, when known.
    pub needle: Option<String>,
}

impl ParseError {
    fn new(start_line: usize, end_line: usize, message: impl Into<String>) -> Self {
        Self {
            start_line,
            end_line,
            message: message.into(),
            needle: None,
        }
    }
}

/// Parse Dockerfile source into instructions.
pub fn parse(src: &str) -> Result<Ast, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut lines = LineReader::new(src);
    let mut directives = Directives::default();
    let mut escape = '\\';
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();

    while let Some(raw) = lines.next_line() {
        let line_no = lines.line_no;
        let trimmed = trim_newline(raw).trim_start();
        let is_comment = trimmed.starts_with('#');
        if is_comment {
            // As BuildKit: drop the line's first character (the `#` unless indented).
            let unindented = trim_newline(raw);
            let first_len = unindented.chars().next().map_or(0, char::len_utf8);
            let text = unindented.get(first_len..).unwrap_or_default().trim();
            if text.is_empty() {
                comments.clear();
            } else {
                comments.push(text.to_string());
            }
        }
        let is_directive = directives
            .observe(trimmed, line_no)
            .map_err(|message| ParseError::new(line_no, line_no, message))?;
        if is_directive {
            // Directives are not descriptions of the instruction that follows.
            comments.pop();
            escape = directives.escape_char();
        }
        let first = if is_comment { "" } else { trimmed };
        let start_line = line_no;
        let (line, mut ended) = trim_continuation(first, escape);
        if ended && line.is_empty() {
            continue;
        }
        let mut line = line.to_string();
        let mut empty_continuation = false;
        while !ended {
            let Some(raw) = lines.next_line() else { break };
            let next = trim_newline(raw);
            let next_trimmed = next.trim_start();
            if next_trimmed.starts_with('#') {
                continue;
            }
            if next_trimmed.is_empty() {
                empty_continuation = true;
                continue;
            }
            let (piece, piece_ended) = trim_continuation(next, escape);
            line.push_str(piece);
            ended = piece_ended;
        }
        if empty_continuation {
            warnings.push(ParseWarning {
                line: lines.line_no,
                message: format!("Empty continuation line found in: {line}"),
                url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/".into(),
            });
        }
        let end_line = lines.line_no;
        let mut node = args::node_from_line(&line, escape, std::mem::take(&mut comments)).map_err(
            |(message, needle)| ParseError {
                needle,
                ..ParseError::new(start_line, end_line, message)
            },
        )?;
        node.start_line = start_line;
        if heredoc::allowed(&node) && line.contains("<<") {
            let found = heredoc::from_line(&line)
                .map_err(|message| ParseError::new(start_line, lines.line_no, message))?;
            for mut doc in found {
                let mut terminated = false;
                while let Some(raw) = lines.next_line() {
                    let candidate = trim_newline(raw);
                    let candidate = if doc.chomp {
                        candidate.trim_start_matches('\t')
                    } else {
                        candidate
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(ParseError {
                        needle: Some(format!("<<{}", doc.name)),
                        ..ParseError::new(
                            start_line,
                            lines.line_no,
                            format!("unterminated heredoc {}", doc.name),
                        )
                    });
                }
                node.heredocs.push(doc);
            }
        }
        node.end_line = lines.line_no.max(end_line);
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(ParseError::new(
            lines.line_no.max(1),
            lines.line_no.max(1),
            "file with no instructions",
        ));
    }
    Ok(Ast {
        directives,
        escape,
        nodes,
        warnings,
    })
}

/// Splits text into lines that keep their `\n`, counting them.
struct LineReader<'a> {
    rest: &'a str,
    line_no: usize,
}

impl<'a> LineReader<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            rest: src,
            line_no: 0,
        }
    }

    fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.line_no += 1;
        Some(line)
    }
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Removes a trailing escape character (plus trailing blanks) that continues the line.
/// An escape preceded by another escape is a literal, not a continuation.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

#[cfg(test)]
mod tests;
