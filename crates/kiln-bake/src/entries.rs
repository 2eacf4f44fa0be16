//! Structured list entries (`output`, `cache-from`, `cache-to`, `secret`,
//! `ssh`, `attest`): each accepts a CSV string or an object form.

use std::collections::BTreeMap;

use crate::funcs::csv_fields;
use crate::value::Value;

/// One entry as key/value pairs (`type=local,dest=out`).
pub type Entry = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Output,
    Cache,
    Secret,
    Ssh,
    Attest,
}

impl EntryKind {
    pub fn for_field(field: &str) -> Option<EntryKind> {
        Some(match field {
            "output" => EntryKind::Output,
            "cache-from" | "cache-to" => EntryKind::Cache,
            "secret" => EntryKind::Secret,
            "ssh" => EntryKind::Ssh,
            "attest" => EntryKind::Attest,
            _ => return None,
        })
    }
}

/// Parses the CSV form of an entry.
pub fn parse_entry(kind: EntryKind, s: &str) -> Result<Entry, String> {
    let mut entry = Entry::new();
    let fields = csv_fields(s)?;
    match kind {
        EntryKind::Ssh => {
            // `id=path1,path2` or bare `id`.
            let s = s.trim();
            match s.split_once('=') {
                Some((id, paths)) => {
                    entry.insert("id".into(), id.to_string());
                    entry.insert("paths".into(), paths.to_string());
                }
                None => {
                    entry.insert("id".into(), s.to_string());
                }
            }
            return Ok(entry);
        }
        EntryKind::Cache if fields.len() == 1 && !fields[0].contains('=') => {
            entry.insert("type".into(), "registry".into());
            entry.insert("ref".into(), fields[0].clone());
            return Ok(entry);
        }
        _ => {}
    }
    for field in fields {
        let field = field.trim().to_string();
        if field.is_empty() {
            continue;
        }
        match field.split_once('=') {
            Some((k, v)) => {
                let key = if kind == EntryKind::Secret && k.eq_ignore_ascii_case("source") {
                    "src"
                } else {
                    k
                };
                let key = if kind == EntryKind::Secret && key.eq_ignore_ascii_case("target") {
                    "id"
                } else {
                    key
                };
                entry.insert(key.trim().to_string(), v.to_string());
            }
            None if kind == EntryKind::Output && !entry.contains_key("type") => {
                // A bare word in an output is shorthand for a local destination.
                entry.insert("type".into(), "local".into());
                entry.insert("dest".into(), field);
            }
            None => return Err(format!("invalid value {field:?}: expected key=value")),
        }
    }
    if kind == EntryKind::Attest && !entry.contains_key("type") {
        return Err("attestation type not specified".into());
    }
    Ok(entry)
}

/// Parses one CSV string into entries; a cache list of bare refs
/// (`ref1,ref2`) yields one registry entry per ref.
pub fn parse_entries(kind: EntryKind, s: &str) -> Result<Vec<Entry>, String> {
    if kind == EntryKind::Cache && !s.contains('=') {
        return Ok(s
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                Entry::from([
                    ("type".to_string(), "registry".to_string()),
                    ("ref".to_string(), r.to_string()),
                ])
            })
            .collect());
    }
    parse_entry(kind, s).map(|e| vec![e])
}

