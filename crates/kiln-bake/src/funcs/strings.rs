//! String functions.

use super::{FnResult, arg_list, arg_num, arg_str, arity};
use crate::value::{Value, format_number};

pub fn call(name: &str, args: &[Value]) -> Option<FnResult> {
    Some(match name {
        "chomp" => unary_str(args, |s| s.trim_end_matches(['\n', '\r']).to_string()),
        "lower" => unary_str(args, |s| s.to_lowercase()),
        "upper" => unary_str(args, |s| s.to_uppercase()),
        "trimspace" => unary_str(args, |s| s.trim().to_string()),
        "strlen" => arity(args, 1)
            .and_then(|_| arg_str(args, 0))
            .map(|s| Value::Number(s.chars().count() as f64)),
        "reverse" => unary_str(args, |s| s.chars().rev().collect()),
        "title" => unary_str(args, title),
        "sanitize" => unary_str(args, |s| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        }),
        "basename" => unary_str(args, path_base),
        "dirname" => unary_str(args, path_dir),
        "trim" => two_str(args, |s, cut| {
            s.trim_matches(|c| cut.contains(c)).to_string()
        }),
        "trimprefix" => two_str(args, |s, p| s.strip_prefix(p).unwrap_or(s).to_string()),
        "trimsuffix" => two_str(args, |s, p| s.strip_suffix(p).unwrap_or(s).to_string()),
        "split" => arity(args, 2).and_then(|_| {
            let sep = arg_str(args, 0)?;
            let s = arg_str(args, 1)?;
            // Go's strings.Split: an empty separator splits into characters.
            if sep.is_empty() {
                return Ok(Value::List(
                    s.chars().map(|c| Value::String(c.to_string())).collect(),
                ));
            }
            Ok(Value::List(s.split(sep.as_str()).map(Value::str).collect()))
        }),
        "join" => join(args),
        "replace" => arity(args, 3).and_then(|_| {
            let s = arg_str(args, 0)?;
            let from = arg_str(args, 1)?;
            let to = arg_str(args, 2)?;
            if from.len() > 2 && from.starts_with('/') && from.ends_with('/') {
                let re = regex::Regex::new(&from[1..from.len() - 1]).map_err(|e| e.to_string())?;
                return Ok(Value::String(re.replace_all(&s, to.as_str()).into_owned()));
            }
            Ok(Value::String(s.replace(&from, &to)))
        }),
        "regex_replace" => arity(args, 3).and_then(|_| {
            let s = arg_str(args, 0)?;
            let re = regex::Regex::new(&arg_str(args, 1)?).map_err(|e| e.to_string())?;
            let to = arg_str(args, 2)?;
            Ok(Value::String(re.replace_all(&s, to.as_str()).into_owned()))
        }),
        "regex" => arity(args, 2).and_then(|_| regex_match(&arg_str(args, 0)?, &arg_str(args, 1)?)),
        "regexall" => arity(args, 2).and_then(|_| {
            let re = regex::Regex::new(&arg_str(args, 0)?).map_err(|e| e.to_string())?;
            let s = arg_str(args, 1)?;
            let mut out = Vec::new();
            for caps in re.captures_iter(&s) {
                out.push(captures_value(&re, &caps));
            }
            Ok(Value::List(out))
        }),
        "substr" => arity(args, 3).and_then(|_| {
            let s: Vec<char> = arg_str(args, 0)?.chars().collect();
            let mut offset = arg_num(args, 1)? as i64;
            let length = arg_num(args, 2)? as i64;
            let len = s.len() as i64;
            if offset < 0 {
                offset += len;
            }
            let offset = offset.clamp(0, len);
            let end = if length < 0 {
                len
            } else {
                (offset + length).min(len)
            };
            Ok(Value::String(
                s[offset as usize..end.max(offset) as usize]
                    .iter()
                    .collect(),
            ))
        }),
        "indent" => arity(args, 2).and_then(|_| {
            let n = arg_num(args, 0)? as usize;
            let s = arg_str(args, 1)?;
            let pad = " ".repeat(n);
            Ok(Value::String(s.replace('\n', &format!("\n{pad}"))))
        }),
        "format" => {
            if args.is_empty() {
                Err("format requires a format string".into())
            } else {
                arg_str(args, 0)
                    .and_then(|f| format(&f, &args[1..]))
                    .map(Value::String)
            }
        }
        "formatlist" => formatlist(args),
        "semvercmp" => {
            arity(args, 2).and_then(|_| semvercmp(&arg_str(args, 0)?, &arg_str(args, 1)?))
        }
        _ => return None,
    })
}

