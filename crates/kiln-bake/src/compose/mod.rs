//! Compose files: `services.*.build` (plus the `x-bake` extension) become
//! bake targets, after `${VAR}` interpolation.

use std::collections::BTreeMap;

use serde_yaml_ng::Value as Yaml;

use crate::config::{Config, Group, Target};
use crate::entries::{EntryKind, parse_entry};
use crate::funcs::clean_path;
use crate::value::Value;

mod interpolate;

pub use interpolate::interpolate;
use interpolate::interpolate_yaml;

/// Whether a YAML document is a compose file (has a `services` mapping).
pub fn is_compose(text: &str) -> bool {
    matches!(serde_yaml_ng::from_str::<Yaml>(text), Ok(Yaml::Mapping(m)) if m.contains_key("services"))
}

/// Replaces target-name characters buildx does not allow with `_`.
pub fn sanitize_target_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn merge_yaml(base: &mut Yaml, over: Yaml) {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge_yaml(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn string_list(v: Option<&Yaml>) -> Vec<String> {
    match v {
        Some(Yaml::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A compose "dict or list of KEY=VALUE" field; `None` values mean "unset".
fn dict(v: Option<&Yaml>, sep: char) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    match v {
        Some(Yaml::Mapping(m)) => {
            for (k, val) in m {
                if let Some(k) = scalar(k) {
                    out.insert(k, scalar(val));
                }
            }
        }
        Some(Yaml::Sequence(items)) => {
            for item in items.iter().filter_map(scalar) {
                match item.split_once(sep) {
                    Some((k, val)) => out.insert(k.to_string(), Some(val.to_string())),
                    None => out.insert(item, None),
                };
            }
        }
        _ => {}
    }
    out
}

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..digits].parse().ok()?;
    let mult: f64 = match s[digits..].trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// Human size in binary units as Docker's `units.BytesSize` prints it.
fn bytes_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    let text = format!("{:.4}", v);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", units[i])
}

/// Parses compose files (already read) into one config.
pub fn parse_compose(
    files: &[(String, String)],
    env: &BTreeMap<String, String>,
    file_relative: bool,
) -> Result<Config, String> {
    let mut config = Config::default();
    let mut default_group = Group {
        name: "default".into(),
        description: None,
        targets: Vec::new(),
    };
    // Compose merges its files into one project before validating services.
    let mut merged = Yaml::Null;
    for (name, text) in files {
        let mut doc: Yaml =
            serde_yaml_ng::from_str(text).map_err(|e| format!("failed to parse {name}: {e}"))?;
        interpolate_yaml(&mut doc, env).map_err(|e| format!("failed to parse {name}: {e}"))?;
        merge_yaml(&mut merged, doc);
    }
    {
        let doc = merged;
        let top_secrets = get(&doc, "secrets").cloned();
        let Some(Yaml::Mapping(services)) = get(&doc, "services") else {
            return Ok(config);
        };
        for (svc_name, svc) in services {
            let svc_name = scalar(svc_name).unwrap_or_default();
            let build = get(svc, "build");
            let image = get(svc, "image").and_then(scalar);
            let Some(build) = build else {
                if image.is_none() {
                    return Err(format!(
                        "service {svc_name:?} has neither an image nor a build context specified: invalid compose project"
                    ));
                }
                continue;
            };
            let target_name = sanitize_target_name(&svc_name);
            let mut t = service_target(&target_name, build, image, top_secrets.as_ref(), env)?;
            if file_relative {
                let dir = files
                    .first()
                    .map(|(n, _)| crate::doc::file_dir(n))
                    .unwrap_or_default();
                if let Some(c) = &mut t.context {
                    *c = crate::doc::rebase_path(&dir, c);
                }
                for v in t.contexts.iter_mut().flat_map(|m| m.values_mut()) {
                    *v = crate::doc::rebase_path(&dir, v);
                }
            }
            if !default_group.targets.contains(&target_name) {
                default_group.targets.push(target_name);
            }
            config.add_target(t);
        }
    }
    if !default_group.targets.is_empty() {
        config.groups.push(default_group);
    }
    Ok(config)
}

fn service_target(
    name: &str,
    build: &Yaml,
    image: Option<String>,
    top_secrets: Option<&Yaml>,
    env: &BTreeMap<String, String>,
) -> Result<Target, String> {
    let mut t = Target::named(name);
    if let Some(ctx) = scalar(build) {
        t.context = Some(clean_context(&ctx));
        t.tags = image.map(|i| vec![i]);
        return Ok(t);
    }
    t.context = Some(
        get(build, "context")
            .and_then(scalar)
            .map_or_else(|| ".".to_string(), |c| clean_context(&c)),
    );
    t.dockerfile = get(build, "dockerfile").and_then(scalar);
    t.dockerfile_inline = get(build, "dockerfile_inline").and_then(scalar);
    t.target = get(build, "target").and_then(scalar);
    t.network = get(build, "network").and_then(scalar);
    let mut args = BTreeMap::new();
    for (k, v) in dict(get(build, "args"), '=') {
        // A key without a value takes its value from the environment.
        let v = match (v, get(build, "args")) {
            (Some(v), _) => Some(v),
            (None, _) => env.get(&k).cloned(),
        };
        if let Some(v) = v {
            args.insert(k, Some(v));
        }
    }
    if !args.is_empty() {
        t.args = Some(args);
    }
    let labels: BTreeMap<String, Option<String>> = dict(get(build, "labels"), '=');
    if !labels.is_empty() {
        t.labels = Some(labels);
    }
    let contexts: BTreeMap<String, String> = dict(get(build, "additional_contexts"), '=')
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, rewrite_context(&v))))
        .collect();
    if !contexts.is_empty() {
        t.contexts = Some(contexts);
    }
    let tags = string_list(get(build, "tags"));
    t.tags = if !tags.is_empty() {
        Some(tags)
    } else {
        image.map(|i| vec![i])
    };
    let platforms = string_list(get(build, "platforms"));
    if !platforms.is_empty() {
        t.platforms = Some(platforms);
    }
    t.cache_from = entries(EntryKind::Cache, &string_list(get(build, "cache_from")))?;
    t.cache_to = entries(EntryKind::Cache, &string_list(get(build, "cache_to")))?;
    t.no_cache = get(build, "no_cache").and_then(Yaml::as_bool);
    t.pull = get(build, "pull").and_then(Yaml::as_bool);
    t.shm_size = get(build, "shm_size")
        .and_then(scalar)
        .map(|s| parse_bytes(&s).map_or(s, bytes_size));
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in extra_hosts(get(build, "extra_hosts")) {
        hosts
            .entry(k)
            .and_modify(|e| *e = format!("{e},{v}"))
            .or_insert(v);
    }
    if !hosts.is_empty() {
        t.extra_hosts = Some(hosts);
    }
    if let Some(Yaml::Mapping(ul)) = get(build, "ulimits") {
        let mut out = Vec::new();
        for (k, v) in ul {
            let k = scalar(k).unwrap_or_default();
            match v {
                Yaml::Mapping(_) => {
                    let soft = get(v, "soft").and_then(scalar).unwrap_or_default();
                    let hard = get(v, "hard").and_then(scalar).unwrap_or_default();
                    out.push(format!("{k}={soft}:{hard}"));
                }
                other => out.push(format!("{k}={}", scalar(other).unwrap_or_default())),
            }
        }
        out.sort();
        t.ulimits = Some(out);
    }
    let ssh: Vec<String> = match get(build, "ssh") {
        Some(Yaml::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    scalar(k).unwrap_or_default(),
                    scalar(v).unwrap_or_default()
                )
            })
            .collect(),
        other => string_list(other),
    };
    t.ssh = entries(EntryKind::Ssh, &ssh)?;
    let mut secrets = Vec::new();
    for (source, id) in secret_refs(get(build, "secrets")) {
        let def = top_secrets.and_then(|s| get(s, &source));
        let mut e = crate::entries::Entry::new();
        e.insert("id".into(), id.clone());
        if let Some(def) = def {
            if let Some(f) = get(def, "file").and_then(scalar) {
                e.insert("src".into(), f);
            }
            if let Some(v) = get(def, "environment").and_then(scalar) {
                e.insert("env".into(), v);
            }
        }
        secrets.push(e);
    }
    if !secrets.is_empty() {
        t.secret = Some(secrets);
    }
    let mut attest = Vec::new();
    for (key, ty) in [("sbom", "sbom"), ("provenance", "provenance")] {
        if let Some(v) = get(build, key) {
            let mut e = crate::entries::Entry::new();
            e.insert("type".into(), ty.into());
            match v {
                Yaml::Bool(true) => {}
                Yaml::Bool(false) => {
                    e.insert("disabled".into(), "true".into());
                }
                other => {
                    let s = scalar(other).unwrap_or_default();
                    if s == "false" {
                        e.insert("disabled".into(), "true".into());
                    } else if s != "true" {
                        e.extend(parse_entry(EntryKind::Output, &s)?);
                        e.insert("type".into(), ty.into());
                    }
                }
            }
            attest.push(e);
        }
    }
    if !attest.is_empty() {
        t.attest = Some(attest);
    }
    if let Some(xb) = get(build, "x-bake") {
        apply_x_bake(&mut t, xb)?;
    }
    Ok(t)
}

