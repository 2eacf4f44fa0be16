//! `--set pattern.key[.sub][+]=value` overrides.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::config::{Config, Target};
use crate::doc::parse_go_bool;
use crate::entries::{Entry, EntryKind, merge_entries, parse_entry};
use crate::error::BakeError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Override {
    pub value: String,
    /// Values accumulated by repeated `--set` of a list attribute.
    pub list: Vec<String>,
    pub append: bool,
}

/// Per target name, overrides keyed by `key[.sub]` in command-line order.
pub type Overrides = BTreeMap<String, IndexMap<String, Override>>;

/// Shell-style glob match (`*`, `?`, `[...]`) of a target name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return !n.is_empty() && n[0] == '[' && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

const LIST_KEYS: &[&str] = &[
    "output",
    "cache-to",
    "cache-from",
    "tags",
    "platform",
    "secrets",
    "ssh",
    "attest",
    "entitlements",
    "network",
    "annotations",
    "no-cache-filter",
    "ulimits",
];

/// Parses `--set` flags against the config's target names.
pub fn parse_overrides(
    config: &Config,
    flags: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Overrides, BakeError> {
    let mut out = Overrides::new();
    for flag in flags {
        let (lhs, value) = match flag.split_once('=') {
            Some((l, v)) => (l, Some(v)),
            None => (flag.as_str(), None),
        };
        let keys: Vec<&str> = lhs.splitn(3, '.').collect();
        if keys.len() < 2 {
            return Err(BakeError::resolve(format!(
                "invalid override key {lhs}, expected target.name"
            )));
        }
        let pattern = keys[0];
        if value.is_none() && keys[1] != "args" {
            return Err(BakeError::resolve(format!(
                "invalid override {flag}, expected target.name=value"
            )));
        }
        // A pattern matches target names, and a matching group stands for its targets.
        let mut names_dedup: Vec<String> = Vec::new();
        let group_targets = config
            .groups
            .iter()
            .filter(|g| glob_match(pattern, &g.name))
            .flat_map(|g| crate::resolve::resolve_group(config, &g.name).0);
        let direct = config
            .targets
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| glob_match(pattern, n));
        for n in direct.chain(group_targets) {
            if !names_dedup.contains(&n) && config.target(&n).is_some() {
                names_dedup.push(n);
            }
        }
        if names_dedup.is_empty() {
            return Err(BakeError::resolve(format!(
                "could not find any target matching '{pattern}'"
            )));
        }
        let full_key = lhs.split_once('.').map(|x| x.1).unwrap_or_default();
        let (key, append) = match full_key.strip_suffix('+') {
            Some(k) => (k.to_string(), true),
            None => (full_key.to_string(), false),
        };
        let value = match value {
            Some(v) => v.to_string(),
            None => {
                // `t.args.NAME` without a value reads NAME from the environment.
                match keys.get(2).and_then(|k| env.get(*k)) {
                    Some(v) => v.clone(),
                    None => continue,
                }
            }
        };
        let attr = key
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_end_matches('+');
        for name in names_dedup {
            let entry = out.entry(name).or_default().entry(key.clone()).or_default();
            if LIST_KEYS.contains(&attr) {
                entry.list.push(value.clone());
            }
            entry.value = value.clone();
            entry.append = append;
        }
    }
    Ok(out)
}

fn entries(kind: EntryKind, values: &[String]) -> Result<Vec<Entry>, BakeError> {
    let mut out = Vec::new();
    for v in values {
        if v.is_empty() {
            continue;
        }
        out.extend(crate::entries::parse_entries(kind, v).map_err(BakeError::resolve)?);
    }
    Ok(out)
}

fn set_entries(
    kind: EntryKind,
    field: &mut Option<Vec<Entry>>,
    o: &Override,
) -> Result<(), BakeError> {
    let parsed = entries(kind, &o.list)?;
    if o.append {
        merge_entries(kind, field.get_or_insert_with(Vec::new), &parsed);
    } else {
        *field = Some(parsed);
    }
    Ok(())
}

fn bool_value(key: &str, v: &str) -> Result<bool, BakeError> {
    parse_go_bool(v)
        .ok_or_else(|| BakeError::resolve(format!("invalid value {v} for boolean key {key}")))
}

fn set_list(field: &mut Option<Vec<String>>, o: &Override) {
    let values: Vec<String> = o.list.iter().filter(|v| !v.is_empty()).cloned().collect();
    if o.append {
        field.get_or_insert_with(Vec::new).extend(values);
    } else {
        *field = Some(values);
    }
}

