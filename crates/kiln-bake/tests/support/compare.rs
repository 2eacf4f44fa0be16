//! Field views of a target and the README's comparison modifiers.

use std::path::Path;

use kiln_bake::Target;
use kiln_bake::entries::{Entry, EntryKind, canonical};
use serde_json::{Map, Value as Json, json};

fn str_list(v: &Option<Vec<String>>) -> Option<Json> {
    v.as_ref().map(|l| json!(l))
}

fn entry_list(kind: EntryKind, v: &Option<Vec<Entry>>) -> Option<Json> {
    v.as_ref()
        .map(|l| Json::Array(l.iter().map(|e| Json::String(canonical(kind, e))).collect()))
}

fn entry_objects(v: &Option<Vec<Entry>>) -> Option<Json> {
    v.as_ref()
        .map(|l| Json::Array(l.iter().map(|e| json!(e)).collect()))
}

fn entries_of<'a>(t: &'a Target, field: &str) -> Option<&'a Option<Vec<Entry>>> {
    Some(match field {
        "output" => &t.output,
        "cache-from" => &t.cache_from,
        "cache-to" => &t.cache_to,
        "secret" => &t.secret,
        "ssh" => &t.ssh,
        "attest" => &t.attest,
        _ => return None,
    })
}

/// A target attribute as JSON (`None` = unset); list entries in canonical form.
pub fn field_view(t: &Target, field: &str) -> Option<Json> {
    if let (Some(entries), Some(kind)) = (entries_of(t, field), EntryKind::for_field(field)) {
        return entry_list(kind, entries);
    }
    let s = |v: &Option<String>| v.as_ref().map(|x| json!(x));
    match field {
        "name" => Some(json!(t.name)),
        "description" => s(&t.description),
        "context" => s(&t.context),
        "dockerfile" => s(&t.dockerfile),
        "dockerfile-inline" => s(&t.dockerfile_inline),
        "target" => s(&t.target),
        "network" => s(&t.network),
        "shm-size" => s(&t.shm_size),
        "call" => s(&t.call),
        "args" => t.args.as_ref().map(|m| json!(m)),
        "labels" => t.labels.as_ref().map(|m| json!(m)),
        "contexts" => t.contexts.as_ref().map(|m| json!(m)),
        "extra-hosts" => t.extra_hosts.as_ref().map(|m| json!(m)),
        "tags" => str_list(&t.tags),
        "platforms" => str_list(&t.platforms),
        "annotations" => str_list(&t.annotations),
        "ulimits" => str_list(&t.ulimits),
        "entitlements" => str_list(&t.entitlements),
        "no-cache-filter" => str_list(&t.no_cache_filter),
        "no-cache" => t.no_cache.map(|b| json!(b)),
        "pull" => t.pull.map(|b| json!(b)),
        "resources" => t.resources.as_ref().map(|r| {
            let mut m = Map::new();
            for (k, v) in [
                ("memory", &r.memory),
                ("memory-swap", &r.memory_swap),
                ("cpuset-cpus", &r.cpuset_cpus),
                ("cpuset-mems", &r.cpuset_mems),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
            for (k, v) in [
                ("cpu-shares", r.cpu_shares),
                ("cpu-period", r.cpu_period),
                ("cpu-quota", r.cpu_quota),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
            Json::Object(m)
        }),
        _ => None,
    }
}

fn sorted_strings(v: &Json) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string())
        })
        .collect();
    out.sort();
    out
}

fn entry_matches(got: &Json, want: &Json) -> bool {
    want.as_object().into_iter().flatten().all(|(k, v)| {
        let g = got.get(k);
        match (g, v.as_str()) {
            (None, Some("")) => true,
            (Some(g), _) => g == v,
            _ => false,
        }
    })
}