/// Cleans a local build context path; URLs and git remotes stay verbatim.
fn clean_context(ctx: &str) -> String {
    if ctx.contains("://") || ctx.starts_with("git@") {
        ctx.to_string()
    } else {
        clean_path(ctx)
    }
}

/// Build secrets: `- name` or `- source: name` (with an optional `target` id).
fn secret_refs(v: Option<&Yaml>) -> Vec<(String, String)> {
    let Some(Yaml::Sequence(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Yaml::Mapping(_) => {
                let source = get(item, "source").and_then(scalar)?;
                let id = get(item, "target")
                    .and_then(scalar)
                    .unwrap_or_else(|| source.clone());
                Some((source, id))
            }
            other => scalar(other).map(|s| (s.clone(), s)),
        })
        .collect()
}

fn extra_hosts(v: Option<&Yaml>) -> Vec<(String, String)> {
    match v {
        Some(Yaml::Mapping(m)) => m
            .iter()
            .map(|(k, v)| (scalar(k).unwrap_or_default(), scalar(v).unwrap_or_default()))
            .collect(),
        other => string_list(other)
            .into_iter()
            .filter_map(|h| {
                let sep = h.find(['=', ':'])?;
                Some((h[..sep].to_string(), h[sep + 1..].to_string()))
            })
            .collect(),
    }
}