fn unary_str(args: &[Value], f: impl Fn(&str) -> String) -> FnResult {
    arity(args, 1)?;
    Ok(Value::String(f(&arg_str(args, 0)?)))
}

fn two_str(args: &[Value], f: impl Fn(&str, &str) -> String) -> FnResult {
    arity(args, 2)?;
    Ok(Value::String(f(&arg_str(args, 0)?, &arg_str(args, 1)?)))
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// `path.Base` semantics (slash-separated, no OS specifics).
pub fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// `path.Dir` semantics: everything before the last slash, cleaned.
pub fn path_dir(p: &str) -> String {
    match p.rfind('/') {
        None => ".".into(),
        Some(i) => clean_path(&p[..=i]),
    }
}

/// Lexical path cleaning like Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(last) if *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn join(args: &[Value]) -> FnResult {
    if args.len() < 2 {
        return Err("join requires a separator and at least one list".into());
    }
    let sep = arg_str(args, 0)?;
    let mut parts = Vec::new();
    for i in 1..args.len() {
        for item in arg_list(args, i)? {
            match item {
                Value::Null => return Err("element is null; cannot concatenate null values".into()),
                other => parts.push(other.as_string().ok_or("elements must be strings")?),
            }
        }
    }
    Ok(Value::String(parts.join(&sep)))
}

fn captures_value(re: &regex::Regex, caps: &regex::Captures<'_>) -> Value {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.is_empty() {
        return Value::String(caps.get(0).map_or("", |m| m.as_str()).to_string());
    }
    if names.iter().all(Option::is_some) {
        let mut map = std::collections::BTreeMap::new();
        for name in names.into_iter().flatten() {
            map.insert(
                name.to_string(),
                Value::String(caps.name(name).map_or("", |m| m.as_str()).to_string()),
            );
        }
        return Value::Object(map);
    }
    Value::List(
        (1..caps.len())
            .map(|i| {
                caps.get(i)
                    .map_or(Value::Null, |m| Value::String(m.as_str().to_string()))
            })
            .collect(),
    )
}

fn regex_match(pattern: &str, s: &str) -> FnResult {
    let re = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
    match re.captures(s) {
        Some(caps) => Ok(captures_value(&re, &caps)),
        None => Err("pattern did not match any part of the given string".into()),
    }
}

fn formatlist(args: &[Value]) -> FnResult {
    let fmt = arg_str(args, 0)?;
    let mut len: Option<usize> = None;
    for a in &args[1..] {
        if let Value::List(items) = a {
            if len.is_some_and(|l| l != items.len()) {
                return Err("all list arguments must have the same length".into());
            }
            len = Some(items.len());
        }
    }
    let n = len.unwrap_or(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let row: Vec<Value> = args[1..]
            .iter()
            .map(|a| match a {
                Value::List(items) => items[i].clone(),
                other => other.clone(),
            })
            .collect();
        out.push(Value::String(format(&fmt, &row)?));
    }
    Ok(Value::List(out))
}

