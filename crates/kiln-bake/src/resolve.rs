//! Turning a parsed config into the requested, fully merged targets:
//! groups, inherits, overrides and `target:` context links.

use std::collections::{BTreeMap, HashSet};

use crate::config::{Config, Group, Target};
use crate::error::BakeError;
use crate::overrides::{Overrides, apply_overrides};

/// Expands a name through (nested) groups: (targets, groups visited).
pub fn resolve_group(config: &Config, name: &str) -> (Vec<String>, Vec<String>) {
    struct Walk<'a> {
        config: &'a Config,
        in_progress: Vec<String>,
        done: HashSet<String>,
        targets: Vec<String>,
        groups: Vec<String>,
    }
    impl Walk<'_> {
        fn visit(&mut self, name: &str) {
            if self.in_progress.iter().any(|n| n == name) {
                // A group listing its own name means the target of that name.
                self.targets.push(name.to_string());
                return;
            }
            if self.done.contains(name) {
                return;
            }
            let Some(g) = self.config.group(name) else {
                self.targets.push(name.to_string());
                return;
            };
            self.in_progress.push(name.to_string());
            self.groups.push(name.to_string());
            for t in &g.targets {
                self.visit(t);
            }
            self.in_progress.pop();
            self.done.insert(name.to_string());
        }
    }
    let mut walk = Walk {
        config,
        in_progress: Vec::new(),
        done: HashSet::new(),
        targets: Vec::new(),
        groups: Vec::new(),
    };
    walk.visit(name);
    let (targets, groups) = (walk.targets, walk.groups);
    (dedup(targets), dedup(groups))
}

pub fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// One target with its inherits merged and overrides applied.
pub fn resolve_target(
    config: &Config,
    name: &str,
    overrides: &Overrides,
) -> Result<Target, BakeError> {
    let mut visiting = Vec::new();
    let mut t = merged_target(config, name, overrides, &mut visiting)?;
    t.inherits.clear();
    match t.context.as_deref() {
        None => t.context = Some(".".into()),
        Some(c) => {
            if let Some(rest) = c.strip_prefix("cwd://") {
                t.context = Some(crate::funcs::clean_path(rest));
            }
        }
    }
    // A host network needs the matching entitlement.
    if t.network.as_deref() == Some("host") {
        let ent = t.entitlements.get_or_insert_with(Vec::new);
        if !ent.iter().any(|e| e == "network.host") {
            ent.push("network.host".into());
        }
    }
    if t.dockerfile.as_deref().is_none_or(str::is_empty) {
        t.dockerfile = Some("Dockerfile".into());
    }
    // Null args and labels only exist to unset inherited values.
    for map in [&mut t.args, &mut t.labels].into_iter().flatten() {
        map.retain(|_, v| v.is_some());
    }
    Ok(t)
}

fn merged_target(
    config: &Config,
    name: &str,
    overrides: &Overrides,
    visiting: &mut Vec<String>,
) -> Result<Target, BakeError> {
    if visiting.iter().any(|v| v == name) {
        return Err(BakeError::resolve(format!(
            "infinite loop: target {name} inherits from itself via {}",
            visiting.join(" -> ")
        )));
    }
    let Some(own) = config.target(name) else {
        return Err(BakeError::resolve(format!("failed to find target {name}")));
    };
    visiting.push(name.to_string());
    let mut base = Target::default();
    for parent in &own.inherits {
        let p = merged_target(config, parent, overrides, visiting)?;
        base.merge(&p);
    }
    visiting.pop();
    base.merge(own);
    base.name = name.to_string();
    apply_overrides(&mut base, overrides.get(name))?;
    Ok(base)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub targets: BTreeMap<String, Target>,
    pub groups: BTreeMap<String, Group>,
}

/// `docker buildx bake <names>` resolution.
pub fn read_targets(
    config: &Config,
    names: &[String],
    overrides: &Overrides,
) -> Result<Resolved, BakeError> {
    let mut out = Resolved::default();
    for name in names {
        let (targets, groups) = resolve_group(config, name);
        for t in targets {
            let resolved = resolve_target(config, &t, overrides)?;
            out.targets.insert(t, resolved);
        }
        for g in groups {
            if let Some(group) = config.group(&g) {
                out.groups.insert(g, group.clone());
            }
        }
    }
    let mut extended = false;
    for name in names {
        if name == "default" && out.groups.contains_key("default") {
            continue;
        }
        let g = out.groups.entry("default".into()).or_insert_with(|| Group {
            name: "default".into(),
            ..Group::default()
        });
        if !g.targets.contains(name) {
            g.targets.push(name.clone());
            extended = true;
        }
    }
    if let (true, Some(g)) = (extended, out.groups.get_mut("default")) {
        g.targets.sort();
    }
    let names: Vec<String> = out.targets.keys().cloned().collect();
    for name in names {
        load_links(config, &name, &mut out.targets, overrides, &mut Vec::new())?;
    }
    Ok(out)
}

fn load_links(
    config: &Config,
    name: &str,
    targets: &mut BTreeMap<String, Target>,
    overrides: &Overrides,
    visited: &mut Vec<String>,
) -> Result<(), BakeError> {
    visited.push(name.to_string());
    let t = targets[name].clone();
    for v in t.contexts.iter().flat_map(|c| c.values()) {
        let Some(linked) = v.strip_prefix("target:") else {
            continue;
        };
        if linked == name {
            return Err(BakeError::resolve(format!(
                "target {linked} cannot link to itself"
            )));
        }
        if visited.iter().any(|x| x == linked) {
            return Err(BakeError::resolve(format!(
                "infinite loop from {name} to {linked}"
            )));
        }
        if !targets.contains_key(linked) {
            let mut t2 = resolve_target(config, linked, overrides)?;
            let mut cacheonly = crate::entries::Entry::new();
            cacheonly.insert("type".into(), "cacheonly".into());
            t2.output = Some(vec![cacheonly]);
            targets.insert(linked.to_string(), t2);
        }
        load_links(config, linked, targets, overrides, visited)?;
        let t2 = &targets[linked];
        let (p1, p2) = (
            t.platforms.clone().unwrap_or_default(),
            t2.platforms.clone().unwrap_or_default(),
        );
        if p1.len() > 1 && p2.len() > 1 && !p1.iter().all(|p| p2.contains(p)) {
            return Err(BakeError::resolve(format!(
                "target {linked} can't be used by {name} because its platforms {p2:?} are not a subset of {p1:?}"
            )));
        }
    }
    visited.pop();
    Ok(())
}