/// `service:NAME` contexts refer to other compose services, i.e. targets.
fn rewrite_context(v: &str) -> String {
    if let Some(svc) = v.strip_prefix("service:") {
        return format!("target:{}", sanitize_target_name(svc));
    }
    if let Some(t) = v.strip_prefix("target:") {
        return format!("target:{}", sanitize_target_name(t));
    }
    if v.contains("://") || v.contains(':') && !v.starts_with('.') && !v.starts_with('/') {
        return v.to_string();
    }
    clean_path(v)
}

fn entries(
    kind: EntryKind,
    items: &[String],
) -> Result<Option<Vec<crate::entries::Entry>>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    items
        .iter()
        .map(|i| parse_entry(kind, i))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn yaml_to_value(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::List(items.iter().map(yaml_to_value).collect()),
        Yaml::Mapping(m) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| scalar(k).map(|k| (k, yaml_to_value(v))))
                .collect(),
        ),
        Yaml::Tagged(t) => yaml_to_value(&t.value),
    }
}

/// `x-bake` sets bake attributes directly; list attributes given as a single
/// string are promoted to a one-element list, and lists extend compose's.
fn apply_x_bake(t: &mut Target, xb: &Yaml) -> Result<(), String> {
    let Some(m) = xb.as_mapping() else {
        return Ok(());
    };
    for (k, v) in m {
        let Some(key) = scalar(k) else { continue };
        let mut value = yaml_to_value(v);
        let list_attr = matches!(
            key.as_str(),
            "tags"
                | "platforms"
                | "cache-from"
                | "cache-to"
                | "secret"
                | "ssh"
                | "output"
                | "attest"
                | "no-cache-filter"
                | "annotations"
                | "entitlements"
                | "ulimits"
        );
        if let (true, Value::String(s)) = (list_attr, &value) {
            value = Value::List(vec![Value::String(s.clone())]);
        }
        if let (true, Value::Object(map)) = (key == "contexts", &mut value) {
            for v in map.values_mut() {
                if let Value::String(s) = v {
                    *s = rewrite_context(s);
                }
            }
        }
        let mut extra = Target::named(t.name.clone());
        extra.set_attr(&key, &value)?;
        match key.as_str() {
            "tags" => append_dedup(&mut t.tags, extra.tags),
            "platforms" => append_dedup(&mut t.platforms, extra.platforms),
            "cache-from" | "cache-to" | "ssh" | "secret" | "output" | "attest" => {
                let kind = EntryKind::for_field(&key).unwrap_or(EntryKind::Output);
                let (base, add) = match key.as_str() {
                    "cache-from" => (&mut t.cache_from, extra.cache_from),
                    "cache-to" => (&mut t.cache_to, extra.cache_to),
                    "ssh" => (&mut t.ssh, extra.ssh),
                    "secret" => (&mut t.secret, extra.secret),
                    "output" => (&mut t.output, extra.output),
                    _ => (&mut t.attest, extra.attest),
                };
                if let Some(add) = add {
                    let list = base.get_or_insert_with(Vec::new);
                    for e in add {
                        let id = crate::entries::canonical(kind, &e);
                        if !list
                            .iter()
                            .any(|x| crate::entries::canonical(kind, x) == id)
                        {
                            list.push(e);
                        }
                    }
                }
            }
            _ => t.merge(&extra),
        }
    }
    Ok(())
}

fn append_dedup(base: &mut Option<Vec<String>>, add: Option<Vec<String>>) {
    if let Some(add) = add {
        let list = base.get_or_insert_with(Vec::new);
        for a in add {
            if !list.contains(&a) {
                list.push(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes_size(parse_bytes("128m").unwrap()), "128MiB");
        assert_eq!(bytes_size(parse_bytes("1g").unwrap()), "1GiB");
    }
}
