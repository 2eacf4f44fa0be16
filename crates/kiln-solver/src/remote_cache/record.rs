//! A cache record as OCI objects: the config document, the manifest around it and the tag
//! that addresses it.

use kiln_registry::media::{OCI_MANIFEST, sha256_digest};
use serde::{Deserialize, Serialize};

use super::RemoteCacheError;
use super::storage::BlobRef;
use crate::engine::LayerSettings;

/// Media type of a record's config blob.
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.kiln.cache.record.v1+json";
/// Tags are at most 128 characters; a record tag adds `-` and 64 hex digits.
pub const MAX_TAG_PREFIX: usize = 128 - 65;

/// What a record says about the step it caches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordConfig {
    /// The cache key, `sha256:<hex>`.
    pub key: String,
    /// The step that made it (`Dockerfile#[build 2/5]`), for explanations.
    pub step: String,
    /// When the step first ran (ms since the epoch): images built from the record keep
    /// their timestamps, and so their digest.
    pub created_ms: i64,
    /// The key inputs as kiln stores them (JSON text), for explanations.
    pub inputs: String,
    /// The key of the step whose filesystem this one builds on; `None` for scratch.
    pub parent: Option<String>,
    /// The step's diff, `None` when it changed nothing (the manifest has no layers).
    pub layer: Option<RecordLayer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// The options the blob was written with.
    pub settings: LayerSettings,
}

/// The tag of `key`'s record under the ref tag `prefix`.
pub fn record_tag(prefix: &str, key: &str) -> String {
    format!("{prefix}-{}", key.trim_start_matches("sha256:"))
}

/// The key a tag addresses under `prefix`, `None` for tags that are not records.
pub fn key_of_tag(prefix: &str, tag: &str) -> Option<String> {
    let hex = tag.strip_prefix(prefix)?.strip_prefix('-')?;
    kiln_store::Digest::from_hex(hex)
        .ok()
        .map(|d| d.to_string())
}

/// Checks that `prefix` leaves room for a record tag and is a valid tag.
pub fn check_tag_prefix(prefix: &str) -> Result<(), RemoteCacheError> {
    if prefix.len() > MAX_TAG_PREFIX {
        return Err(RemoteCacheError::Spec(format!(
            "cache tag {prefix:?} is {} characters long; record tags add 65 characters to it and \
             tags are at most 128, so use a tag of at most {MAX_TAG_PREFIX} characters",
            prefix.len()
        )));
    }
    if kiln_registry::validate_tag(prefix).is_err() {
        return Err(RemoteCacheError::Spec(format!(
            "cache tag {prefix:?} is not a valid tag (letters, digits, '_', '.', '-', not starting \
             with '.' or '-')"
        )));
    }
    Ok(())
}

/// A record's config blob and manifest, ready to store (blobs first, manifest last).
pub struct EncodedRecord {
    pub config: Vec<u8>,
    pub config_ref: BlobRef,
    pub manifest: Vec<u8>,
}

pub fn encode(config: &RecordConfig, layer: Option<&BlobRef>) -> EncodedRecord {
    let config_bytes = serde_json::to_vec(config).unwrap_or_default();
    let config_ref = BlobRef {
        media_type: RECORD_MEDIA_TYPE.to_string(),
        digest: sha256_digest(&config_bytes),
        size: config_bytes.len() as u64,
    };
    let descriptor = |blob: &BlobRef| serde_json::json!({ "mediaType": blob.media_type, "digest": blob.digest, "size": blob.size });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(&config_ref),
        "layers": layer.iter().map(|l| descriptor(l)).collect::<Vec<_>>(),
    });
    EncodedRecord {
        config: config_bytes,
        config_ref,
        manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
    }
}

/// The parts of an OCI manifest the remote cache reads.
#[derive(Deserialize)]
pub(super) struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
pub(super) struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl From<Descriptor> for BlobRef {
    fn from(d: Descriptor) -> Self {
        BlobRef {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
        }
    }
}

