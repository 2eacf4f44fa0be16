//! `kiln.toml`: settings read from `$KILN_CONFIG`, else from the store root. Its `[gc]`
//! section uses buildkitd.toml's names, so a buildkit garbage collection setup carries over:
//!
//! ```toml
//! [gc]
//! enabled = true
//! reservedSpace = "10GB"   # used for the default policies when none are listed
//! maxUsedSpace = "60%"
//! minFreeSpace = "20GB"
//!
//! [[gc.policy]]
//! filters = ["type==exec.cachemount"]
//! keepDuration = "48h"
//!
//! [[gc.policy]]
//! all = true
//! reservedSpace = "10GB"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_store::Store;
use kiln_store::gc::{self, GcError, PrunePolicy, PruneReport, RecordKind, Space};
use serde::Deserialize;

/// What can go wrong reading the configuration or collecting garbage.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Gc(#[from] GcError),
}

/// The parts of kiln.toml kiln understands.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub gc: GcConfig,
    /// The file read, if any.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GcConfig {
    pub enabled: bool,
    /// Applied in order after each build, like buildkitd's `gcpolicy` list.
    pub policies: Vec<PrunePolicy>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    gc: RawGc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGc {
    enabled: Option<bool>,
    reserved_space: Option<SizeValue>,
    max_used_space: Option<SizeValue>,
    min_free_space: Option<SizeValue>,
    #[serde(default)]
    policy: Vec<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicy {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    filters: Vec<String>,
    keep_duration: Option<SizeValue>,
    reserved_space: Option<SizeValue>,
    /// buildkit's name before `reservedSpace`.
    keep_bytes: Option<SizeValue>,
    max_used_space: Option<SizeValue>,
    min_free_space: Option<SizeValue>,
}

/// buildkitd.toml accepts integers (bytes, seconds) and strings (`10GB`, `48h`).
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum SizeValue {
    Int(u64),
    Text(String),
}

impl SizeValue {
    fn space(&self) -> Result<Space, GcError> {
        match self {
            SizeValue::Int(n) => Ok(Space::Bytes(*n)),
            SizeValue::Text(t) => gc::parse_space(t),
        }
    }

    fn duration(&self) -> Result<Duration, GcError> {
        match self {
            SizeValue::Int(n) => Ok(Duration::from_secs(*n)),
            SizeValue::Text(t) => gc::parse_duration(t),
        }
    }
}

impl Config {
    /// Reads `$KILN_CONFIG` (which must exist when set), else `<root>/kiln.toml` if there
    /// is one, else the defaults.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        if let Some(p) = std::env::var_os("KILN_CONFIG").filter(|p| !p.is_empty()) {
            return Config::from_file(Path::new(&p));
        }
        let path = root.join("kiln.toml");
        if path.exists() {
            return Config::from_file(&path);
        }
        Config::parse("", None)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, Some(path))
    }

    /// Parses kiln.toml text; `path` names the file in errors.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
        let name = path.map_or_else(|| PathBuf::from("kiln.toml"), Path::to_path_buf);
        let invalid = |message: String| ConfigError::Invalid {
            path: name.clone(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let g = raw.gc;
        let space = |v: &Option<SizeValue>, key: &str| {
            v.as_ref()
                .map(SizeValue::space)
                .transpose()
                .map_err(|e| invalid(format!("gc.{key}: {e}")))
        };
        let reserved = space(&g.reserved_space, "reservedSpace")?;
        let max_used = space(&g.max_used_space, "maxUsedSpace")?;
        let min_free = space(&g.min_free_space, "minFreeSpace")?;
        let mut policies = Vec::new();
        for (i, p) in g.policy.iter().enumerate() {
            let at = |key: &str| format!("gc.policy[{i}].{key}");
            let kinds = parse_filters(&p.filters)
                .map_err(|e| invalid(format!("{}: {e}", at("filters"))))?;
            let keep_duration = p
                .keep_duration
                .as_ref()
                .map(SizeValue::duration)
                .transpose()
                .map_err(|e| invalid(format!("{}: {e}", at("keepDuration"))))?;
            let reserved_space = space(
                &p.reserved_space.clone().or(p.keep_bytes.clone()),
                &format!("policy[{i}].reservedSpace"),
            )?;
            policies.push(PrunePolicy {
                all: p.all,
                keep_duration,
                reserved_space,
                max_used_space: space(&p.max_used_space, &format!("policy[{i}].maxUsedSpace"))?,
                min_free_space: space(&p.min_free_space, &format!("policy[{i}].minFreeSpace"))?,
                keep_storage: None,
                kinds,
            });
        }
        if policies.is_empty() {
            policies = default_policies(reserved, max_used, min_free);
        }
        Ok(Config {
            gc: GcConfig {
                enabled: g.enabled.unwrap_or(true),
                policies,
            },
            path: path.map(Path::to_path_buf),
        })
    }
}

/// `type==exec.cachemount` / `type=regular`, as buildkit writes gc policy filters; several
/// may share one string separated by commas.
fn parse_filters(filters: &[String]) -> Result<Vec<RecordKind>, String> {
    let mut kinds = Vec::new();
    for part in filters.iter().flat_map(|f| f.split(',')) {
        let part = part.trim();
        let (_, value) = gc::split_filter(part)
            .filter(|(key, _)| *key == "type")
            .ok_or_else(|| format!("unsupported filter {part:?} (only type=... is)"))?;
        kinds.push(RecordKind::parse(value).map_err(|e| e.to_string())?);
    }
    Ok(kinds)
}

