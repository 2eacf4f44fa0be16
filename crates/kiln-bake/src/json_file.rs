//! JSON bake files follow HCL's JSON syntax: strings are templates, and the
//! top-level `variable`, `function`, `target` and `group` keys hold blocks.
//! We translate them to native HCL text so one evaluator serves both, and
//! remember which JSON offset each generated line came from so errors point
//! into the JSON file.

/// A JSON value and the byte offset where it starts.
struct Node {
    at: usize,
    kind: Kind,
}

enum Kind {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, what: &str) -> Result<T, JsonError> {
        Err(JsonError {
            offset: self.pos,
            message: what.to_string(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(&format!("expected '{}'", c as char))
        }
    }

    fn value(&mut self) -> Result<Node, JsonError> {
        self.skip_ws();
        let at = self.pos;
        let kind = match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        let key = self.string()?;
                        self.expect(b':')?;
                        entries.push((key, self.value()?));
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return self.fail("expected ',' or '}'"),
                        }
                    }
                }
                Kind::Object(entries)
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return self.fail("expected ',' or ']'"),
                        }
                    }
                }
                Kind::Array(items)
            }
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') if self.text[self.pos..].starts_with("true") => {
                self.pos += 4;
                Kind::Bool(true)
            }
            Some(b'f') if self.text[self.pos..].starts_with("false") => {
                self.pos += 5;
                Kind::Bool(false)
            }
            Some(b'n') if self.text[self.pos..].starts_with("null") => {
                self.pos += 4;
                Kind::Null
            }
            Some(b'-' | b'0'..=b'9') => {
                let len = self.text[self.pos..]
                    .find(|c: char| {
                        !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                    })
                    .unwrap_or(self.text.len() - self.pos);
                let number = &self.text[self.pos..self.pos + len];
                if number.parse::<f64>().is_err() {
                    return self.fail("invalid number");
                }
                self.pos += len;
                Kind::Number(number.to_string())
            }
            _ => return self.fail("expected a JSON value"),
        };
        Ok(Node { at, kind })
    }

    fn string(&mut self) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return self.fail("expected a string");
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return self.fail("unterminated string");
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.text[self.pos..].chars().next() else {
                        return self.fail("unterminated escape");
                    };
                    self.pos += 1;
                    match e {
                        '"' | '\\' | '/' => out.push(e),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.text[self.pos..].starts_with("\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return self.fail("invalid escape"),
                    }
                }
                c if (c as u32) < 0x20 => return self.fail("control character in string"),
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(JsonError {
            offset: self.pos,
            message: "short unicode escape".into(),
        })?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| JsonError {
            offset: self.pos,
            message: "invalid unicode escape".into(),
        })?;
        self.pos += 4;
        Ok(code)
    }
}

/// A JSON syntax or schema problem at a byte offset of the JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonError {
    pub offset: usize,
    pub message: String,
}

/// HCL text generated from a JSON bake file.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub hcl: String,
    /// For each generated line, the JSON byte offset it was generated from.
    pub line_origins: Vec<usize>,
}

/// Whether `text` looks like a JSON document (an object).
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Collects generated lines and where each came from.
#[derive(Default)]
struct Writer {
    out: String,
    origins: Vec<usize>,
}

impl Writer {
    fn line(&mut self, text: &str, origin: usize) {
        self.out.push_str(text);
        self.out.push('\n');
        self.origins.push(origin);
    }

    /// `prefix` followed by an expression that may span several lines.
    fn expr_line(&mut self, prefix: &str, node: &Node) {
        let mut lines = expr_lines(node);
        if let Some(first) = lines.first_mut() {
            first.0 = format!("{prefix}{}", first.0);
        }
        for (text, origin) in lines {
            self.line(&text, origin);
        }
    }
}

fn schema_error(node: &Node, message: impl Into<String>) -> JsonError {
    JsonError {
        offset: node.at,
        message: message.into(),
    }
}

fn one_or_many(node: &Node) -> Vec<&Node> {
    match &node.kind {
        Kind::Array(items) => items.iter().collect(),
        _ => vec![node],
    }
}

pub fn json_to_hcl(text: &str) -> Result<Translated, JsonError> {
    let mut parser = Parser { text, pos: 0 };
    let doc = parser.value()?;
    parser.skip_ws();
    if parser.pos != text.len() {
        return parser.fail("unexpected data after the JSON document");
    }
    let Kind::Object(top) = &doc.kind else {
        return Err(schema_error(&doc, "a JSON bake file must be an object"));
    };
    let mut w = Writer::default();
    for (key, value) in top {
        match key.as_str() {
            // HCL's JSON syntax reserves "//" for comments.
            "//" => {}
            "variable" | "target" | "group" | "function" => {
                for group in one_or_many(value) {
                    let Kind::Object(blocks) = &group.kind else {
                        return Err(schema_error(
                            group,
                            format!("{key:?} must be an object of blocks"),
                        ));
                    };
                    for (label, body) in blocks {
                        for body in one_or_many(body) {
                            block(&mut w, key, label, body)?;
                        }
                    }
                }
            }
            _ => w.expr_line(&format!("{key} = "), value),
        }
    }
    Ok(Translated {
        hcl: w.out,
        line_origins: w.origins,
    })
}

