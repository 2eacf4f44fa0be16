//! JSON bake files follow HCL's JSON syntax: strings are templates, and the
//! top-level `variable`, `function`, `target` and `group` keys hold blocks.
//! We translate them to native HCL text so one evaluator serves both.

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(IndexMap<String, Json>),
}

/// Whether `text` looks like a JSON document (an object).
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

pub fn json_to_hcl(text: &str) -> Result<String, String> {
    let doc: Json = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Json::Object(top) = doc else {
        return Err("a JSON bake file must be an object".into());
    };
    let mut out = String::new();
    for (key, value) in &top {
        match key.as_str() {
            "variable" | "target" | "group" | "function" => {
                // Blocks may be given as one object or as a list of objects.
                let groups: Vec<&Json> = match value {
                    Json::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                for group in groups {
                    let Json::Object(blocks) = group else {
                        return Err(format!("{key:?} must be an object of blocks"));
                    };
                    for (label, body) in blocks {
                        let bodies: Vec<&Json> = match body {
                            Json::Array(items) => items.iter().collect(),
                            other => vec![other],
                        };
                        for body in bodies {
                            block(&mut out, key, label, body)?;
                        }
                    }
                }
            }
            _ => {
                out.push_str(&format!("{key} = {}\n", expr(value)));
            }
        }
    }
    Ok(out)
}

fn block(out: &mut String, kind: &str, label: &str, body: &Json) -> Result<(), String> {
    let Json::Object(attrs) = body else {
        return Err(format!("{kind} {label:?} must be an object"));
    };
    out.push_str(&format!("{kind} {} {{\n", quote(label)));
    for (k, v) in attrs {
        match (kind, k.as_str()) {
            ("variable", "validation") => {
                let items: Vec<&Json> = match v {
                    Json::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                for item in items {
                    let Json::Object(vattrs) = item else {
                        return Err("validation must be an object".into());
                    };
                    out.push_str("validation {\n");
                    for (vk, vv) in vattrs {
                        out.push_str(&format!("{vk} = {}\n", expr(vv)));
                    }
                    out.push_str("}\n");
                }
            }
            ("variable", "type") => match v {
                // In JSON the type is written as a string holding the type expression.
                Json::String(t) => out.push_str(&format!("type = {t}\n")),
                other => out.push_str(&format!("type = {}\n", expr(other))),
            },
            ("function", "params") => {
                let Json::Array(items) = v else {
                    return Err("function params must be a list".into());
                };
                let names: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Json::String(s) => Ok(s.clone()),
                        _ => Err("function params must be strings".to_string()),
                    })
                    .collect::<Result<_, _>>()?;
                out.push_str(&format!("params = [{}]\n", names.join(", ")));
            }
            ("function", "variadic_param") => match v {
                Json::String(s) => out.push_str(&format!("variadic_param = {s}\n")),
                _ => return Err("variadic_param must be a string".into()),
            },
            _ => out.push_str(&format!("{} = {}\n", attr_key(k), expr(v))),
        }
    }
    out.push_str("}\n");
    Ok(())
}

fn attr_key(k: &str) -> String {
    k.to_string()
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

fn expr(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => quote(s),
        Json::Array(items) => format!("[{}]", items.iter().map(expr).collect::<Vec<_>>().join(", ")),
        Json::Object(map) => format!(
            "{{\n{}\n}}",
            map.iter()
                .map(|(k, v)| format!("{} = {}", quote(k), expr(v)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_blocks_become_hcl_blocks() {
        let hcl = json_to_hcl(r#"{"variable":{"TAG":{"default":"latest"}},"target":{"app":{"tags":["app:${TAG}"]}}}"#).unwrap();
        assert!(hcl.contains("variable \"TAG\" {"));
        assert!(hcl.contains("tags = [\"app:${TAG}\"]"));
        hcl_edit::parser::parse_body(&hcl).unwrap();
    }
}
