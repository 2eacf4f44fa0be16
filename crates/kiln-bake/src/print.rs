//! `--print` JSON and `--list` tables in buildx's shape.

use serde_json::{Map, Value as Json, json};

use crate::config::{Group, Target};
use crate::doc::VariableInfo;
use crate::entries::{Entry, EntryKind};
use crate::resolve::Resolved;

/// Escapes template markers so printed values read back unchanged.
fn esc(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

fn str_list(v: &[String]) -> Json {
    Json::Array(v.iter().map(|s| Json::String(esc(s))).collect())
}

fn entry_json(kind: EntryKind, e: &Entry) -> Json {
    let mut m = Map::new();
    for (k, v) in e {
        if kind == EntryKind::Ssh && k == "paths" {
            m.insert(
                k.clone(),
                Json::Array(v.split(',').map(|p| Json::String(p.to_string())).collect()),
            );
        } else {
            m.insert(k.clone(), Json::String(esc(v)));
        }
    }
    Json::Object(m)
}

fn entries_json(kind: EntryKind, v: &[Entry]) -> Json {
    if v.is_empty() {
        return Json::Null;
    }
    Json::Array(v.iter().map(|e| entry_json(kind, e)).collect())
}

/// JSON whose objects keep their keys in insertion order when serialized,
/// so `--print` lists attributes in buildx's order.
enum Node {
    Json(Json),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// Entry objects print their identifying key (`type`, or `id`) first.
fn entry_node(v: Json) -> Node {
    let Json::Object(map) = v else {
        return Node::Json(v);
    };
    let mut fields: Vec<(String, Node)> = Vec::with_capacity(map.len());
    for lead in ["type", "id"] {
        if let Some(x) = map.get(lead) {
            fields.push((lead.to_string(), Node::Json(x.clone())));
        }
    }
    for (k, x) in map {
        if k != "type" && k != "id" {
            fields.push((k, Node::Json(x)));
        }
    }
    Node::Object(fields)
}

fn field_node(field: &str, v: Json) -> Node {
    match (EntryKind::for_field(field), v) {
        (Some(_), Json::Array(items)) => Node::Array(items.into_iter().map(entry_node).collect()),
        (_, v) => Node::Json(v),
    }
}

impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Node::Json(j) => j.serialize(s),
            Node::Array(items) => {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// One target as buildx prints it (unset attributes omitted).
pub fn target_json(t: &Target) -> Json {
    Json::Object(target_fields(t).into_iter().collect())
}

/// A target's printed attributes in buildx's field order.
fn target_fields(t: &Target) -> Vec<(String, Json)> {
    let mut m: Vec<(String, Json)> = Vec::new();
    // Empty lists are omitted, as Go's `omitempty` does.
    let mut put = |k: &str, v: Json| {
        if v.is_null() || v.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        m.push((k.to_string(), v));
    };
    if let Some(v) = &t.description {
        put("description", Json::String(esc(v)));
    }
    if let Some(v) = &t.context {
        put("context", Json::String(esc(v)));
    }
    if let Some(v) = &t.contexts {
        put(
            "contexts",
            v.iter()
                .map(|(k, v)| (k.clone(), Json::String(esc(v))))
                .collect::<Map<_, _>>()
                .into(),
        );
    }
    if let Some(v) = &t.dockerfile {
        put("dockerfile", Json::String(esc(v)));
    }
    if let Some(v) = &t.dockerfile_inline {
        put("dockerfile-inline", Json::String(esc(v)));
    }
    if let Some(map) = &t.args {
        put("args", string_map(map));
    }
    if let Some(v) = &t.annotations {
        put("annotations", str_list(v));
    }
    if let Some(v) = &t.attest {
        put("attest", entries_json(EntryKind::Attest, v));
    }
    if let Some(v) = &t.cache_from {
        put("cache-from", entries_json(EntryKind::Cache, v));
    }
    if let Some(v) = &t.cache_to {
        put("cache-to", entries_json(EntryKind::Cache, v));
    }
    if let Some(v) = &t.call {
        put("call", Json::String(v.clone()));
    }
    if let Some(v) = &t.entitlements {
        put("entitlements", str_list(v));
    }
    if let Some(v) = &t.extra_hosts {
        put(
            "extra-hosts",
            v.iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect::<Map<_, _>>()
                .into(),
        );
    }
    if let Some(map) = &t.labels {
        put("labels", string_map(map));
    }
    if let Some(v) = &t.tags {
        put("tags", str_list(v));
    }
    if let Some(v) = &t.network {
        put("network", Json::String(v.clone()));
    }
    if let Some(v) = &t.no_cache_filter {
        put("no-cache-filter", str_list(v));
    }
    if let Some(v) = &t.output {
        put("output", entries_json(EntryKind::Output, v));
    }
    if let Some(v) = &t.platforms {
        put("platforms", str_list(v));
    }
    if let Some(v) = t.pull {
        put("pull", Json::Bool(v));
    }
    if let Some(v) = &t.secret {
        put("secret", entries_json(EntryKind::Secret, v));
    }
    if let Some(v) = &t.shm_size {
        put("shm-size", Json::String(v.clone()));
    }
    if let Some(v) = &t.ssh {
        put("ssh", entries_json(EntryKind::Ssh, v));
    }
    if let Some(v) = &t.target {
        put("target", Json::String(esc(v)));
    }
    if let Some(v) = &t.ulimits {
        put("ulimits", str_list(v));
    }
    if let Some(v) = t.no_cache {
        put("no-cache", Json::Bool(v));
    }
    if let Some(r) = &t.resources {
        let mut rm = Map::new();
        let strs = [
            ("memory", &r.memory),
            ("memory-swap", &r.memory_swap),
            ("cpuset-cpus", &r.cpuset_cpus),
            ("cpuset-mems", &r.cpuset_mems),
        ];
        for (k, v) in strs {
            if let Some(v) = v {
                rm.insert(k.into(), Json::String(v.clone()));
            }
        }
        for (k, v) in [
            ("cpu-shares", r.cpu_shares),
            ("cpu-period", r.cpu_period),
            ("cpu-quota", r.cpu_quota),
        ] {
            if let Some(v) = v {
                rm.insert(k.into(), json!(v));
            }
        }
        put("resources", rm.into());
    }
    m
}

/// Args and labels print null for unset values.
fn string_map(map: &std::collections::BTreeMap<String, Option<String>>) -> Json {
    map.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_ref().map_or(Json::Null, |s| Json::String(esc(s))),
            )
        })
        .collect::<Map<String, Json>>()
        .into()
}

