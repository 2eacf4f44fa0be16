//! The bake data model: groups and targets with every attribute buildx knows.

use std::collections::BTreeMap;

use crate::entries::{Entry, EntryKind, entry_from_object, merge_entries, parse_entries};
use crate::value::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub groups: Vec<Group>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub description: Option<String>,
    pub targets: Vec<String>,
}

/// Resource limits of a target's build containers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
}

/// A build target. `None` means "not set", which matters for merging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    pub name: String,
    pub description: Option<String>,
    pub inherits: Vec<String>,
    pub context: Option<String>,
    pub contexts: Option<BTreeMap<String, String>>,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    pub args: Option<BTreeMap<String, Option<String>>>,
    pub labels: Option<BTreeMap<String, Option<String>>>,
    pub tags: Option<Vec<String>>,
    pub platforms: Option<Vec<String>>,
    pub target: Option<String>,
    pub output: Option<Vec<Entry>>,
    pub cache_from: Option<Vec<Entry>>,
    pub cache_to: Option<Vec<Entry>>,
    pub secret: Option<Vec<Entry>>,
    pub ssh: Option<Vec<Entry>>,
    pub attest: Option<Vec<Entry>>,
    pub annotations: Option<Vec<String>>,
    pub no_cache: Option<bool>,
    pub no_cache_filter: Option<Vec<String>>,
    pub pull: Option<bool>,
    pub network: Option<String>,
    pub shm_size: Option<String>,
    pub ulimits: Option<Vec<String>>,
    pub entitlements: Option<Vec<String>>,
    pub extra_hosts: Option<BTreeMap<String, String>>,
    pub call: Option<String>,
    pub resources: Option<Resources>,
}

/// Attribute names a target block accepts.
pub const TARGET_ATTRS: &[&str] = &[
    "description",
    "inherits",
    "context",
    "contexts",
    "dockerfile",
    "dockerfile-inline",
    "args",
    "labels",
    "tags",
    "platforms",
    "target",
    "output",
    "cache-from",
    "cache-to",
    "secret",
    "ssh",
    "attest",
    "annotations",
    "no-cache",
    "no-cache-filter",
    "pull",
    "network",
    "shm-size",
    "ulimits",
    "entitlements",
    "extra-hosts",
    "call",
    "resources",
    "matrix",
    "name",
];

fn want_string(field: &str, v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        other => other.as_string().map(Some).ok_or_else(|| {
            format!(
                "Unsuitable value type for {field:?}: string required, got {}",
                other.type_name()
            )
        }),
    }
}

fn want_bool(field: &str, v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        other => other.as_bool().map(Some).ok_or_else(|| {
            format!(
                "Unsuitable value type for {field:?}: bool required, got {}",
                other.type_name()
            )
        }),
    }
}

fn want_list(field: &str, v: &Value) -> Result<Option<Vec<String>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Null => {}
                    other => out.push(other.as_string().ok_or_else(|| {
                        format!("Unsuitable value type for {field:?}: list of string required")
                    })?),
                }
            }
            Ok(Some(out))
        }
        other => Err(format!(
            "Unsuitable value type for {field:?}: list of string required, got {}",
            other.type_name()
        )),
    }
}

fn want_map(field: &str, v: &Value) -> Result<Option<BTreeMap<String, Option<String>>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (k, item) in map {
                let s = match item {
                    Value::Null => None,
                    other => Some(other.as_string().ok_or_else(|| {
                        format!("Unsuitable value type for {field:?}: map of string required")
                    })?),
                };
                out.insert(k.clone(), s);
            }
            Ok(Some(out))
        }
        other => Err(format!(
            "Unsuitable value type for {field:?}: map of string required, got {}",
            other.type_name()
        )),
    }
}

fn want_entries(field: &str, v: &Value) -> Result<Option<Vec<Entry>>, String> {
    let kind = EntryKind::for_field(field).unwrap_or(EntryKind::Output);
    match v {
        Value::Null => Ok(None),
        Value::List(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::Null => {}
                    Value::Object(map) => out.push(entry_from_object(kind, map)?),
                    other => {
                        let s = other
                            .as_string()
                            .ok_or_else(|| format!("Unsuitable value type for {field:?}"))?;
                        if s.is_empty() {
                            continue;
                        }
                        out.extend(parse_entries(kind, &s)?);
                    }
                }
            }
            Ok(Some(out))
        }
        other => Err(format!(
            "Unsuitable value type for {field:?}: list required, got {}",
            other.type_name()
        )),
    }
}