/// Entry as an object value, for `target.NAME.output[0].type` references.
pub fn entry_value(kind: EntryKind, e: &Entry) -> Value {
    Value::Object(
        e.iter()
            .map(|(k, v)| {
                let v = if kind == EntryKind::Ssh && k == "paths" {
                    Value::List(v.split(',').map(Value::str).collect())
                } else {
                    Value::String(v.clone())
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// Converts an evaluated object form (`{ type = "local", dest = "out" }`).
pub fn entry_from_object(kind: EntryKind, map: &BTreeMap<String, Value>) -> Result<Entry, String> {
    let mut entry = Entry::new();
    for (k, v) in map {
        let s = match v {
            Value::Null => continue,
            Value::List(items) if kind == EntryKind::Ssh && k == "paths" => items
                .iter()
                .map(|i| i.as_string().ok_or("ssh paths must be strings"))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => other.as_string().ok_or_else(|| {
                format!(
                    "invalid value for {k:?}: string required, got {}",
                    other.type_name()
                )
            })?,
        };
        entry.insert(k.clone(), s);
    }
    if kind == EntryKind::Cache && !entry.contains_key("type") && entry.contains_key("ref") {
        entry.insert("type".into(), "registry".into());
    }
    Ok(entry)
}

fn quote_csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// buildx's canonical `String()` form of an entry.
pub fn canonical(kind: EntryKind, entry: &Entry) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut rest: Vec<(&String, &String)> = Vec::new();
    match kind {
        EntryKind::Ssh => {
            let id = entry.get("id").cloned().unwrap_or_else(|| "default".into());
            return match entry.get("paths") {
                Some(p) if !p.is_empty() => format!("{id}={p}"),
                _ => id,
            };
        }
        EntryKind::Cache => {
            let only_ref = entry.get("type").is_some_and(|t| t == "registry")
                && entry.len() == 2
                && entry.contains_key("ref");
            if only_ref {
                return entry["ref"].clone();
            }
            if let Some(t) = entry.get("type") {
                parts.push(format!("type={t}"));
            }
            rest.extend(entry.iter().filter(|(k, _)| *k != "type"));
        }
        EntryKind::Output => {
            if let Some(t) = entry.get("type") {
                parts.push(format!("type={t}"));
            }
            rest.extend(entry.iter().filter(|(k, _)| *k != "type"));
        }
        EntryKind::Attest => {
            if let Some(t) = entry.get("type") {
                parts.push(format!("type={t}"));
            }
            if let Some(d) = entry.get("disabled") {
                parts.push(format!("disabled={d}"));
            }
            rest.extend(
                entry
                    .iter()
                    .filter(|(k, _)| *k != "type" && *k != "disabled"),
            );
        }
        EntryKind::Secret => {
            for key in ["id", "type", "src", "env"] {
                if let Some(v) = entry.get(key).filter(|v| !v.is_empty()) {
                    parts.push(format!("{key}={v}"));
                }
            }
            rest.extend(
                entry
                    .iter()
                    .filter(|(k, _)| !["id", "type", "src", "env"].contains(&k.as_str())),
            );
        }
    }
    for (k, v) in rest {
        parts.push(quote_csv(&format!("{k}={v}")));
    }
    parts.join(",")
}

/// The key that identifies an entry for de-duplication when lists merge.
pub fn identity(kind: EntryKind, entry: &Entry) -> String {
    match kind {
        EntryKind::Secret | EntryKind::Ssh => entry.get("id").cloned().unwrap_or_default(),
        EntryKind::Attest => entry.get("type").cloned().unwrap_or_default(),
        _ => canonical(kind, entry),
    }
}

/// Appends `add` to `base`, later entries replacing earlier ones with the same identity.
pub fn merge_entries(kind: EntryKind, base: &mut Vec<Entry>, add: &[Entry]) {
    for entry in add {
        let id = identity(kind, entry);
        if let Some(existing) = base.iter_mut().find(|e| identity(kind, e) == id) {
            *existing = entry.clone();
        } else {
            base.push(entry.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_ref_round_trips_as_bare_ref() {
        let e = parse_entry(EntryKind::Cache, "user/app:cache").unwrap();
        assert_eq!(e["type"], "registry");
        assert_eq!(canonical(EntryKind::Cache, &e), "user/app:cache");
    }

    #[test]
    fn attest_orders_type_disabled_then_sorted_attrs() {
        let e = parse_entry(
            EntryKind::Attest,
            "type=sbom,disabled=true,generator=foo,\"ENV1=bar,baz\",ENV2=hello",
        )
        .unwrap();
        assert_eq!(
            canonical(EntryKind::Attest, &e),
            "type=sbom,disabled=true,\"ENV1=bar,baz\",ENV2=hello,generator=foo"
        );
    }

    #[test]
    fn ssh_forms() {
        let e = parse_entry(EntryKind::Ssh, "key=path/to/key").unwrap();
        assert_eq!(canonical(EntryKind::Ssh, &e), "key=path/to/key");
        assert_eq!(
            canonical(
                EntryKind::Ssh,
                &parse_entry(EntryKind::Ssh, "default").unwrap()
            ),
            "default"
        );
    }
}