fn group_json(g: &Group) -> Json {
    let mut m = Map::new();
    if let Some(d) = &g.description {
        m.insert("description".into(), Json::String(d.clone()));
    }
    m.insert("targets".into(), str_list(&g.targets));
    Json::Object(m)
}

/// The `--print` output: pretty JSON with attributes in buildx's order.
pub fn print_text(r: &Resolved) -> String {
    let groups = r
        .groups
        .iter()
        .map(|(k, g)| (k.clone(), Node::Json(group_json(g))))
        .collect();
    let targets = r
        .targets
        .iter()
        .map(|(k, t)| {
            let fields = target_fields(t)
                .into_iter()
                .map(|(f, v)| {
                    let node = field_node(&f, v);
                    (f, node)
                })
                .collect();
            (k.clone(), Node::Object(fields))
        })
        .collect();
    let doc = Node::Object(vec![
        ("group".into(), Node::Object(groups)),
        ("target".into(), Node::Object(targets)),
    ]);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The whole `--print` document.
pub fn print_json(r: &Resolved) -> Json {
    let groups: Map<String, Json> = r
        .groups
        .iter()
        .map(|(k, g)| (k.clone(), group_json(g)))
        .collect();
    let targets: Map<String, Json> = r
        .targets
        .iter()
        .map(|(k, t)| (k.clone(), target_json(t)))
        .collect();
    json!({ "group": groups, "target": targets })
}

/// `--list=targets`: every target and group with its description.
pub fn list_targets(config: &crate::config::Config) -> String {
    let mut rows: Vec<(String, String)> = config
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.description.clone().unwrap_or_default()))
        .chain(
            config
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.description.clone().unwrap_or_default())),
        )
        .collect();
    rows.sort();
    rows.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::from("TARGET\tDESCRIPTION\n");
    for (name, desc) in rows {
        out.push_str(&format!("{name}\t{desc}\n"));
    }
    out
}

/// `--list=variables`.
pub fn list_variables(vars: &[VariableInfo]) -> String {
    let mut out = String::from("VARIABLE\tTYPE\tVALUE\tDESCRIPTION\n");
    for v in vars {
        let value = v.value.clone().unwrap_or_else(|| "<null>".into());
        out.push_str(&format!(
            "{}\t{}\t\t{}\t{}\n",
            v.name,
            v.type_name.clone().unwrap_or_default(),
            value,
            v.description.clone().unwrap_or_default()
        ));
    }
    out
}

/// `--list=targets,format=json` / `--list=variables,format=json`.
pub fn list_json_targets(config: &crate::config::Config) -> Json {
    let mut rows: Vec<Json> = config
        .targets
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description}))
        .chain(
            config
                .groups
                .iter()
                .map(|g| json!({"name": g.name, "description": g.description, "group": true})),
        )
        .collect();
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json::Array(rows)
}

pub fn list_json_variables(vars: &[VariableInfo]) -> Json {
    Json::Array(
        vars.iter()
            .map(|v| json!({"name": v.name, "type": v.type_name, "value": v.value, "description": v.description}))
            .collect(),
    )
}
