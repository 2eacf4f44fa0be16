//! Splitting one logical line into keyword, flags and argument words, with each
//! instruction's own argument syntax (JSON or shell form, key=value pairs, ...).

use super::Node;

/// A message plus the text it is about (for the caret).
pub(super) type LineError = (String, Option<String>);

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// ONBUILD nesting kept in the AST; deeper chains (only ever an error later) are
/// rejected here so that hostile input cannot exhaust the stack.
const MAX_ONBUILD_DEPTH: usize = 8;

pub(super) fn node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Node, LineError> {
    nested_node_from_line(line, escape, comments, 0)
}

fn nested_node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, LineError> {
    let trimmed = line.trim();
    let (keyword, rest) = match trimmed.find(is_blank) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start_matches(is_blank)),
        None => (trimmed, ""),
    };
    let (rest, flags) = extract_flags(rest);
    let rest = rest.trim();
    let mut node = Node {
        keyword: keyword.to_string(),
        original: line.to_string(),
        flags,
        args: Vec::new(),
        onbuild: None,
        json: false,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        comments,
    };
    let command = keyword.to_ascii_lowercase();
    match command.as_str() {
        "add" | "copy" | "volume" => {
            node.json = maybe_json_list(rest, &mut node.args, true)?;
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            node.json = maybe_json_list(rest, &mut node.args, false)?;
        }
        "arg" => node.args = words(rest, escape),
        "env" | "label" => node.args = name_values(rest, &command, escape)?,
        "expose" | "from" => node.args = split_blanks(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args.push(rest.to_string());
        }
        "healthcheck" => {
            let kind_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if kind_len > 0 {
                let (kind, cmd) = rest.split_at(kind_len);
                node.args.push(kind.to_string());
                node.json = maybe_json_list(cmd.trim_start(), &mut node.args, false)?;
            }
        }
        "onbuild" if !rest.is_empty() => {
            if depth >= MAX_ONBUILD_DEPTH {
                return Err((
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string(),
                    Some(keyword.to_string()),
                ));
            }
            let inner = nested_node_from_line(rest, escape, Vec::new(), depth + 1)?;
            node.onbuild = Some(Box::new(inner));
        }
        // Unknown keywords parse with no arguments; instruction typing rejects them.
        _ => {}
    }
    Ok(node)
}

/// Leading `--flag[=value]` words. Quotes inside a flag are removed, a backslash escapes
/// the next byte, and `--` alone ends the flags.
pub(super) fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut pos = 0;
    let bytes = line.as_bytes();
    loop {
        while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if !line[pos..].starts_with("--") {
            return (&line[pos..], flags);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        let mut keep_blank = false;
        while pos < bytes.len() {
            let b = bytes[pos];
            match quote {
                None if (b as char).is_ascii_whitespace() => break,
                None if b == b'\'' || b == b'"' => {
                    quote = Some(b);
                    keep_blank = true;
                }
                Some(q) if b == q => quote = None,
                _ if b == b'\\' => {
                    if pos + 1 < bytes.len() {
                        pos += 1;
                        word.push(bytes[pos]);
                    }
                }
                _ => word.push(b),
            }
            pos += 1;
        }
        let word = String::from_utf8_lossy(&word).into_owned();
        if word == "--" {
            return (&line[pos..], flags);
        }
        if keep_blank || !word.is_empty() {
            flags.push(word);
        }
        if pos >= bytes.len() {
            return ("", flags);
        }
    }
}