fn block(w: &mut Writer, kind: &str, label: &str, body: &Node) -> Result<(), JsonError> {
    let Kind::Object(attrs) = &body.kind else {
        return Err(schema_error(
            body,
            format!("{kind} {label:?} must be an object"),
        ));
    };
    w.line(&format!("{kind} {} {{", quote(label)), body.at);
    for (k, v) in attrs {
        match (kind, k.as_str()) {
            (_, "//") => {}
            ("variable", "validation") => {
                for item in one_or_many(v) {
                    let Kind::Object(vattrs) = &item.kind else {
                        return Err(schema_error(item, "validation must be an object"));
                    };
                    w.line("validation {", item.at);
                    for (vk, vv) in vattrs {
                        w.expr_line(&format!("{vk} = "), vv);
                    }
                    w.line("}", item.at);
                }
            }
            // In JSON the type is a string holding the type expression.
            ("variable", "type") => match &v.kind {
                Kind::String(t) => w.line(&format!("type = {t}"), v.at),
                _ => w.expr_line("type = ", v),
            },
            ("function", "params") => {
                let Kind::Array(items) = &v.kind else {
                    return Err(schema_error(v, "function params must be a list"));
                };
                let mut names = Vec::new();
                for item in items {
                    match &item.kind {
                        Kind::String(s) => names.push(s.clone()),
                        _ => return Err(schema_error(item, "function params must be strings")),
                    }
                }
                w.line(&format!("params = [{}]", names.join(", ")), v.at);
            }
            ("function", "variadic_param") => match &v.kind {
                Kind::String(s) => w.line(&format!("variadic_param = {s}"), v.at),
                _ => return Err(schema_error(v, "variadic_param must be a string")),
            },
            _ => w.expr_line(&format!("{k} = "), v),
        }
    }
    w.line("}", body.at);
    Ok(())
}

/// Quotes a JSON string as an HCL template. Text inside `${...}` and
/// `%{...}` is expression syntax and is copied verbatim.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = (c == '$' || c == '%') && chars.get(i + 1) == Some(&'{');
        let escaped = i > 0 && chars[i - 1] == c && (c == '$' || c == '%');
        if opens && !escaped {
            let end = interpolation_end(&chars, i + 2);
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        i += 1;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Index just past the `}` closing an interpolation that starts at `start`.
fn interpolation_end(chars: &[char], start: usize) -> usize {
    let mut depth = 1;
    let mut i = start;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
        } else {
            match c {
                '"' => in_string = true,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    chars.len()
}

/// An expression as generated lines with their origins; objects put each
/// attribute on its own line.
fn expr_lines(node: &Node) -> Vec<(String, usize)> {
    match &node.kind {
        Kind::Null => vec![("null".into(), node.at)],
        Kind::Bool(b) => vec![(b.to_string(), node.at)],
        Kind::Number(n) => vec![(n.clone(), node.at)],
        Kind::String(s) => vec![(quote(s), node.at)],
        Kind::Array(items) => {
            let mut lines = vec![("[".to_string(), node.at)];
            for (i, item) in items.iter().enumerate() {
                let mut item_lines = expr_lines(item).into_iter();
                if let Some((first, _)) = item_lines.next() {
                    let last = lines.len() - 1;
                    if i > 0 {
                        lines[last].0.push_str(", ");
                    }
                    lines[last].0.push_str(&first);
                }
                lines.extend(item_lines);
            }
            let last = lines.len() - 1;
            lines[last].0.push(']');
            lines
        }
        Kind::Object(entries) => {
            let mut lines = vec![("{".to_string(), node.at)];
            for (k, v) in entries {
                let mut entry = expr_lines(v);
                entry[0].0 = format!("{} = {}", quote(k), entry[0].0);
                lines.extend(entry);
            }
            lines.push(("}".into(), node.at));
            lines
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_blocks_become_hcl_blocks() {
        let hcl = json_to_hcl(
            r#"{"variable":{"TAG":{"default":"latest"}},"target":{"app":{"tags":["app:${TAG}"]}}}"#,
        )
        .unwrap()
        .hcl;
        assert!(hcl.contains("variable \"TAG\" {"));
        assert!(hcl.contains("tags = [\"app:${TAG}\"]"));
        hcl_edit::parser::parse_body(&hcl).unwrap();
    }

    #[test]
    fn errors_map_back_to_json_lines() {
        let json =
            "{\n  \"target\": {\n    \"app\": {\n      \"tags\": [\"${nope}\"]\n    }\n  }\n}";
        let t = json_to_hcl(json).unwrap();
        let line = t.hcl.lines().position(|l| l.starts_with("tags")).unwrap();
        let origin = t.line_origins[line];
        assert_eq!(json[..origin].matches('\n').count() + 1, 4);
    }

    #[test]
    fn invalid_json_reports_offset() {
        let err = json_to_hcl("{\"a\": }").unwrap_err();
        assert_eq!(err.offset, 6);
    }
}
