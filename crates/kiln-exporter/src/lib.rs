//! The exporters: turn a build result into layers and OCI images, and write them to the
//! image store, OCI or docker archives, local directories or plain tarballs.
//!
//! How the pieces fit, for one build:
//! 1. The base image: [`load_image`] (layout or archive) then
//!    [`LoadedImage::into_built_image`], or a fresh [`ImageConfig::for_platform`].
//! 2. Per build step, [`write_layer`] on the step's overlay upper dir
//!    ([`LayerSource::OverlayDiff`]) gives a [`LayerDescriptor`];
//!    [`ImageConfig::add_layer`] records it (config-only steps use
//!    [`ImageConfig::add_empty_layer_history`]).
//! 3. [`build_image`] with all layers, base first, makes the config and manifest blobs
//!    ([`BuiltImage`]), timestamps clamped to `SOURCE_DATE_EPOCH` when given.
//! 4. Outputs: [`write_oci_layout`], [`write_oci_archive`], [`write_docker_archive`],
//!    [`export_local`], [`export_rootfs_tar`] / [`export_dir_tar`]. Each destination appears
//!    whole or not at all.

mod config;
mod digest;
mod error;
mod fsutil;
mod image;
pub mod imagestore;
mod json;
mod layer;
mod local;
mod output;
mod reader;
mod reference;
#[cfg(feature = "testutil")]
pub mod testutil;
mod timestamp;
mod unpack;

pub use config::{ContainerConfig, HISTORY_COMMENT, Healthcheck, History, ImageConfig, RootFs};
pub use digest::{parse_sha256, sha256_digest};
pub use error::{ExportError, Result};
pub use image::{
    Blob, BuiltImage, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2, ImageOptions, ManifestFormat, build_image,
};
pub use json::{index_json, manifest_json};
pub use layer::{
    Compression, LayerDescriptor, LayerOptions, LayerSource, write_layer, write_layer_tar,
};
pub use local::{export_dir_tar, export_local, export_rootfs_tar};
pub use output::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_CREATED, ANNOTATION_REF_NAME, write_docker_archive,
    write_oci_archive, write_oci_layout,
};
pub use reader::{LoadedImage, OciLayoutRef, default_platform, load_image, parse_platform};
pub use reference::ImageName;
pub use timestamp::Timestamp;
pub use unpack::{decompressed, unpack_layer, unpack_layer_file};

/// The OCI types this crate's API speaks in.
pub use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType, Platform};
