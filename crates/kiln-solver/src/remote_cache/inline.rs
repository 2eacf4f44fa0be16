//! `--cache-to type=inline`: the records of an image's own layers carried in its config,
//! under the top-level key `kiln.cache.v1`. Each record names its layer by index into the
//! manifest's `layers` (and `rootfs.diff_ids`), so the image's blobs are the records'
//! blobs. Importing an image (by the tag a cache source names) reads them back.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::RemoteCacheError;
use super::import::RemoteRecord;
use super::record::{Manifest, RecordConfig, RecordLayer};
use super::storage::BlobRef;
use crate::engine::LayerSettings;

/// Config key the records live under.
pub const INLINE_KEY: &str = "kiln.cache.v1";

/// What the image config carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InlineRecords {
    /// The options the image's layers were written with.
    pub settings: Option<LayerSettings>,
    pub records: Vec<InlineRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineRecord {
    pub key: String,
    pub parent: Option<String>,
    pub created_ms: i64,
    /// Index of the step's layer in the manifest's layers; `None` when it changed nothing.
    pub layer: Option<usize>,
}

#[derive(Deserialize)]
struct ImageConfigPart {
    #[serde(default)]
    rootfs: Option<RootFs>,
    #[serde(rename = "kiln.cache.v1", default)]
    inline: Option<InlineRecords>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The config blob a manifest names when it is an image manifest, else `None`.
pub fn image_config_ref(manifest: &[u8]) -> Option<BlobRef> {
    let manifest: Manifest = serde_json::from_slice(manifest).ok()?;
    let config = manifest.config;
    let image = matches!(
        config.media_type.as_str(),
        "application/vnd.oci.image.config.v1+json"
            | "application/vnd.docker.container.image.v1+json"
    );
    image.then_some(BlobRef {
        media_type: config.media_type,
        digest: config.digest,
        size: config.size,
    })
}

/// The records an image carries, by key (empty when it carries none).
pub fn records_of_image(
    manifest: &[u8],
    config: &[u8],
) -> Result<HashMap<String, RemoteRecord>, RemoteCacheError> {
    let bad = |e: String| RemoteCacheError::Format(format!("inline cache records: {e}"));
    let manifest: Manifest = serde_json::from_slice(manifest).map_err(|e| bad(e.to_string()))?;
    let config: ImageConfigPart = serde_json::from_slice(config).map_err(|e| bad(e.to_string()))?;
    let Some(inline) = config.inline else {
        return Ok(HashMap::new());
    };
    let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    let mut found = HashMap::new();
    for record in inline.records {
        let (layer, blob) = match record.layer {
            None => (None, None),
            Some(index) => {
                let (Some(descriptor), Some(diff_id), Some(settings)) = (
                    manifest.layers.get(index),
                    diff_ids.get(index),
                    inline.settings.as_ref(),
                ) else {
                    return Err(bad(format!("record {} names a missing layer", record.key)));
                };
                (
                    Some(RecordLayer {
                        diff_id: diff_id.clone(),
                        settings: settings.clone(),
                    }),
                    Some(BlobRef {
                        media_type: descriptor.media_type.clone(),
                        digest: descriptor.digest.clone(),
                        size: descriptor.size,
                    }),
                )
            }
        };
        let config = RecordConfig {
            key: record.key.clone(),
            step: String::new(),
            created_ms: record.created_ms,
            inputs: String::new(),
            parent: record.parent,
            layer,
        };
        found.insert(
            record.key,
            RemoteRecord {
                config,
                layer: blob,
            },
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_the_images_layers() {
        let layer = |n: u8| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": format!("sha256:{}", format!("{n:02x}").repeat(32)),
                "size": n,
            })
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:00", "size": 1 },
            "layers": [layer(1), layer(2)],
        });
        let inline = InlineRecords {
            settings: Some(LayerSettings {
                compression: "gzip".into(),
                level: None,
                epoch: None,
            }),
            records: vec![
                InlineRecord {
                    key: "sha256:k1".into(),
                    parent: Some("sha256:base".into()),
                    created_ms: 5,
                    layer: Some(1),
                },
                InlineRecord {
                    key: "sha256:k2".into(),
                    parent: Some("sha256:k1".into()),
                    created_ms: 6,
                    layer: None,
                },
            ],
        };
        let config = serde_json::json!({
            "rootfs": { "type": "layers", "diff_ids": ["sha256:d1", "sha256:d2"] },
            INLINE_KEY: inline,
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        assert!(image_config_ref(&manifest).is_some());
        let records = records_of_image(&manifest, &serde_json::to_vec(&config).unwrap()).unwrap();
        let k1 = &records["sha256:k1"];
        assert_eq!(k1.layer.as_ref().unwrap().size, 2);
        assert_eq!(k1.config.layer.as_ref().unwrap().diff_id, "sha256:d2");
        assert_eq!(k1.config.parent.as_deref(), Some("sha256:base"));
        assert!(records["sha256:k2"].layer.is_none());

        let broken = serde_json::json!({
            "rootfs": { "diff_ids": [] },
            INLINE_KEY: inline,
        });
        assert!(records_of_image(&manifest, &serde_json::to_vec(&broken).unwrap()).is_err());
        let plain = serde_json::json!({ "rootfs": { "diff_ids": [] } });
        assert!(
            records_of_image(&manifest, &serde_json::to_vec(&plain).unwrap())
                .unwrap()
                .is_empty()
        );
    }
}
