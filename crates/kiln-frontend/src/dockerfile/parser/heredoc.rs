//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) on RUN, COPY and ADD.

use super::Node;

/// One here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter with quotes removed.
    pub name: String,
    /// The body exactly as read, each line with its newline; leading tabs are kept even
    /// for `<<-` (see [`Heredoc::chomped_content`]).
    pub content: String,
    /// Whether variables in the body are expanded (no quotes in the delimiter).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines and from the terminator.
    pub chomp: bool,
    /// A file descriptor written before `<<` (`3<<EOF`).
    pub fd: Option<u32>,
}

impl Heredoc {
    /// The body with leading tabs removed from every line when `chomp` is set.
    pub fn chomped_content(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

pub(super) fn allowed(node: &Node) -> bool {
    !node.json && matches!(node.command().as_str(), "run" | "copy" | "add")
}

/// Finds the heredoc openers among the words of an instruction line, in order.
pub(super) fn from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    Ok(raw_words(line)
        .iter()
        .filter_map(|w| parse_opener(w))
        .collect())
}

/// Parses `[fd]<<[-]delimiter` (the word keeps its quotes).
pub fn parse_opener(word: &str) -> Option<Heredoc> {
    let digits = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let (fd, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name = unquote(rest);
    if name.is_empty() {
        return None;
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '"' || *c == '\'').count();
    Some(Heredoc {
        expand: quotes(&name) == quotes(rest),
        name,
        content: String::new(),
        chomp,
        fd: if fd.is_empty() { None } else { fd.parse().ok() },
    })
}

/// Shell-like word split that keeps quotes and backslashes in the words.
fn raw_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                continue;
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ => {}
        }
        word.push(c);
        if c == '\\'
            && quote != Some('\'')
            && let Some(next) = chars.next()
        {
            word.push(next);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Removes shell quoting from a delimiter word.
fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (Some('\''), _) => out.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers_with_quotes_chomp_and_fd() {
        let h = parse_opener("<<EOF").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, None)
        );
        let h = parse_opener("<<-'END'").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("END", false, true));
        let h = parse_opener("3<<\"X\"").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.fd), ("X", false, Some(3)));
        assert!(parse_opener("<<").is_none());
        assert!(parse_opener("a<<EOF").is_none());
        assert!(parse_opener("<<<EOF").is_none());
    }

    #[test]
    fn finds_several_openers_in_a_line() {
        let docs = from_line("RUN cat <<A >a && cat <<-\"B\" > b").unwrap();
        let names: Vec<_> = docs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
    }

    #[test]
    fn chomp_strips_leading_tabs_of_each_line() {
        let h = Heredoc {
            name: "E".into(),
            content: "\t\ta\n\tb\n c\n".into(),
            expand: true,
            chomp: true,
            fd: None,
        };
        assert_eq!(h.chomped_content(), "a\nb\n c\n");
    }
}
