//! Image sources: an image's layers unpacked into a snapshot chain once, found again by
//! chain id so every later build (in any kiln process) reuses them.

use std::fs::File;
use std::path::PathBuf;

use kiln_graph::ImageSource;
use sha2::{Digest as _, Sha256};

use super::{Engine, EngineError, Output, io_error};

/// One layer of a stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Digest, media type and size of the (compressed) blob.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// Where the blob is on disk.
    pub path: PathBuf,
}

/// Finds the layers of images by manifest digest (kiln's image store implements it).
pub trait ImageLayers: Send + Sync {
    /// The layers of the image whose manifest has `manifest_digest`, base first.
    fn image_layers(&self, manifest_digest: &str) -> Result<Vec<ImageLayer>, String>;
}

/// OCI chain id of a layer on top of a chain: `sha256(parent + " " + diff_id)`.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(parent) => {
            let digest = Sha256::digest(format!("{parent} {diff_id}").as_bytes());
            format!("sha256:{}", hex::encode(digest))
        }
    }
}

pub(crate) fn unpack_image(
    engine: &Engine,
    source: &ImageSource,
    label: &str,
) -> Result<Output, EngineError> {
    let digest = source.digest.as_deref().ok_or_else(|| {
        EngineError::Input(format!(
            "image {} was not resolved to a digest",
            source.reference
        ))
    })?;
    let layers = engine
        .images()
        .image_layers(digest)
        .map_err(EngineError::Input)?;
    let store = engine.store();
    let mut parent: Option<String> = None;
    let mut chain: Option<String> = None;
    for layer in &layers {
        let id = chain_id(chain.as_deref(), &layer.diff_id);
        let key = format!("layer:{id}");
        // One process unpacks a given chain; others wait and then find it.
        let short = id
            .trim_start_matches("sha256:")
            .get(..32)
            .unwrap_or_default();
        let _guard = store.lock(&format!("unpack-{short}"))?;
        let snapshot = match store.snapshot_by_key(&key)? {
            Some(found) => found.id,
            None => {
                let blob = File::open(&layer.path)
                    .map_err(io_error(format!("open layer {}", layer.digest)))?;
                let (record, _) =
                    engine
                        .snapshotter()
                        .apply_layer(parent.as_deref(), blob, label)?;
                store.set_snapshot_key(&record.id, &key)?;
                record.id
            }
        };
        parent = Some(snapshot);
        chain = Some(id);
    }
    Ok(Output::Fs(parent))
}

#[cfg(test)]
mod tests {
    use super::chain_id;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = "sha256:aaaa";
        assert_eq!(chain_id(None, a), a);
        let b = chain_id(Some(a), "sha256:bbbb");
        assert!(b.starts_with("sha256:") && b.len() == 71);
        assert_ne!(b, chain_id(Some("sha256:cccc"), "sha256:bbbb"));
    }
}