fn want_int(field: &str, v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        other => other
            .as_number()
            .map(|n| Some(n as i64))
            .ok_or_else(|| format!("Unsuitable value type for {field:?}: number required")),
    }
}

impl Target {
    pub fn named(name: impl Into<String>) -> Self {
        Target {
            name: name.into(),
            ..Target::default()
        }
    }

    /// Sets one attribute from its evaluated value.
    pub fn set_attr(&mut self, field: &str, v: &Value) -> Result<(), String> {
        match field {
            "description" => self.description = want_string(field, v)?,
            "inherits" => self.inherits = want_list(field, v)?.unwrap_or_default(),
            "context" => self.context = want_string(field, v)?,
            "contexts" => {
                self.contexts = want_map(field, v)?.map(|m| {
                    m.into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k, v)))
                        .collect()
                })
            }
            "dockerfile" => self.dockerfile = want_string(field, v)?,
            "dockerfile-inline" => self.dockerfile_inline = want_string(field, v)?,
            "args" => self.args = want_map(field, v)?,
            "labels" => self.labels = want_map(field, v)?,
            "tags" => self.tags = want_list(field, v)?,
            "platforms" => self.platforms = want_list(field, v)?,
            "target" => self.target = want_string(field, v)?,
            "output" => self.output = want_entries(field, v)?,
            "cache-from" => self.cache_from = want_entries(field, v)?,
            "cache-to" => self.cache_to = want_entries(field, v)?,
            "secret" => self.secret = want_entries(field, v)?,
            "ssh" => self.ssh = want_entries(field, v)?,
            "attest" => self.attest = want_entries(field, v)?,
            "annotations" => self.annotations = want_list(field, v)?,
            "no-cache" => self.no_cache = want_bool(field, v)?,
            "no-cache-filter" => self.no_cache_filter = want_list(field, v)?,
            "pull" => self.pull = want_bool(field, v)?,
            "network" => self.network = want_string(field, v)?,
            "shm-size" => self.shm_size = want_string(field, v)?,
            "ulimits" => self.ulimits = want_list(field, v)?,
            "entitlements" => self.entitlements = want_list(field, v)?,
            "extra-hosts" => {
                self.extra_hosts = want_map(field, v)?.map(|m| {
                    m.into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k, v)))
                        .collect()
                })
            }
            "call" => self.call = want_string(field, v)?,
            "resources" => {
                self.resources = match v {
                    Value::Null => None,
                    Value::Object(map) => {
                        let mut r = Resources::default();
                        for (k, item) in map {
                            match k.as_str() {
                                "memory" => r.memory = want_string(k, item)?,
                                "memory-swap" => r.memory_swap = want_string(k, item)?,
                                "cpu-shares" => r.cpu_shares = want_int(k, item)?,
                                "cpu-period" => r.cpu_period = want_int(k, item)?,
                                "cpu-quota" => r.cpu_quota = want_int(k, item)?,
                                "cpuset-cpus" => r.cpuset_cpus = want_string(k, item)?,
                                "cpuset-mems" => r.cpuset_mems = want_string(k, item)?,
                                other => {
                                    return Err(format!(
                                        "Unsupported argument; An argument named {other:?} is not expected in resources."
                                    ));
                                }
                            }
                        }
                        Some(r)
                    }
                    other => {
                        return Err(format!(
                            "Unsuitable value type for \"resources\": object required, got {}",
                            other.type_name()
                        ));
                    }
                }
            }
            "matrix" | "name" => {}
            other => {
                return Err(format!(
                    "Unsupported argument; An argument named {other:?} is not expected here."
                ));
            }
        }
        Ok(())
    }

    /// Applies `other` on top of `self`: set attributes override, maps merge
    /// key by key, and a few lists accumulate as buildx does.
    pub fn merge(&mut self, other: &Target) {
        fn over<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
            if b.is_some() {
                *a = b.clone();
            }
        }
        fn merge_map<V: Clone>(
            a: &mut Option<BTreeMap<String, V>>,
            b: &Option<BTreeMap<String, V>>,
        ) {
            if let Some(b) = b {
                a.get_or_insert_with(BTreeMap::new)
                    .extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        fn append<T: Clone>(a: &mut Option<Vec<T>>, b: &Option<Vec<T>>) {
            if let Some(b) = b {
                a.get_or_insert_with(Vec::new).extend(b.iter().cloned());
            }
        }
        fn merge_list(kind: EntryKind, a: &mut Option<Vec<Entry>>, b: &Option<Vec<Entry>>) {
            if let Some(b) = b {
                merge_entries(kind, a.get_or_insert_with(Vec::new), b);
            }
        }
        over(&mut self.context, &other.context);
        over(&mut self.dockerfile, &other.dockerfile);
        over(&mut self.dockerfile_inline, &other.dockerfile_inline);
        if let Some(args) = &other.args {
            let into = self.args.get_or_insert_with(BTreeMap::new);
            for (k, v) in args {
                if v.is_some() || !into.contains_key(k) {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
        merge_map(&mut self.contexts, &other.contexts);
        if let Some(labels) = &other.labels {
            let into = self.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in labels {
                if v.is_some() || !into.contains_key(k) {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
        over(&mut self.tags, &other.tags);
        over(&mut self.target, &other.target);
        over(&mut self.call, &other.call);
        append(&mut self.annotations, &other.annotations);
        merge_list(EntryKind::Attest, &mut self.attest, &other.attest);
        merge_list(EntryKind::Secret, &mut self.secret, &other.secret);
        merge_list(EntryKind::Ssh, &mut self.ssh, &other.ssh);
        over(&mut self.platforms, &other.platforms);
        merge_list(EntryKind::Cache, &mut self.cache_from, &other.cache_from);
        over(&mut self.cache_to, &other.cache_to);
        over(&mut self.output, &other.output);
        over(&mut self.pull, &other.pull);
        over(&mut self.no_cache, &other.no_cache);
        over(&mut self.network, &other.network);
        append(&mut self.no_cache_filter, &other.no_cache_filter);
        over(&mut self.shm_size, &other.shm_size);
        over(&mut self.ulimits, &other.ulimits);
        over(&mut self.description, &other.description);
        append(&mut self.entitlements, &other.entitlements);
        merge_map(&mut self.extra_hosts, &other.extra_hosts);
        if let Some(r) = &other.resources {
            let into = self.resources.get_or_insert_with(Resources::default);
            over(&mut into.memory, &r.memory);
            over(&mut into.memory_swap, &r.memory_swap);
            over(&mut into.cpu_shares, &r.cpu_shares);
            over(&mut into.cpu_period, &r.cpu_period);
            over(&mut into.cpu_quota, &r.cpu_quota);
            over(&mut into.cpuset_cpus, &r.cpuset_cpus);
            over(&mut into.cpuset_mems, &r.cpuset_mems);
        }
        self.inherits.extend(other.inherits.iter().cloned());
    }
}

impl Config {
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Adds a target, merging into an existing one of the same name.
    pub fn add_target(&mut self, t: Target) {
        match self.targets.iter_mut().find(|x| x.name == t.name) {
            Some(existing) => existing.merge(&t),
            None => self.targets.push(t),
        }
    }

    /// Adds a group; a later definition of the same name replaces it.
    pub fn add_group(&mut self, g: Group) {
        match self.groups.iter_mut().find(|x| x.name == g.name) {
            Some(existing) => {
                if g.description.is_some() {
                    existing.description = g.description.clone();
                }
                existing.targets = g.targets;
            }
            None => self.groups.push(g),
        }
    }

    /// Merges another config in (later wins), as when several files are read.
    pub fn merge(&mut self, other: Config) {
        for g in other.groups {
            match self.groups.iter_mut().find(|x| x.name == g.name) {
                Some(existing) => {
                    for t in g.targets {
                        if !existing.targets.contains(&t) {
                            existing.targets.push(t);
                        }
                    }
                }
                None => self.groups.push(g),
            }
        }
        for t in other.targets {
            self.add_target(t);
        }
    }
}

/// A list of strings (group `targets`, `--set` values...).
pub fn strings_of(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::List(items) => items
            .iter()
            .map(|i| {
                i.as_string()
                    .ok_or_else(|| "list of string required".to_string())
            })
            .collect(),
        other => Err(format!(
            "list of string required, got {}",
            other.type_name()
        )),
    }
}