/// A subset of Go's fmt verbs as go-cty's `format` accepts them.
pub fn format(fmt: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let mut next_arg = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        if i < chars.len() && chars[i] == '%' {
            out.push('%');
            i += 1;
            continue;
        }
        let mut flags = String::new();
        while i < chars.len() && "+-# 0".contains(chars[i]) {
            flags.push(chars[i]);
            i += 1;
        }
        let mut width = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            width.push(chars[i]);
            i += 1;
        }
        let mut precision: Option<usize> = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                p.push(chars[i]);
                i += 1;
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            return Err("format string ends with an incomplete verb".into());
        };
        i += 1;
        let Some(arg) = args.get(next_arg) else {
            return Err(format!("not enough arguments for \"%{verb}\" at {}", i - 1));
        };
        next_arg += 1;
        let text = match verb {
            'v' => match arg {
                Value::String(s) => s.clone(),
                other if flags.contains('#') => other.to_json().to_string(),
                other => other
                    .as_string()
                    .unwrap_or_else(|| other.to_json().to_string()),
            },
            's' => arg.as_string().ok_or("string required for %s")?,
            'q' => serde_json::Value::String(arg.as_string().ok_or("string required for %q")?)
                .to_string(),
            't' => arg.as_bool().ok_or("bool required for %t")?.to_string(),
            'd' => {
                let n = arg.as_number().ok_or("number required for %d")?;
                if n.fract() != 0.0 {
                    return Err(format!(
                        "unsupported value for \"%d\" at {}: an integer is required",
                        i - 2
                    ));
                }
                let s = format_number(n);
                if flags.contains('+') && n >= 0.0 {
                    format!("+{s}")
                } else {
                    s
                }
            }
            'f' | 'F' => {
                let n = arg.as_number().ok_or("number required for %f")?;
                format!("{:.*}", precision.unwrap_or(6), n)
            }
            'e' => format!("{:e}", arg.as_number().ok_or("number required for %e")?),
            'g' => format_number(arg.as_number().ok_or("number required for %g")?),
            'x' => format!(
                "{:x}",
                arg.as_number().ok_or("number required for %x")? as i64
            ),
            'X' => format!(
                "{:X}",
                arg.as_number().ok_or("number required for %X")? as i64
            ),
            'o' => format!(
                "{:o}",
                arg.as_number().ok_or("number required for %o")? as i64
            ),
            'b' => format!(
                "{:b}",
                arg.as_number().ok_or("number required for %b")? as i64
            ),
            other => return Err(format!("unsupported format verb %{other}")),
        };
        let text = match (precision, verb) {
            (Some(p), 's' | 'v') => text.chars().take(p).collect(),
            _ => text,
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len < width {
            let pad = width - len;
            if flags.contains('-') {
                out.push_str(&text);
                out.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'x' | 'X' | 'o' | 'b') {
                let (sign, digits) =
                    text.split_at(if text.starts_with(['-', '+']) { 1 } else { 0 });
                out.push_str(sign);
                out.push_str(&"0".repeat(pad));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&text);
            }
        } else {
            out.push_str(&text);
        }
    }
    if next_arg < args.len() {
        return Err(format!(
            "too many arguments; only {next_arg} used by format string"
        ));
    }
    Ok(out)
}

fn parse_semver(v: &str) -> Option<[u64; 3]> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut out = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        out[i] = p.parse().ok()?;
    }
    Some(out)
}

/// `semvercmp(version, constraint)`: comma-separated `op version` clauses, all must hold.
fn semvercmp(version: &str, constraint: &str) -> FnResult {
    let v = parse_semver(version).ok_or_else(|| format!("invalid version {version:?}"))?;
    if constraint.trim().is_empty() {
        return Err("empty constraint".into());
    }
    for clause in constraint.split(',') {
        let clause = clause.trim();
        let op_len = clause
            .find(|c: char| c.is_ascii_digit() || c == 'v')
            .unwrap_or(clause.len());
        let (op, rest) = clause.split_at(op_len);
        let want =
            parse_semver(rest).ok_or_else(|| format!("invalid constraint {constraint:?}"))?;
        let ord = v.cmp(&want);
        let ok = match op.trim() {
            "" | "=" | "==" => ord.is_eq(),
            "!=" => !ord.is_eq(),
            ">" => ord.is_gt(),
            ">=" | "=>" => ord.is_ge(),
            "<" => ord.is_lt(),
            "<=" | "=<" => ord.is_le(),
            "~" | "~>" => ord.is_ge() && v[0] == want[0] && v[1] == want[1],
            "^" => ord.is_ge() && v[0] == want[0],
            other => return Err(format!("invalid constraint operator {other:?}")),
        };
        if !ok {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_supports_common_verbs() {
        let args = [Value::Number(99.0), Value::str("bottles")];
        assert_eq!(format("%d %s", &args).unwrap(), "99 bottles");
        assert_eq!(
            format("%05d|%-4s|", &[Value::Number(42.0), Value::str("a")]).unwrap(),
            "00042|a   |"
        );
        assert!(format("%d", &[]).is_err());
    }

    #[test]
    fn path_helpers_follow_go_path_semantics() {
        assert_eq!(path_base(""), ".");
        assert_eq!(path_base("/"), "/");
        assert_eq!(path_base("/foo/bar.."), "bar..");
        assert_eq!(path_dir("/foo/bar"), "/foo");
        assert_eq!(path_dir("foo"), ".");
        assert_eq!(clean_path("a/./b/../c/"), "a/c");
    }
}
