//! `--cache-from` / `--cache-to` values (buildx's CSV form) and the storage they name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_exporter::Compression;

use super::RemoteCacheError;
use super::layout::LocalLayoutStorage;
use super::record::check_tag_prefix;
use super::registry::RegistryStorage;
use super::storage::CacheStorage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheBackend {
    /// An OCI image layout directory (`dest=` to export, `src=` to import).
    Local { dir: PathBuf },
    /// A registry repository (`ref=`, or a bare reference).
    Registry { reference: String },
    /// Records embedded in the exported image.
    Inline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The records of the steps whose layers make up the image.
    #[default]
    Min,
    /// The records of every step.
    Max,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub backend: CacheBackend,
    pub mode: CacheMode,
    pub compression: Compression,
    /// Tag records are named under (`{tag}-{hex of key}`).
    pub tag: String,
    /// `ignore-error=`; unset means warn.
    pub ignore_error: Option<bool>,
}

impl CacheSpec {
    /// Whether a failed export fails the build (only when `ignore-error=false` was given).
    pub fn fail_on_error(&self) -> bool {
        self.ignore_error == Some(false)
    }
}

/// Parses one `--cache-to` (`export`) or `--cache-from` value.
pub fn parse_cache_spec(text: &str, export: bool) -> Result<CacheSpec, RemoteCacheError> {
    let flag = if export { "--cache-to" } else { "--cache-from" };
    let bad = |message: String| RemoteCacheError::Spec(format!("{flag} {text:?}: {message}"));
    let mut kind = None;
    let mut path = None;
    let mut reference = None;
    let mut mode = CacheMode::Min;
    let mut compression = Compression::Gzip;
    let mut tag = None;
    let mut ignore_error = None;
    for (index, field) in text.split(',').map(str::trim).enumerate() {
        if field.is_empty() {
            continue;
        }
        let Some((key, value)) = field.split_once('=') else {
            if index == 0 {
                // `--cache-from user/app:cache` is a registry reference.
                kind = Some("registry".to_string());
                reference = Some(field.to_string());
                continue;
            }
            return Err(bad(format!("{field:?} is not KEY=VALUE")));
        };
        match key.trim() {
            "type" => kind = Some(value.to_string()),
            "dest" if export => path = Some(value.to_string()),
            "src" if !export => path = Some(value.to_string()),
            "dest" | "src" => {
                return Err(bad(format!(
                    "{key}= belongs to {}",
                    if export { "--cache-from" } else { "--cache-to" }
                )));
            }
            "ref" => reference = Some(value.to_string()),
            "mode" => {
                mode = match value {
                    "min" => CacheMode::Min,
                    "max" => CacheMode::Max,
                    other => return Err(bad(format!("mode {other:?}: expected min or max"))),
                }
            }
            "compression" => {
                compression = Compression::parse(value).ok_or_else(|| {
                    bad(format!(
                        "compression {value:?}: expected gzip, zstd or uncompressed"
                    ))
                })?
            }
            "tag" => tag = Some(value.to_string()),
            "ignore-error" => {
                ignore_error = Some(match value {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(bad(format!(
                            "ignore-error {other:?}: expected true or false"
                        )));
                    }
                })
            }
            // Accepted for compatibility: kiln always writes OCI media types and manifests.
            "oci-mediatypes" | "image-manifest" | "compression-level" | "force-compression"
            | "digest" => {}
            other => return Err(bad(format!("unknown attribute {other:?}"))),
        }
    }
    let kind = kind.ok_or_else(|| bad("missing type= (local, registry or inline)".into()))?;
    let backend = match kind.as_str() {
        "local" => {
            let dir = path.ok_or_else(|| {
                bad(format!(
                    "type=local needs {}=DIRECTORY",
                    if export { "dest" } else { "src" }
                ))
            })?;
            CacheBackend::Local {
                dir: PathBuf::from(dir),
            }
        }
        "registry" => {
            let reference = reference.ok_or_else(|| bad("type=registry needs ref=NAME".into()))?;
            if tag.is_none() {
                tag = Some(reference_tag(&reference));
            }
            CacheBackend::Registry { reference }
        }
        "inline" => CacheBackend::Inline,
        other => {
            return Err(RemoteCacheError::Unsupported(format!(
                "{flag} type={other} is not supported by this version of kiln (use type=local, \
                 type=registry or type=inline)"
            )));
        }
    };
    let tag = tag.unwrap_or_else(|| "latest".to_string());
    check_tag_prefix(&tag).map_err(|e| bad(e.to_string()))?;
    Ok(CacheSpec {
        backend,
        mode,
        compression,
        tag,
        ignore_error,
    })
}