/// Without listed policies: old cache mounts first, then anything unused for 60 days, then
/// anything until the limits hold, then even build roots; each never going below
/// `reservedSpace` (default 10% of the disk) nor leaving more than `maxUsedSpace` (60%).
fn default_policies(
    reserved: Option<Space>,
    max_used: Option<Space>,
    min_free: Option<Space>,
) -> Vec<PrunePolicy> {
    let base = PrunePolicy {
        reserved_space: Some(reserved.unwrap_or(Space::Percent(10.0))),
        max_used_space: Some(max_used.unwrap_or(Space::Percent(60.0))),
        min_free_space: min_free,
        ..PrunePolicy::default()
    };
    vec![
        PrunePolicy {
            kinds: vec![RecordKind::CacheMount],
            keep_duration: Some(Duration::from_secs(48 * 3600)),
            ..base.clone()
        },
        PrunePolicy {
            keep_duration: Some(Duration::from_secs(1440 * 3600)),
            ..base.clone()
        },
        base.clone(),
        PrunePolicy { all: true, ..base },
    ]
}

/// Runs the configured policies after a build. `Ok(None)` when gc is disabled or another
/// kiln process is collecting right now (it will have done the work).
pub fn auto_gc(store: &Store) -> Result<Option<PruneReport>, ConfigError> {
    let config = Config::load(store.root())?;
    if !config.gc.enabled {
        return Ok(None);
    }
    match store.try_lock("gc").map_err(GcError::from)? {
        Some(lock) => drop(lock),
        None => return Ok(None),
    }
    if config.gc.policies.is_empty() {
        return Ok(Some(PruneReport::default()));
    }
    Ok(Some(gc::prune_policies(store, &config.gc.policies)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_buildkit_style_gc_settings() {
        let text = r#"
[gc]
enabled = true
reservedSpace = "2GB"
maxUsedSpace = "50%"

[[gc.policy]]
filters = ["type==exec.cachemount"]
keepDuration = "48h"
keepBytes = 512000000

[[gc.policy]]
all = true
keepDuration = 3600
minFreeSpace = "20%"
"#;
        let c = Config::parse(text, None).unwrap();
        assert!(c.gc.enabled);
        assert_eq!(c.gc.policies.len(), 2);
        let p0 = &c.gc.policies[0];
        assert_eq!(p0.kinds, [RecordKind::CacheMount]);
        assert_eq!(p0.keep_duration, Some(Duration::from_secs(48 * 3600)));
        assert_eq!(p0.reserved_space, Some(Space::Bytes(512_000_000)));
        let p1 = &c.gc.policies[1];
        assert!(p1.all);
        assert_eq!(p1.keep_duration, Some(Duration::from_secs(3600)));
        assert_eq!(p1.min_free_space, Some(Space::Percent(20.0)));
    }

    #[test]
    fn empty_file_gives_default_policies_with_top_level_limits() {
        let c = Config::parse("[gc]\nreservedSpace = \"1GB\"\n", None).unwrap();
        assert!(c.gc.enabled);
        assert_eq!(c.gc.policies.len(), 4);
        assert!(
            c.gc.policies
                .iter()
                .all(|p| p.reserved_space == Some(Space::Bytes(1 << 30)))
        );
        assert!(c.gc.policies[3].all);
        assert!(
            !Config::parse("[gc]\nenabled = false\n", None)
                .unwrap()
                .gc
                .enabled
        );
    }

    #[test]
    fn auto_gc_follows_the_store_kiln_toml() {
        if std::env::var_os("KILN_CONFIG").is_some() {
            eprintln!("skipping: KILN_CONFIG is set");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let snap = store.snapshot_dir("old").unwrap().join("fs");
        std::fs::create_dir_all(&snap).unwrap();
        store.add_snapshot("old", None, 10, "old").unwrap();
        store.set_snapshot_last_used("old", 0).unwrap();
        let toml = dir.path().join("kiln.toml");
        std::fs::write(&toml, "[gc]\nenabled = false\n").unwrap();
        assert!(auto_gc(&store).unwrap().is_none());
        std::fs::write(&toml, "[[gc.policy]]\nkeepDuration = \"24h\"\n").unwrap();
        let report = auto_gc(&store).unwrap().unwrap();
        assert_eq!(report.removed.len(), 1);
        assert!(store.snapshot("old").unwrap().is_none());
        std::fs::write(&toml, "[gc]\nbogus = 1\n").unwrap();
        let err = auto_gc(&store).unwrap_err().to_string();
        assert!(err.contains("kiln.toml") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_file() {
        let path = Path::new("/etc/kiln/kiln.toml");
        let err = Config::parse("[gc]\nkeepStorage = \"1GB\"\n", Some(path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/kiln/kiln.toml") && err.contains("keepStorage"),
            "{err}"
        );
        let err = Config::parse("[[gc.policy]]\nkeepDurations = \"1h\"\n", Some(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("keepDurations"), "{err}");
        let err = Config::parse("[gcc]\n", Some(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gcc"), "{err}");
        let err = Config::parse("[gc]\nmaxUsedSpace = \"lots\"\n", Some(path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gc.maxUsedSpace") && err.contains("lots"),
            "{err}"
        );
        let err = Config::parse("[[gc.policy]]\nkeepDuration = \"2d\"\n", Some(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gc.policy[0].keepDuration"), "{err}");
        let err = Config::parse("[[gc.policy]]\nfilters = [\"label=x\"]\n", Some(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("filters"), "{err}");
    }
}
