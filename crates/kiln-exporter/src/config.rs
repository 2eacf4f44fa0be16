//! The image config JSON. Top-level keys come out sorted and the container config in the
//! order of Docker's Go struct, which is how BuildKit's configs read; Docker's extensions
//! (Healthcheck, OnBuild, Shell) that the OCI type lacks are kept.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::image::{Arch, Digest, Os, Platform};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;
use crate::json::to_go_json;
use crate::timestamp::Timestamp;

/// The `comment` kiln writes on history entries made by Dockerfile instructions.
pub const HISTORY_COMMENT: &str = "kiln.dockerfile.v0";

// Go writes `null` for nil slices and maps; read it as empty.
fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Serialize, Deserialize, Default)]
struct EmptyObject {}

fn set_as_object<S: Serializer>(
    set: &BTreeSet<String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let map: BTreeMap<&str, EmptyObject> =
        set.iter().map(|k| (k.as_str(), EmptyObject {})).collect();
    map.serialize(s)
}

fn object_as_set<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeSet<String>, D::Error> {
    let map: Option<BTreeMap<String, serde::de::IgnoredAny>> = Option::deserialize(d)?;
    Ok(map.into_iter().flatten().map(|(k, _)| k).collect())
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Docker's HEALTHCHECK settings; durations in nanoseconds, as Docker stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// The `config` object: how a container of the image runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    #[serde(
        default,
        serialize_with = "set_as_object",
        deserialize_with = "object_as_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub exposed_ports: BTreeSet<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entrypoint: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cmd: Vec<String>,
    #[serde(
        default,
        serialize_with = "set_as_object",
        deserialize_with = "object_as_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub volumes: BTreeSet<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
}

/// One `history` entry; `empty_layer` ones have no layer in `rootfs.diff_ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// An image config. Fields are in sorted key order on purpose: see the module comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(
        rename = "os.version",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    /// Build cache records carried by the image (`--cache-to type=inline`); kiln's own
    /// extension, ignored by runtimes.
    #[serde(
        rename = "kiln.cache.v1",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inline_cache: Option<serde_json::Value>,
}

impl ImageConfig {
    /// An empty config for `platform` (what `FROM scratch` starts from).
    pub fn for_platform(platform: &Platform) -> Self {
        ImageConfig {
            architecture: platform.architecture().to_string(),
            os: platform.os().to_string(),
            variant: platform.variant().clone().unwrap_or_default(),
            os_version: platform.os_version().clone().unwrap_or_default(),
            ..Default::default()
        }
    }

    pub fn platform(&self) -> Platform {
        let mut p = Platform::default();
        p.set_architecture(Arch::from(self.architecture.as_str()));
        p.set_os(Os::from(self.os.as_str()));
        if !self.variant.is_empty() {
            p.set_variant(Some(self.variant.clone()));
        }
        if !self.os_version.is_empty() {
            p.set_os_version(Some(self.os_version.clone()));
        }
        p
    }

    /// Records a build step that produced the layer `diff_id`.
    pub fn add_layer(&mut self, diff_id: Digest, created_by: &str, created: Timestamp) {
        self.rootfs.diff_ids.push(diff_id);
        self.history.push(History {
            created: Some(created),
            created_by: created_by.to_owned(),
            comment: HISTORY_COMMENT.to_owned(),
            ..Default::default()
        });
    }

    /// Records a build step that changed only the config (ENV, CMD, ...).
    pub fn add_empty_layer_history(&mut self, created_by: &str, created: Timestamp) {
        self.history.push(History {
            created: Some(created),
            created_by: created_by.to_owned(),
            comment: HISTORY_COMMENT.to_owned(),
            empty_layer: true,
            ..Default::default()
        });
    }

    /// `SOURCE_DATE_EPOCH`: no timestamp in the config is later than the epoch, and a missing
    /// `created` becomes the epoch.
    pub fn clamp_timestamps(&mut self, epoch: Option<i64>) {
        let Some(e) = epoch else { return };
        self.created = Some(
            self.created
                .map_or(Timestamp::from_unix(e), |t| t.clamp_to(Some(e))),
        );
        for h in &mut self.history {
            h.created = h.created.map(|t| t.clamp_to(Some(e)));
        }
    }

    /// Number of history entries that stand for a layer.
    pub fn layer_history_count(&self) -> usize {
        self.history.iter().filter(|h| !h.empty_layer).count()
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        to_go_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    fn sample() -> ImageConfig {
        let mut p = Platform::default();
        p.set_architecture(Arch::Amd64);
        p.set_os(Os::Linux);
        let mut c = ImageConfig::for_platform(&p);
        c.config.env = vec!["PATH=/bin".into()];
        c.config.cmd = vec!["sh".into()];
        c.config.exposed_ports.insert("80/tcp".into());
        c.config.labels.insert("b".into(), "2".into());
        c.config.labels.insert("a".into(), "1".into());
        c.config.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 30_000_000_000,
            ..Default::default()
        });
        c.add_layer(
            sha256_digest(b"l"),
            "RUN a && b",
            Timestamp::from_unix(2_000_000_000),
        );
        c.add_empty_layer_history("CMD [\"sh\"]", Timestamp::from_unix(5));
        c
    }

    #[test]
    fn serializes_in_buildkit_key_order() {
        let text = String::from_utf8(sample().to_json().unwrap()).unwrap();
        let keys = [
            "\"architecture\"",
            "\"config\"",
            "\"history\"",
            "\"os\"",
            "\"rootfs\"",
        ];
        let pos: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains(r#""config":{"ExposedPorts":{"80/tcp":{}},"Env":["PATH=/bin"],"Cmd":["sh"],"Labels":{"a":"1","b":"2"},"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000}}"#), "{text}");
        assert!(
            text.contains(r#""created_by":"RUN a \u0026\u0026 b","comment":"kiln.dockerfile.v0"}"#),
            "{text}"
        );
        assert!(text.contains(r#""empty_layer":true"#));
        assert!(text.contains(r#""rootfs":{"type":"layers","diff_ids":["sha256:"#));
    }

    #[test]
    fn round_trips_and_reads_go_nulls() {
        let c = sample();
        assert_eq!(ImageConfig::from_json(&c.to_json().unwrap()).unwrap(), c);
        let docker = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":null,"Env":null,"Volumes":null,"Hostname":"x"},"rootfs":{"type":"layers","diff_ids":null},"container_config":{}}"#;
        let parsed = ImageConfig::from_json(docker).unwrap();
        assert!(parsed.config.cmd.is_empty());
        assert_eq!(parsed.rootfs.kind, "layers");
    }

    #[test]
    fn clamps_created_and_history() {
        let mut c = sample();
        c.clamp_timestamps(Some(1000));
        assert_eq!(c.created, Some(Timestamp::from_unix(1000)));
        assert_eq!(c.history[0].created, Some(Timestamp::from_unix(1000)));
        assert_eq!(c.history[1].created, Some(Timestamp::from_unix(5)));
    }
}