/// Words separated by whitespace; quotes and escapes are kept in the words but
/// protect whitespace.
pub(super) fn words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut keep_blank = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (keep_blank || !word.is_empty()) {
                        out.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    keep_blank = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    keep_blank = true;
                }
                if c == escape {
                    match chars.next() {
                        None => continue,
                        Some(next) => {
                            word.push(c);
                            word.push(next);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    match chars.next() {
                        None => {
                            quote = None;
                            continue;
                        }
                        Some(next) => {
                            word.push(c);
                            word.push(next);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
        }
    }
    if in_word && (keep_blank || !word.is_empty()) {
        out.push(word);
    }
    out
}

/// `ENV`/`LABEL`: either legacy `KEY value with spaces` or `k=v k2=v2`, flattened to
/// `key value separator` triples.
fn name_values(rest: &str, command: &str, escape: char) -> Result<Vec<String>, LineError> {
    let upper = command.to_ascii_uppercase();
    let found = words(rest, escape);
    let Some(first) = found.first() else {
        return Err((format!("{upper} requires at least one argument"), None));
    };
    if !first.contains('=') {
        let key_len = rest.find(is_blank).unwrap_or(rest.len());
        let (key, value) = rest.split_at(key_len);
        let value = value.trim_start_matches(is_blank);
        if value.is_empty() {
            return Err((
                format!("{upper} must have two arguments"),
                Some(key.to_string()),
            ));
        }
        return Ok(vec![key.to_string(), value.to_string(), String::new()]);
    }
    let mut out = Vec::with_capacity(found.len() * 3);
    for word in &found {
        let Some((key, value)) = word.split_once('=') else {
            return Err((
                format!("Syntax error - can't find = in {word:?}. Must be of the form: name=value"),
                Some(word.clone()),
            ));
        };
        out.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(out)
}

fn split_blanks(rest: &str) -> Vec<String> {
    rest.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Exec form when `rest` is a JSON array of strings; a JSON array holding anything else
/// is an error; any other text is shell form (one argument, or blank-split words when
/// `split` is set).
fn maybe_json_list(rest: &str, out: &mut Vec<String>, split: bool) -> Result<bool, LineError> {
    if rest.is_empty() {
        return Ok(false);
    }
    if rest.starts_with('[')
        && let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(rest)
    {
        for item in items {
            match item {
                serde_json::Value::String(s) => out.push(s),
                _ => {
                    return Err((
                        "Dockerfile JSON arguments must be an array of strings".to_string(),
                        Some(rest.to_string()),
                    ));
                }
            }
        }
        return Ok(true);
    }
    if split {
        out.extend(split_blanks(rest));
    } else {
        out.push(rest.to_string());
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_plain_word_and_at_double_dash() {
        assert_eq!(
            extract_flags("--a=1 --b x y"),
            ("x y", vec!["--a=1".into(), "--b".into()])
        );
        assert_eq!(extract_flags("--a -- --b"), (" --b", vec!["--a".into()]));
        assert_eq!(
            extract_flags("--m=\"a b\" c"),
            ("c", vec!["--m=a b".into()])
        );
        assert_eq!(extract_flags("--x"), ("", vec!["--x".into()]));
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            words(r#"abc="123 456" def"#, '\\'),
            vec![r#"abc="123 456""#, "def"]
        );
        assert_eq!(words(r"a\ b c", '\\'), vec![r"a\ b", "c"]);
        assert_eq!(words(r"a` b c", '`'), vec![r"a` b", "c"]);
    }

    #[test]
    fn long_onbuild_chains_are_rejected_not_recursed_into() {
        let line = "ONBUILD ".repeat(100_000) + "RUN x";
        let err = node_from_line(&line, '\\', Vec::new()).unwrap_err();
        assert!(err.0.contains("Chaining ONBUILD"));
        let two = node_from_line("ONBUILD ONBUILD RUN x", '\\', Vec::new()).unwrap();
        assert_eq!(two.dump(), r#"onbuild (onbuild (run "x"))"#);
    }

    #[test]
    fn nested_json_is_an_error_but_broken_json_is_shell_form() {
        let mut out = Vec::new();
        assert!(maybe_json_list(r#"[ "echo", [ "x" ] ]"#, &mut out, false).is_err());
        let mut out = Vec::new();
        assert_eq!(
            maybe_json_list(r#"["echo", "x"#, &mut out, false),
            Ok(false)
        );
        assert_eq!(out, vec![r#"["echo", "x"#]);
    }
}