/// The tag of a reference (`latest` when it names none).
fn reference_tag(reference: &str) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// What opening a registry-backed storage needs: the build's registry client (made on
/// first use) and scratch space on the store's filesystem.
pub struct RegistryAccess<'a> {
    pub client: Option<Result<&'a kiln_registry::Client, String>>,
    pub tmp_dir: &'a Path,
}

/// The storage a spec names; `export` creates a missing local layout. This is where
/// backends are plugged in.
pub fn open_storage(
    spec: &CacheSpec,
    export: bool,
    registry: &RegistryAccess<'_>,
) -> Result<Arc<dyn CacheStorage>, RemoteCacheError> {
    match &spec.backend {
        CacheBackend::Local { dir } => Ok(Arc::new(LocalLayoutStorage::open(dir, export)?)),
        CacheBackend::Registry { reference } => {
            let client = match &registry.client {
                Some(Ok(client)) => (*client).clone(),
                Some(Err(error)) => return Err(RemoteCacheError::Backend(error.clone())),
                None => {
                    return Err(RemoteCacheError::Unsupported(format!(
                        "type=registry cache ({reference}) needs registry access, which this build has not"
                    )));
                }
            };
            Ok(Arc::new(RegistryStorage::new(
                client,
                reference,
                registry.tmp_dir.to_path_buf(),
            )?))
        }
        CacheBackend::Inline => Err(RemoteCacheError::Unsupported(
            "type=inline is read from an image: use --cache-from type=registry,ref=IMAGE".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_specs_parse_with_defaults_and_options() {
        let spec = parse_cache_spec("type=local,dest=/c", true).unwrap();
        assert_eq!(
            spec.backend,
            CacheBackend::Local {
                dir: PathBuf::from("/c")
            }
        );
        assert_eq!(spec.mode, CacheMode::Min);
        assert_eq!(spec.compression, Compression::Gzip);
        assert_eq!(spec.tag, "latest");
        assert!(!spec.fail_on_error());
        let spec = parse_cache_spec(
            "type=local,dest=/c,mode=max,compression=zstd,tag=ci,ignore-error=false",
            true,
        )
        .unwrap();
        assert_eq!(
            (spec.mode, spec.compression, spec.tag.as_str()),
            (CacheMode::Max, Compression::Zstd, "ci")
        );
        assert!(spec.fail_on_error());
        assert!(parse_cache_spec("type=local,src=/c", false).is_ok());
    }

    #[test]
    fn registry_refs_give_the_tag_prefix() {
        let bare = parse_cache_spec("registry.local:5000/app:buildcache", false).unwrap();
        assert_eq!(bare.tag, "buildcache");
        assert_eq!(
            bare.backend,
            CacheBackend::Registry {
                reference: "registry.local:5000/app:buildcache".into()
            }
        );
        let untagged = parse_cache_spec("type=registry,ref=registry.local:5000/app", true).unwrap();
        assert_eq!(untagged.tag, "latest");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let cases = [
            ("type=local", true, "dest=DIRECTORY"),
            ("type=local,src=/c", true, "belongs to --cache-from"),
            ("type=local,dest=/c,mode=all", true, "expected min or max"),
            ("type=gha", true, "not supported"),
            ("dest=/c", true, "missing type="),
            ("type=local,dest=/c,colour=red", true, "unknown attribute"),
        ];
        for (text, export, expected) in cases {
            let error = parse_cache_spec(text, export).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let long = format!("type=registry,ref=r.local/app:{}", "t".repeat(64));
        let error = parse_cache_spec(&long, true).unwrap_err().to_string();
        assert!(error.contains("at most 63"), "{error}");
    }

    #[test]
    fn registry_caches_need_registry_access() {
        let spec = parse_cache_spec("type=registry,ref=r.local/app:c", true).unwrap();
        let tmp = std::env::temp_dir();
        let none = RegistryAccess {
            client: None,
            tmp_dir: &tmp,
        };
        let error = open_storage(&spec, true, &none).err().unwrap();
        assert!(matches!(error, RemoteCacheError::Unsupported(_)), "{error}");
    }
}
