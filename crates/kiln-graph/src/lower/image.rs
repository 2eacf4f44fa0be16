//! The image a stage describes besides its filesystem: config, history and platform, in
//! the shape of an OCI image config. The exporter serializes it; lowering only edits it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// BuildKit's default search path, set when a stage starts without one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The history comment BuildKit-built images carry; tools group history entries by it.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    /// Durations in nanoseconds, as the image spec stores them.
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub start_interval: Option<u64>,
    pub retries: Option<u32>,
}

/// The runtime part of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub user: Option<String>,
    pub exposed_ports: BTreeSet<String>,
    /// `KEY=VALUE` in order of first definition.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub volumes: BTreeSet<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthConfig>,
    pub on_build: Vec<String>,
    pub shell: Option<Vec<String>>,
}

impl RuntimeConfig {
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// Sets `key`, keeping its original position when it already exists.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|kv| kv.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
    }

    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub created_by: String,
    pub comment: Option<String>,
    pub empty_layer: bool,
    /// The node whose filesystem change is this entry's layer; `None` for entries
    /// inherited from a base image (their layers come with the image) and for metadata.
    #[serde(skip)]
    pub layer: Option<NodeId>,
}

/// An image as lowering sees it: config, history and where its layers come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageState {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub author: Option<String>,
    pub config: RuntimeConfig,
    pub history: Vec<HistoryEntry>,
}

impl ImageState {
    pub fn for_platform(platform: &str) -> Self {
        let mut parts = platform.split('/');
        Self {
            os: parts.next().unwrap_or("linux").to_string(),
            architecture: parts.next().unwrap_or("amd64").to_string(),
            variant: parts.next().map(str::to_string),
            ..Self::default()
        }
    }

    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    pub fn record(&mut self, created_by: String, layer: Option<NodeId>) {
        self.history.push(HistoryEntry {
            created_by,
            comment: Some(HISTORY_COMMENT.to_string()),
            empty_layer: layer.is_none(),
            layer,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_first_position_on_update() {
        let mut c = RuntimeConfig::default();
        c.set_env("A", "1");
        c.set_env("B", "2");
        c.set_env("A", "3");
        assert_eq!(c.env, vec!["A=3", "B=2"]);
        assert_eq!(c.env_value("A"), Some("3"));
        assert_eq!(c.env_value("AB"), None);
    }

    #[test]
    fn platform_round_trip() {
        let s = ImageState::for_platform("linux/arm/v7");
        assert_eq!((s.os.as_str(), s.architecture.as_str()), ("linux", "arm"));
        assert_eq!(s.platform(), "linux/arm/v7");
    }
}
