//! kiln's own image store, on top of [`kiln_store::Store`]: every blob of an image (layers,
//! config, manifest) in the content-addressed blob directory, and names pointing at the
//! manifest digest in the images table. An image's ID is its config digest, as in docker.
//!
//! Writing follows one rule: every blob is in place, verified against its digest, before
//! any name points at it, so a name never leads to a missing blob.

mod changes;
mod error;
mod import;
mod lookup;
mod names;

pub use changes::apply_change;
pub use error::{ImageStoreError, Result};
pub use import::{
    ImportOptions, LoadedArchiveImage, host_platform, import_rootfs_reader, import_rootfs_tar,
    load_archive,
};
pub use lookup::{ImageSummary, list, manifest_of, open, open_manifest, remove};
pub use names::{NONE, dangling_name, display_parts, familiar_name, is_dangling, normalize_name};

use std::fs::File;

use kiln_store::{Digest, Store};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};

use crate::config::ImageConfig;
use crate::image::{Blob, BuiltImage};
use crate::layer::LayerDescriptor;
use error::io_err;

/// An image read back from the store.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// Stored names that point at this manifest, sorted (dangling placeholders excluded).
    pub names: Vec<String>,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub manifest_bytes: Vec<u8>,
    /// The image ID.
    pub config_digest: Digest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    /// Layers base first; each `path` is the blob in the store.
    pub layers: Vec<LayerDescriptor>,
}

impl StoredImage {
    /// Bytes the image's blobs take in the store (layers as stored, compressed).
    pub fn size(&self) -> u64 {
        let layers: u64 = self.layers.iter().map(|l| l.size).sum();
        layers + self.config_bytes.len() as u64 + self.manifest_bytes.len() as u64
    }

    /// The image in the form every exporter writes (docker or OCI archive, OCI layout).
    pub fn to_built_image(&self) -> BuiltImage {
        let media_type = self
            .manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        let mut descriptor = Descriptor::new(
            media_type,
            self.manifest_bytes.len() as u64,
            self.manifest_digest_oci(),
        );
        descriptor.set_platform(Some(self.config.platform()));
        BuiltImage {
            config: self.config.clone(),
            config_blob: Blob {
                descriptor: self.manifest.config().clone(),
                bytes: self.config_bytes.clone(),
            },
            manifest: self.manifest.clone(),
            manifest_blob: Blob {
                descriptor,
                bytes: self.manifest_bytes.clone(),
            },
            layers: self.layers.clone(),
        }
    }

    fn manifest_digest_oci(&self) -> oci_spec::image::Digest {
        // `read_image` checked that these bytes hash to `manifest_digest`.
        crate::digest::sha256_digest(&self.manifest_bytes)
    }
}

pub(crate) fn to_store_digest(d: &oci_spec::image::Digest) -> Result<Digest> {
    Ok(Digest::parse(d.as_ref())?)
}

/// Stores `image` and points each of `names` (as users type them) at it; with no names
/// the image is kept dangling. Returns the manifest digest.
pub fn save(store: &Store, image: &BuiltImage, names: &[String]) -> Result<Digest> {
    let names = names
        .iter()
        .map(|n| normalize_name(n))
        .collect::<Result<Vec<_>>>()?;
    check_consistent(image)?;
    for layer in &image.layers {
        let digest = to_store_digest(&layer.digest)?;
        if store.has_blob(&digest) {
            continue;
        }
        let file = File::open(&layer.path).map_err(io_err("open layer", &layer.path))?;
        store.put_blob_expecting(file, &digest)?;
    }
    // An image saved again (a no-op rebuild) finds its blobs in place: nothing to write.
    let config = to_store_digest(image.config_blob.descriptor.digest())?;
    if !store.has_blob(&config) {
        store.put_blob_expecting(image.config_blob.bytes.as_slice(), &config)?;
    }
    let manifest = to_store_digest(image.manifest_blob.descriptor.digest())?;
    if !store.has_blob(&manifest) {
        store.put_blob_expecting(image.manifest_blob.bytes.as_slice(), &manifest)?;
    }
    tag_all(store, &manifest, &names)?;
    Ok(manifest)
}