/// The config and layer a record manifest names; an error for anything that is not a
/// record kiln wrote.
pub fn decode_manifest(bytes: &[u8]) -> Result<(BlobRef, Option<BlobRef>), RemoteCacheError> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| RemoteCacheError::Format(format!("not an OCI manifest: {e}")))?;
    if manifest.config.media_type != RECORD_MEDIA_TYPE {
        return Err(RemoteCacheError::Format(format!(
            "config media type {} is not {RECORD_MEDIA_TYPE}",
            manifest.config.media_type
        )));
    }
    if manifest.layers.len() > 1 {
        return Err(RemoteCacheError::Format(format!(
            "a record has at most one layer, this one has {}",
            manifest.layers.len()
        )));
    }
    Ok((
        manifest.config.into(),
        manifest.layers.into_iter().next().map(BlobRef::from),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(layer: bool) -> RecordConfig {
        RecordConfig {
            key: format!("sha256:{}", "ab".repeat(32)),
            step: "Dockerfile#[build 2/3]".into(),
            created_ms: 1_700_000_000_000,
            inputs: "{}".into(),
            parent: Some(format!("sha256:{}", "cd".repeat(32))),
            layer: layer.then(|| RecordLayer {
                diff_id: format!("sha256:{}", "ef".repeat(32)),
                settings: LayerSettings {
                    compression: "gzip".into(),
                    level: None,
                    epoch: None,
                },
            }),
        }
    }

    #[test]
    fn tags_carry_the_key_and_nothing_else_parses_as_one() {
        let key = format!("sha256:{}", "0a".repeat(32));
        let tag = record_tag("cache", &key);
        assert_eq!(tag.len(), 5 + 65);
        assert_eq!(key_of_tag("cache", &tag), Some(key.clone()));
        assert_eq!(key_of_tag("other", &tag), None);
        assert_eq!(key_of_tag("cache", "cache-latest"), None);
        assert_eq!(key_of_tag("cache", &tag.to_uppercase()), None);
        assert_eq!(key_of_tag("cach", &tag), None);
    }

    #[test]
    fn long_or_invalid_tag_prefixes_are_refused() {
        assert!(check_tag_prefix(&"a".repeat(MAX_TAG_PREFIX)).is_ok());
        let long = check_tag_prefix(&"a".repeat(MAX_TAG_PREFIX + 1)).unwrap_err();
        assert!(long.to_string().contains("at most 63"), "{long}");
        assert!(check_tag_prefix("-x").is_err());
        assert!(check_tag_prefix("a/b").is_err());
        assert!(check_tag_prefix("").is_err());
    }

    #[test]
    fn manifests_round_trip_with_and_without_a_layer() {
        let layer = BlobRef {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest: format!("sha256:{}", "12".repeat(32)),
            size: 42,
        };
        let encoded = encode(&config(true), Some(&layer));
        let (config_ref, found) = decode_manifest(&encoded.manifest).unwrap();
        assert_eq!(config_ref, encoded.config_ref);
        assert_eq!(config_ref.digest, sha256_digest(&encoded.config));
        assert_eq!(found, Some(layer));
        let back: RecordConfig = serde_json::from_slice(&encoded.config).unwrap();
        assert_eq!(back, config(true));

        let empty = encode(&config(false), None);
        assert_eq!(decode_manifest(&empty.manifest).unwrap().1, None);
    }

    #[test]
    fn manifests_of_something_else_are_refused() {
        let image = serde_json::json!({
            "schemaVersion": 2,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:00", "size": 1 },
            "layers": [],
        });
        let error = decode_manifest(&serde_json::to_vec(&image).unwrap()).unwrap_err();
        assert!(error.to_string().contains(RECORD_MEDIA_TYPE), "{error}");
        assert!(decode_manifest(b"not json").is_err());
    }
}