/// Applies one `field|modifier` expectation to an actual value.
pub fn apply_modifier(
    field: &str,
    modifier: &str,
    actual: Option<Json>,
    objects: Option<Json>,
    want: &Json,
) -> Result<(), String> {
    let fail = |what: &str| {
        Err(format!(
            "{field}|{modifier}: {what}: got {}, want {want}",
            actual.clone().unwrap_or(Json::Null)
        ))
    };
    match modifier {
        "" => {
            if actual.as_ref() != Some(want) && !(actual.is_none() && want.is_null()) {
                return fail("mismatch");
            }
        }
        "null" => {
            if actual.is_some() != want.as_bool().map(|b| !b).unwrap_or(false) {
                return fail("set state");
            }
        }
        "count" => {
            let n = actual
                .as_ref()
                .and_then(|a| {
                    a.as_array()
                        .map(Vec::len)
                        .or_else(|| a.as_object().map(Map::len))
                })
                .unwrap_or(0);
            if Some(n as u64) != want.as_u64() {
                return fail("count");
            }
        }
        "sorted" => {
            if sorted_strings(actual.as_ref().unwrap_or(&Json::Null)) != sorted_strings(want) {
                return fail("sorted list");
            }
        }
        "subset" => {
            let got = actual.clone().unwrap_or(Json::Null);
            for (k, v) in want.as_object().into_iter().flatten() {
                let g = got.get(k);
                let ok = if v.is_null() {
                    g.is_none_or(Json::is_null)
                } else {
                    g == Some(v)
                };
                if !ok {
                    return fail(&format!("key {k}"));
                }
            }
        }
        "absent_keys" | "present_keys" => {
            let got = actual.clone().unwrap_or(Json::Null);
            for k in sorted_strings(want) {
                if got.get(&k).is_some() != (modifier == "present_keys") {
                    return fail(&format!("key {k}"));
                }
            }
        }
        "index" => {
            let got = actual.clone().unwrap_or(Json::Null);
            for (i, v) in want.as_object().into_iter().flatten() {
                let i: usize = i.parse().unwrap_or(usize::MAX);
                if got.get(i) != Some(v) {
                    return fail(&format!("index {i}"));
                }
            }
        }
        "entries" => {
            let got = objects.unwrap_or(Json::Null);
            let got_list = got.as_array().cloned().unwrap_or_default();
            let want_list = want.as_array().cloned().unwrap_or_default();
            if got_list.len() != want_list.len()
                || !got_list.iter().zip(&want_list).all(|(g, w)| g == w)
            {
                return Err(format!("{field}|entries: got {got}, want {want}"));
            }
        }
        "entries_subset" => {
            let got = objects.unwrap_or(Json::Null);
            for w in want.as_array().into_iter().flatten() {
                if !got
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|g| entry_matches(g, w))
                {
                    return Err(format!("{field}|entries_subset: {w} not in {got}"));
                }
            }
        }
        other => return Err(format!("unknown modifier {other}")),
    }
    Ok(())
}

/// Checks every expected field of a target.
pub fn match_fields(t: &Target, want: &Json, cwd: Option<&Path>) -> Result<(), String> {
    for (key, v) in want.as_object().into_iter().flatten() {
        if key == "index" || key == "name" {
            continue;
        }
        if key == "build_opt" {
            check_build_opt(t, v, cwd.unwrap_or(Path::new(".")))?;
            continue;
        }
        let (field, modifier) = key.split_once('|').unwrap_or((key.as_str(), ""));
        if modifier == "map" {
            let got: Map<String, Json> = t
                .attest
                .iter()
                .flatten()
                .map(|e| {
                    let disabled = e.get("disabled").is_some_and(|d| d == "true");
                    let ty = e.get("type").cloned().unwrap_or_default();
                    (
                        ty,
                        if disabled {
                            Json::Null
                        } else {
                            json!(canonical(EntryKind::Attest, e))
                        },
                    )
                })
                .collect();
            if Json::Object(got.clone()) != *v {
                return Err(format!("attest|map: got {got:?}, want {v}"));
            }
            continue;
        }
        let objects = entries_of(t, field).and_then(entry_objects);
        apply_modifier(field, modifier, field_view(t, field), objects, v)?;
    }
    Ok(())
}

/// Checks a printed target (JSON from `--print`) against field expectations.
pub fn match_printed(printed: &Json, want: &Json) -> Result<(), String> {
    for (key, v) in want.as_object().into_iter().flatten() {
        let (field, modifier) = key.split_once('|').unwrap_or((key.as_str(), ""));
        let actual = printed.get(field).cloned();
        apply_modifier(field, modifier, actual.clone(), actual, v)?;
    }
    Ok(())
}

fn check_build_opt(t: &Target, want: &Json, cwd: &Path) -> Result<(), String> {
    let opt = kiln_bake::build_opt::build_opt(t, cwd);
    let cwd_s = cwd.to_string_lossy().to_string();
    let actual = json!({
        "context_path": opt.context_path,
        "dockerfile_path": opt.dockerfile_path,
        "named_contexts_path": opt.named_contexts_path,
        "attests": opt.attests,
        "allow": opt.allow,
        "network_mode": opt.network_mode,
    });
    for (key, v) in want.as_object().into_iter().flatten() {
        let (field, modifier) = key.split_once('|').unwrap_or((key.as_str(), ""));
        let v = match v {
            Json::String(s) => Json::String(s.replace("${CWD}", &cwd_s)),
            other => other.clone(),
        };
        apply_modifier(
            &format!("build_opt.{field}"),
            modifier,
            actual.get(field).cloned(),
            None,
            &v,
        )?;
    }
    Ok(())
}
