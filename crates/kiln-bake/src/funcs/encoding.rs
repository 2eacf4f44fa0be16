//! Encoding, hashing and identifier functions.

use std::collections::BTreeMap;

use base64::Engine;
use md5::Digest;

use super::{FnResult, arg_str, arity};
use crate::value::Value;

pub fn call(name: &str, args: &[Value]) -> Option<FnResult> {
    Some(match name {
        "base64encode" => str_fn(args, |s| {
            Ok(base64::engine::general_purpose::STANDARD.encode(s))
        }),
        "base64decode" => str_fn(args, |s| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| "failed to decode base64 data".to_string())?;
            String::from_utf8(bytes)
                .map_err(|_| "the result of decoding the provided string is not valid UTF-8".into())
        }),
        "urlencode" => str_fn(args, |s| Ok(url_encode(s))),
        "md5" => str_fn(args, |s| Ok(hex(&md5::Md5::digest(s.as_bytes())))),
        "sha1" => str_fn(args, |s| Ok(hex(&sha1::Sha1::digest(s.as_bytes())))),
        "sha256" => str_fn(args, |s| Ok(hex(&sha2::Sha256::digest(s.as_bytes())))),
        "sha512" => str_fn(args, |s| Ok(hex(&sha2::Sha512::digest(s.as_bytes())))),
        "byteslen" => arity(args, 1)
            .and_then(|_| arg_str(args, 0))
            .map(|s| Value::Number(s.len() as f64)),
        "uuidv4" => arity(args, 0).map(|_| Value::String(uuid::Uuid::new_v4().to_string())),
        "uuidv5" => arity(args, 2).and_then(|_| {
            let ns = match arg_str(args, 0)?.as_str() {
                "dns" => uuid::Uuid::NAMESPACE_DNS,
                "url" => uuid::Uuid::NAMESPACE_URL,
                "oid" => uuid::Uuid::NAMESPACE_OID,
                "x500" => uuid::Uuid::NAMESPACE_X500,
                other => uuid::Uuid::parse_str(other)
                    .map_err(|e| format!("uuidv5() doesn't support namespace {other}: {e}"))?,
            };
            Ok(Value::String(
                uuid::Uuid::new_v5(&ns, arg_str(args, 1)?.as_bytes()).to_string(),
            ))
        }),
        "jsonencode" => arity(args, 1).map(|_| Value::String(args[0].to_json().to_string())),
        "jsondecode" => str_fn_value(args, |s| {
            serde_json::from_str::<serde_json::Value>(s)
                .map(|j| Value::from_json(&j))
                .map_err(|e| format!("invalid JSON: {e}"))
        }),
        "csvdecode" => str_fn_value(args, csv_decode),
        "bcrypt" | "rsadecrypt" | "bytesslice" | "convert" => {
            Err(format!("{name} is not supported by kiln"))
        }
        _ => return None,
    })
}

fn str_fn(args: &[Value], f: impl Fn(&str) -> Result<String, String>) -> FnResult {
    arity(args, 1)?;
    f(&arg_str(args, 0)?).map(Value::String)
}

fn str_fn_value(args: &[Value], f: impl Fn(&str) -> FnResult) -> FnResult {
    arity(args, 1)?;
    f(&arg_str(args, 0)?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits CSV text into records, honouring double-quoted fields.
pub fn csv_records(s: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                any = false;
            }
            '\r' => {}
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err("extraneous or missing \" in quoted-field".into());
    }
    if any {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

fn csv_decode(s: &str) -> FnResult {
    let records = csv_records(s)?;
    let Some((header, rows)) = records.split_first() else {
        return Err("missing header line".into());
    };
    let mut out = Vec::new();
    for row in rows {
        if row.len() != header.len() {
            return Err("wrong number of fields in record".into());
        }
        let obj: BTreeMap<String, Value> = header
            .iter()
            .cloned()
            .zip(row.iter().map(|v| Value::String(v.clone())))
            .collect();
        out.push(Value::Object(obj));
    }
    Ok(Value::List(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_vectors() {
        let r = call("md5", &[Value::str("hello")]).unwrap().unwrap();
        assert_eq!(r, Value::str("5d41402abc4b2a76b9719d911017c592"));
        let r = call("sha1", &[Value::str("hello")]).unwrap().unwrap();
        assert_eq!(r, Value::str("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"));
    }

    #[test]
    fn csv_handles_quotes() {
        let recs = csv_records("a,\"b,c\",d").unwrap();
        assert_eq!(recs, vec![vec!["a".to_string(), "b,c".into(), "d".into()]]);
    }
}
