//! Image sources: an image's layers, unpacked (by `lazy::materialize`) into a snapshot chain
//! once, found again by chain id so every later build (in any kiln process) reuses them.

use std::sync::Arc;

use kiln_graph::ImageSource;
use sha2::{Digest as _, Sha256};

use super::lazy::{BlobLocation, LazyFs, LazyLayer};
use super::{Engine, EngineError, Output};

/// One layer of an image.
#[derive(Debug, Clone)]
pub struct ImageLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Digest, media type and size of the (compressed) blob.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// Where the blob is: in the store, or somewhere it is fetched from (a registry) the
    /// first time a build needs its bytes.
    pub location: BlobLocation,
}

/// Finds the layers of images by manifest digest (kiln's image store implements it; an
/// image pulled lazily from a registry would list remote locations).
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

/// An image's filesystem: its snapshot chain when some build unpacked it already, else
/// its layers, unpacked only when an op needs to see the files.
pub(crate) fn image_output(engine: &Engine, source: &ImageSource) -> Result<Output, EngineError> {
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
    let top = layers.iter().fold(None, |chain: Option<String>, layer| {
        Some(chain_id(chain.as_deref(), &layer.diff_id))
    });
    let Some(top) = top else {
        return Ok(Output::Fs(None));
    };
    if let Some(found) = engine.store().snapshot_by_key(&format!("layer:{top}"))? {
        return Ok(Output::Fs(Some(found.id)));
    }
    Ok(Output::Layers(Arc::new(LazyFs {
        base: None,
        layers: layers.iter().map(LazyLayer::of_image).collect(),
        own_top: false,
    })))
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
