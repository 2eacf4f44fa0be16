//! Parser directives (`# syntax=`, `# escape=`, `# check=`) at the top of a Dockerfile.

use serde::Serialize;

/// One directive as found in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    pub value: String,
    pub line: usize,
}

/// The directives of a file. They are only recognised before the first instruction,
/// blank line or ordinary comment; an unknown key ends the directive block too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directives {
    pub syntax: Option<Directive>,
    pub escape: Option<Directive>,
    pub check: Option<Directive>,
    done: bool,
}

impl Directives {
    /// Looks at one (left-trimmed) physical line. Returns the new escape character when
    /// the line is an `escape` directive.
    pub(super) fn observe(&mut self, line: &str, line_no: usize) -> Result<Option<char>, String> {
        if self.done {
            return Ok(None);
        }
        let Some((key, value)) = split_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "syntax" => &mut self.syntax,
            "escape" => &mut self.escape,
            "check" => &mut self.check,
            _ => {
                self.done = true;
                return Ok(None);
            }
        };
        if slot.is_some() {
            return Err(format!("only one {key} parser directive can be used"));
        }
        *slot = Some(Directive { value: value.to_string(), line: line_no });
        if key != "escape" {
            return Ok(None);
        }
        match value {
            "\\" => Ok(Some('\\')),
            "`" => Ok(Some('`')),
            other => Err(format!("invalid escape token '{other}' does not match ` or \\")),
        }
    }
}

/// `#` blanks key blanks `=` blanks value, key being a letter then letters or digits.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let (key, rest) = rest.split_at(key_len);
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_case_insensitive_keys_with_blanks() {
        assert_eq!(split_directive("# Escape = `"), Some(("Escape", "`")));
        assert_eq!(split_directive("#syntax=docker/dockerfile:1"), Some(("syntax", "docker/dockerfile:1")));
        assert_eq!(split_directive("# just a comment"), None);
        assert_eq!(split_directive("# 1abc=x"), None);
    }

    #[test]
    fn repeated_directive_is_an_error_and_unknown_key_ends_block() {
        let mut d = Directives::default();
        assert_eq!(d.observe("# syntax=a", 1), Ok(None));
        assert!(d.observe("# SYNTAX=b", 2).is_err());
        let mut d = Directives::default();
        assert_eq!(d.observe("# foo=bar", 1), Ok(None));
        assert_eq!(d.observe("# escape=`", 2), Ok(None));
        assert!(d.escape.is_none());
    }

    #[test]
    fn bad_escape_value_is_rejected() {
        let mut d = Directives::default();
        assert!(d.observe("# escape=x", 1).unwrap_err().contains("invalid escape token"));
    }
}
