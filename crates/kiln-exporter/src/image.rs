//! Assembling an image: the config and manifest blobs that tie layer blobs together.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};

use crate::config::ImageConfig;
use crate::digest::sha256_digest;
use crate::error::{ExportError, Result};
use crate::json::manifest_json;
use crate::layer::LayerDescriptor;

pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Which family of media types the manifest uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    /// `application/vnd.oci.image.*` (BuildKit's `oci-mediatypes=true`).
    #[default]
    Oci,
    /// Docker schema 2 (what BuildKit's `type=docker` writes by default).
    Docker,
}

#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    pub format: ManifestFormat,
    /// Annotations written in the manifest.
    pub annotations: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`: clamps the config's `created` and history times.
    pub source_date_epoch: Option<i64>,
}

/// A small JSON blob and its descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: MediaType, bytes: Vec<u8>) -> Self {
        Blob {
            descriptor: Descriptor::new(media_type, bytes.len() as u64, sha256_digest(&bytes)),
            bytes,
        }
    }
}

/// An image ready to be written anywhere: config and manifest bytes plus layer blob files.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub config: ImageConfig,
    pub config_blob: Blob,
    pub manifest: ImageManifest,
    /// The manifest bytes; its descriptor carries the image platform.
    pub manifest_blob: Blob,
    pub layers: Vec<LayerDescriptor>,
}

fn layer_media_type(layer: &LayerDescriptor, format: ManifestFormat) -> Result<MediaType> {
    Ok(match (format, &layer.media_type) {
        (ManifestFormat::Oci, t) => t.clone(),
        (ManifestFormat::Docker, MediaType::ImageLayerGzip) => DOCKER_LAYER_GZIP.into(),
        (ManifestFormat::Docker, MediaType::ImageLayer) => DOCKER_LAYER_TAR.into(),
        (ManifestFormat::Docker, t) if t.to_string().starts_with("application/vnd.docker.") => {
            t.clone()
        }
        (ManifestFormat::Docker, t) => {
            // Docker's schema 2 has no zstd layer type.
            return Err(ExportError::UnsupportedMediaType(format!(
                "{t} in a docker schema 2 manifest"
            )));
        }
    })
}

/// Builds the config (its `rootfs.diff_ids` taken from `layers`) and the manifest.
pub fn build_image(
    config: &ImageConfig,
    layers: &[LayerDescriptor],
    options: &ImageOptions,
) -> Result<BuiltImage> {
    let mut config = config.clone();
    config.rootfs.kind = "layers".to_owned();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    config.clamp_timestamps(options.source_date_epoch);
    let (manifest_type, config_type): (MediaType, MediaType) = match options.format {
        ManifestFormat::Oci => (MediaType::ImageManifest, MediaType::ImageConfig),
        ManifestFormat::Docker => (DOCKER_MANIFEST_V2.into(), DOCKER_CONFIG.into()),
    };
    let config_blob = Blob::new(config_type, config.to_json()?);
    let mut layer_descs = Vec::with_capacity(layers.len());
    for l in layers {
        layer_descs.push(Descriptor::new(
            layer_media_type(l, options.format)?,
            l.size,
            l.digest.clone(),
        ));
    }
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(manifest_type.clone())
        .config(config_blob.descriptor.clone())
        .layers(layer_descs)
        .build()?;
    if !options.annotations.is_empty() {
        let ann: HashMap<String, String> = options.annotations.clone().into_iter().collect();
        manifest.set_annotations(Some(ann));
    }
    let mut manifest_blob = Blob::new(manifest_type, manifest_json(&manifest)?);
    manifest_blob
        .descriptor
        .set_platform(Some(config.platform()));
    Ok(BuiltImage {
        config,
        config_blob,
        manifest,
        manifest_blob,
        layers: layers.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{LayerOptions, LayerSource, write_layer};
    use crate::timestamp::Timestamp;
    use oci_spec::image::{Arch, Os, Platform};

    #[test]
    fn manifest_lists_config_and_layers() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("f"), b"x").unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let layer = write_layer(
            LayerSource::Tree(src.path()),
            &LayerOptions::default(),
            blobs.path(),
        )
        .unwrap();
        let mut p = Platform::default();
        p.set_architecture(Arch::Amd64);
        p.set_os(Os::Linux);
        let mut config = ImageConfig::for_platform(&p);
        config.created = Some(Timestamp::from_unix(2_000_000_000));
        let opts = ImageOptions {
            source_date_epoch: Some(0),
            ..Default::default()
        };
        let img = build_image(&config, std::slice::from_ref(&layer), &opts).unwrap();
        assert_eq!(img.config.rootfs.diff_ids, vec![layer.diff_id.clone()]);
        assert_eq!(img.config.created, Some(Timestamp::from_unix(0)));
        let text = String::from_utf8(img.manifest_blob.bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:"#), "{text}");
        assert!(text.contains(&format!(r#""layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]"#, layer.digest, layer.size)));

        let docker = ImageOptions {
            format: ManifestFormat::Docker,
            ..Default::default()
        };
        let img = build_image(&config, std::slice::from_ref(&layer), &docker).unwrap();
        assert_eq!(
            img.manifest.layers()[0].media_type().to_string(),
            DOCKER_LAYER_GZIP
        );
    }
}