/// Points stored `names` at `manifest`; with none, keeps the image under its dangling name
/// unless some name already points at it.
pub(crate) fn tag_all(store: &Store, manifest: &Digest, names: &[String]) -> Result<()> {
    let dangling = dangling_name(manifest);
    if names.is_empty() {
        let named = store
            .list_images()?
            .iter()
            .any(|r| &r.manifest == manifest && !is_dangling(&r.name));
        if !named && store.resolve(&dangling)?.is_none() {
            store.tag(&dangling, manifest)?;
        }
        return Ok(());
    }
    for name in names {
        // Already naming this image: no write (and its date stays the first tagging's).
        if store
            .resolve(name)?
            .is_some_and(|r| &r.manifest == manifest)
        {
            continue;
        }
        store.tag(name, manifest)?;
    }
    if store.resolve(&dangling)?.is_some() {
        store.remove_image(&dangling)?;
    }
    Ok(())
}

/// The manifest must list exactly the config and layers the image carries, or the stored
/// image would not be the one described.
fn check_consistent(image: &BuiltImage) -> Result<()> {
    let manifest: ImageManifest = serde_json::from_slice(&image.manifest_blob.bytes)
        .map_err(crate::error::ExportError::from)?;
    let inconsistent = |what: &str| {
        crate::error::ExportError::InvalidImage(format!("manifest does not match the image {what}"))
    };
    if manifest.config().digest() != image.config_blob.descriptor.digest() {
        return Err(inconsistent("config").into());
    }
    let listed: Vec<_> = manifest.layers().iter().map(|l| l.digest()).collect();
    let carried: Vec<_> = image.layers.iter().map(|l| &l.digest).collect();
    if listed != carried {
        return Err(inconsistent("layers").into());
    }
    Ok(())
}

/// Reads and checks the image whose manifest is `manifest_digest`; `names` is left empty.
pub(crate) fn read_image(store: &Store, manifest_digest: &Digest) -> Result<StoredImage> {
    read_manifest(store, manifest_digest, true)
}

/// Reads an image pulled lazily from a registry: its manifest and config are in the store,
/// its layers maybe not yet (their `path` is where each blob goes once fetched).
pub fn open_pulled(store: &Store, manifest_digest: &Digest) -> Result<StoredImage> {
    read_manifest(store, manifest_digest, false)
}

fn read_manifest(
    store: &Store,
    manifest_digest: &Digest,
    require_layers: bool,
) -> Result<StoredImage> {
    let corrupt = |reason: String| ImageStoreError::Corrupt {
        manifest: manifest_digest.clone(),
        reason,
    };
    let manifest_bytes = store.read_blob(manifest_digest)?;
    if &Digest::of_bytes(&manifest_bytes) != manifest_digest {
        return Err(corrupt(
            "manifest blob does not match its digest".to_owned(),
        ));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| corrupt(format!("manifest: {e}")))?;
    let config_digest = to_store_digest(manifest.config().digest())?;
    let config_bytes = store.read_blob(&config_digest)?;
    if Digest::of_bytes(&config_bytes) != config_digest {
        return Err(corrupt(format!(
            "config blob {config_digest} does not match its digest"
        )));
    }
    let config =
        ImageConfig::from_json(&config_bytes).map_err(|e| corrupt(format!("config: {e}")))?;
    if config.rootfs.diff_ids.len() != manifest.layers().len() {
        return Err(corrupt(format!(
            "{} layers but {} diff_ids",
            manifest.layers().len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let mut layers = Vec::with_capacity(manifest.layers().len());
    for (desc, diff_id) in manifest.layers().iter().zip(&config.rootfs.diff_ids) {
        let digest = to_store_digest(desc.digest())?;
        if require_layers && !store.has_blob(&digest) {
            return Err(corrupt(format!("layer blob {digest} is missing")));
        }
        layers.push(LayerDescriptor {
            media_type: desc.media_type().clone(),
            digest: desc.digest().clone(),
            size: desc.size(),
            diff_id: diff_id.clone(),
            path: store.blob_path(&digest),
        });
    }
    Ok(StoredImage {
        names: Vec::new(),
        manifest_digest: manifest_digest.clone(),
        manifest,
        manifest_bytes,
        config_digest,
        config,
        config_bytes,
        layers,
    })
}

#[cfg(test)]
mod tests;
