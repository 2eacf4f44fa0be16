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
    /// Looks at one (left-trimmed) physical line; `Ok(true)` when it was a directive.
    pub(super) fn observe(&mut self, line: &str, line_no: usize) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some((key, value)) = split_directive(line) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "syntax" => &mut self.syntax,
            "escape" => &mut self.escape,
            "check" => &mut self.check,
            _ => {
                self.done = true;
                return Ok(false);
            }
        };
        if slot.is_some() {
            return Err(format!("only one {key} parser directive can be used"));
        }
        if key == "escape" && value != "\\" && value != "`" {
            return Err(format!(
                "invalid escape token '{value}' does not match ` or \\"
            ));
        }
        *slot = Some(Directive {
            value: value.to_string(),
            line: line_no,
        });
        Ok(true)
    }

    /// The escape character the directives select.
    pub fn escape_char(&self) -> char {
        match self.escape.as_ref().map(|d| d.value.as_str()) {
            Some("`") => '`',
            _ => '\\',
        }
    }
}

/// `#` blanks key blanks `=` blanks value, key being a letter then letters or digits.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
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
        assert_eq!(
            split_directive("#syntax=docker/dockerfile:1"),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(split_directive("# just a comment"), None);
        assert_eq!(split_directive("# 1abc=x"), None);
    }

    #[test]
    fn repeated_directive_is_an_error_and_unknown_key_ends_block() {
        let mut d = Directives::default();
        assert_eq!(d.observe("# syntax=a", 1), Ok(true));
        assert!(d.observe("# SYNTAX=b", 2).is_err());
        let mut d = Directives::default();
        assert_eq!(d.observe("# foo=bar", 1), Ok(false));
        assert_eq!(d.observe("# escape=`", 2), Ok(false));
        assert!(d.escape.is_none());
        let mut d = Directives::default();
        assert_eq!(d.observe("#escape=`", 1), Ok(true));
        assert_eq!(d.escape_char(), '`');
    }

    #[test]
    fn bad_escape_value_is_rejected() {
        let mut d = Directives::default();
        assert!(
            d.observe("# escape=x", 1)
                .unwrap_err()
                .contains("invalid escape token")
        );
    }
}