/// Applies one target's overrides (push and load last, in that order).
pub fn apply_overrides(
    t: &mut Target,
    overrides: Option<&IndexMap<String, Override>>,
) -> Result<(), BakeError> {
    let Some(overrides) = overrides else {
        return Ok(());
    };
    let mut push = None;
    let mut load = None;
    for (key, o) in overrides {
        let value = o.value.clone();
        let (attr, sub) = match key.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (key.as_str(), None),
        };
        let need_sub = |what: &str| {
            sub.map(str::to_string)
                .ok_or_else(|| BakeError::resolve(format!("{what} require name")))
        };
        match attr {
            "context" => t.context = Some(value),
            "dockerfile" => t.dockerfile = Some(value),
            "args" => {
                let k = need_sub("args")?;
                t.args
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k, Some(value));
            }
            "contexts" => {
                let k = need_sub("contexts")?;
                let map = t.contexts.get_or_insert_with(BTreeMap::new);
                if value.is_empty() {
                    map.remove(&k);
                } else {
                    map.insert(k, value);
                }
            }
            "labels" => {
                let k = need_sub("labels")?;
                t.labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k, Some(value));
            }
            "tags" => set_list(&mut t.tags, o),
            "platform" | "platforms" => set_list(&mut t.platforms, o),
            "cache-from" => set_entries(EntryKind::Cache, &mut t.cache_from, o)?,
            "cache-to" => set_entries(EntryKind::Cache, &mut t.cache_to, o)?,
            "target" => t.target = Some(value),
            "call" => t.call = Some(value),
            "secrets" => set_entries(EntryKind::Secret, &mut t.secret, o)?,
            "secret" => {
                let id = need_sub("secret")?;
                let list = t.secret.get_or_insert_with(Vec::new);
                let Some(existing) = list.iter_mut().find(|e| e.get("id") == Some(&id)) else {
                    return Err(BakeError::resolve(format!(
                        "secret \"{id}\" must be declared before it can be overridden"
                    )));
                };
                let mut entry =
                    parse_entry(EntryKind::Secret, &value).map_err(BakeError::resolve)?;
                entry.insert("id".into(), id);
                *existing = entry;
            }
            "ssh" => set_entries(EntryKind::Ssh, &mut t.ssh, o)?,
            "output" => set_entries(EntryKind::Output, &mut t.output, o)?,
            "attest" => {
                let parsed = entries(EntryKind::Attest, &o.list)?;
                merge_entries(
                    EntryKind::Attest,
                    t.attest.get_or_insert_with(Vec::new),
                    &parsed,
                );
            }
            "entitlements" => t
                .entitlements
                .get_or_insert_with(Vec::new)
                .extend(o.list.iter().cloned()),
            "annotations" => t
                .annotations
                .get_or_insert_with(Vec::new)
                .extend(o.list.iter().cloned()),
            "no-cache" => t.no_cache = Some(bool_value(key, &value)?),
            "no-cache-filter" => set_list(&mut t.no_cache_filter, o),
            "shm-size" => t.shm_size = Some(value),
            "ulimits" => set_list(&mut t.ulimits, o),
            "network" => t.network = Some(value),
            "pull" => t.pull = Some(bool_value(key, &value)?),
            "push" => push = Some(bool_value(key, &value)?),
            "load" => load = Some(bool_value(key, &value)?),
            "description" => t.description = Some(value),
            _ => return Err(BakeError::resolve(format!("unknown key: {attr}"))),
        }
    }
    if let Some(p) = push {
        apply_push(t, p);
    }
    if let Some(l) = load {
        apply_load(t, l);
    }
    Ok(())
}

fn output_type(e: &Entry) -> &str {
    e.get("type").map(String::as_str).unwrap_or("")
}

fn apply_push(t: &mut Target, push: bool) {
    let outputs = t.output.get_or_insert_with(Vec::new);
    if outputs
        .iter()
        .any(|e| matches!(output_type(e), "local" | "tar"))
    {
        return;
    }
    if !push {
        outputs.retain(|e| output_type(e) != "registry");
    }
    let mut has_image = false;
    for e in outputs.iter_mut() {
        match output_type(e) {
            "image" => {
                e.insert("push".into(), push.to_string());
                has_image = true;
            }
            "registry" => has_image = true,
            _ => {}
        }
    }
    if !has_image && push {
        let mut e = Entry::new();
        e.insert("type".into(), "image".into());
        e.insert("push".into(), "true".into());
        outputs.push(e);
    }
}

fn apply_load(t: &mut Target, load: bool) {
    if !load {
        return;
    }
    let outputs = t.output.get_or_insert_with(Vec::new);
    if outputs
        .iter()
        .any(|e| matches!(output_type(e), "local" | "tar"))
    {
        return;
    }
    if outputs
        .iter()
        .any(|e| output_type(e) == "docker" && !e.contains_key("dest"))
    {
        return;
    }
    let mut e = Entry::new();
    e.insert("type".into(), "docker".into());
    outputs.push(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("web*", "webapp"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("web?", "webapp"));
        assert!(glob_match("[a-c]pp", "bpp"));
    }
}
