//! Reading images back: OCI layouts (directory or archive) and docker archives, as `kiln
//! load -i` and `--build-context NAME=oci-layout://PATH[:TAG|@DIGEST]` need. Every blob is
//! checked against its digest before it is used.

mod blobs;
mod docker;
mod source_ref;

pub use source_ref::{OciLayoutRef, parse_platform};

use std::io::Read;
use std::path::Path;

use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, MediaType, Os, Platform};

use crate::config::ImageConfig;
use crate::digest::{VerifyingReader, check_blob, sha256_digest, sha256_hex};
use crate::error::{ExportError, Result};
use crate::fsutil::AtomicFile;
use crate::image::{Blob, BuiltImage, DOCKER_MANIFEST_LIST};
use crate::layer::LayerDescriptor;
use crate::output::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::reference::ImageName;
use blobs::Files;

/// An image found in a layout or archive, its metadata verified and parsed.
#[derive(Debug)]
pub struct LoadedImage {
    /// Descriptor of the manifest (platform set from the config).
    pub manifest_descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub manifest_bytes: Vec<u8>,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    /// Names the source recorded for the image (tags or full references).
    pub names: Vec<String>,
    files: Files,
    /// Where each layer's blob lives in `files`.
    layer_paths: Vec<String>,
}

fn blob_path(digest: &oci_spec::image::Digest) -> Result<String> {
    Ok(format!("blobs/sha256/{}", sha256_hex(digest)?))
}

/// Reads a small blob named by `desc` and checks its size and digest.
fn read_verified(files: &Files, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
    let bytes = files.read_small(&blob_path(desc.digest())?)?;
    check_blob(
        what,
        desc.digest(),
        desc.size(),
        &sha256_digest(&bytes),
        bytes.len() as u64,
    )?;
    Ok(bytes)
}

fn is_index(media_type: &MediaType) -> bool {
    *media_type == MediaType::ImageIndex || media_type.to_string() == DOCKER_MANIFEST_LIST
}

/// linux/amd64 unless told otherwise.
pub fn default_platform() -> Platform {
    let mut p = Platform::default();
    p.set_os(Os::Linux);
    p.set_architecture(Arch::Amd64);
    p
}

fn platform_matches(have: &Platform, want: &Platform) -> bool {
    have.os() == want.os()
        && have.architecture() == want.architecture()
        && match want.variant() {
            Some(v) => have.variant().as_deref() == Some(v.as_str()),
            None => true,
        }
}

fn annotation<'a>(d: &'a Descriptor, key: &str) -> Option<&'a str> {
    d.annotations().as_ref()?.get(key).map(String::as_str)
}

fn selector_matches(d: &Descriptor, selector: &str) -> bool {
    if let Some(digest) = selector.strip_prefix('@').or(Some(selector))
        && digest.starts_with("sha256:")
    {
        return d.digest().as_ref() == digest;
    }
    let ref_name = annotation(d, ANNOTATION_REF_NAME);
    let full_name = annotation(d, ANNOTATION_CONTAINERD_NAME);
    if ref_name == Some(selector) || full_name == Some(selector) {
        return true;
    }
    let Ok(wanted) = ImageName::parse(selector) else {
        return false;
    };
    full_name.and_then(|n| ImageName::parse(n).ok()) == Some(wanted.clone())
        || ref_name.and_then(|n| ImageName::parse(n).ok()) == Some(wanted)
}

/// Opens an OCI layout directory, OCI archive or docker archive at `path` and resolves
/// `selector` (a tag, a name, or `sha256:`/`@sha256:` digest; `None` when the source holds
/// exactly one image) to one image for `platform` (linux/amd64 when `None`).
pub fn load_image(
    path: &Path,
    selector: Option<&str>,
    platform: Option<&Platform>,
) -> Result<LoadedImage> {
    let files = if Files::is_dir_layout(path) {
        Files::dir(path)
    } else {
        Files::tar(path)?
    };
    let want = platform.cloned().unwrap_or_else(default_platform);
    if files.exists("index.json") && files.exists("oci-layout") {
        let has_docker_manifest = files.exists("manifest.json");
        match load_oci(files, selector, &want) {
            // A docker archive that is also a layout: its manifest.json knows image ids
            // (config digests) and RepoTags the index may not.
            Err(ExportError::ImageNotFound(_)) if has_docker_manifest => {
                docker::load(Files::tar(path)?, selector)
            }
            other => other,
        }
    } else if files.exists("manifest.json") {
        docker::load(files, selector)
    } else {
        Err(ExportError::UnknownFormat(path.display().to_string()))
    }
}

fn load_oci(files: Files, selector: Option<&str>, want: &Platform) -> Result<LoadedImage> {
    let index: ImageIndex = serde_json::from_slice(&files.read_small("index.json")?)?;
    let candidates: Vec<&Descriptor> = match selector {
        Some(s) => index
            .manifests()
            .iter()
            .filter(|d| selector_matches(d, s))
            .collect(),
        None => index.manifests().iter().collect(),
    };
    let chosen = match candidates.as_slice() {
        [one] => (*one).clone(),
        [] => {
            // A digest may also name a manifest inside a nested index.
            let s = selector.unwrap_or("");
            let digest = s.strip_prefix('@').unwrap_or(s);
            if digest.starts_with("sha256:") {
                let d = crate::digest::parse_sha256(digest)?;
                Descriptor::new(MediaType::ImageManifest, 0, d)
            } else {
                return Err(ExportError::ImageNotFound(s.to_owned()));
            }
        }
        many => {
            // Several names for one manifest are not an ambiguity.
            let first = many[0].digest();
            if many.iter().all(|d| d.digest() == first) {
                many[0].clone()
            } else {
                return Err(ExportError::AmbiguousImage(many.len()));
            }
        }
    };
    let names: Vec<String> = index
        .manifests()
        .iter()
        .filter(|d| d.digest() == chosen.digest())
        .filter_map(|d| {
            annotation(d, ANNOTATION_CONTAINERD_NAME)
                .or_else(|| annotation(d, ANNOTATION_REF_NAME))
                .map(str::to_owned)
        })
        .collect();
    let mut desc = chosen;
    if desc.size() == 0 {
        // Descriptor synthesized from a bare digest: learn the size from the blob itself.
        let digest_text = desc.digest().to_string();
        let not_found = || ExportError::ImageNotFound(digest_text.clone());
        let bytes = match files.read_small(&blob_path(desc.digest())?) {
            Err(ExportError::BlobNotFound(_)) => return Err(not_found()),
            other => other?,
        };
        desc.set_size(bytes.len() as u64);
        let probe: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_found())?;
        if probe.get("manifests").is_some() {
            desc.set_media_type(MediaType::ImageIndex);
        } else if probe.get("layers").is_none() {
            // A config or layer blob: not something a tag or digest can name.
            return Err(not_found());
        }
        if let Some(mt) = probe.get("mediaType").and_then(|v| v.as_str()) {
            desc.set_media_type(MediaType::from(mt));
        }
    }
    for _ in 0..4 {
        if !is_index(desc.media_type()) {
            return load_manifest(files, desc, names);
        }
        let bytes = read_verified(&files, &desc, "image index")?;
        let nested: ImageIndex = serde_json::from_slice(&bytes)?;
        let next = nested
            .manifests()
            .iter()
            .find(|d| {
                d.platform()
                    .as_ref()
                    .is_some_and(|p| platform_matches(p, want))
            })
            .cloned();
        desc = next.ok_or_else(|| {
            ExportError::PlatformNotFound(format!("{}/{}", want.os(), want.architecture()))
        })?;
    }
    Err(ExportError::InvalidImage(
        "image indexes nested too deep".into(),
    ))
}

fn load_manifest(files: Files, desc: Descriptor, names: Vec<String>) -> Result<LoadedImage> {
    let manifest_bytes = read_verified(&files, &desc, "manifest")?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)?;
    let config_bytes = read_verified(&files, manifest.config(), "config")?;
    let config = ImageConfig::from_json(&config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers().len() {
        return Err(ExportError::InvalidImage(format!(
            "{} layers but {} diff_ids",
            manifest.layers().len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let layer_paths = manifest
        .layers()
        .iter()
        .map(|l| blob_path(l.digest()))
        .collect::<Result<Vec<_>>>()?;
    let mut image = load_manifest_parts(
        files,
        manifest,
        manifest_bytes,
        config,
        config_bytes,
        names,
        layer_paths,
    );
    image
        .manifest_descriptor
        .set_media_type(desc.media_type().clone());
    Ok(image)
}

/// Puts a verified manifest and config together; the descriptor is that of `manifest_bytes`.
fn load_manifest_parts(
    files: Files,
    manifest: ImageManifest,
    manifest_bytes: Vec<u8>,
    config: ImageConfig,
    config_bytes: Vec<u8>,
    names: Vec<String>,
    layer_paths: Vec<String>,
) -> LoadedImage {
    let media_type = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest);
    let mut manifest_descriptor = Descriptor::new(
        media_type,
        manifest_bytes.len() as u64,
        sha256_digest(&manifest_bytes),
    );
    manifest_descriptor.set_platform(Some(config.platform()));
    LoadedImage {
        manifest_descriptor,
        manifest,
        manifest_bytes,
        config,
        config_bytes,
        names,
        files,
        layer_paths,
    }
}

/// OCI media type for a layer, docker types mapped to their OCI equivalent.
fn oci_layer_type(t: &MediaType) -> MediaType {
    match t.to_string().as_str() {
        crate::image::DOCKER_LAYER_GZIP => MediaType::ImageLayerGzip,
        crate::image::DOCKER_LAYER_TAR => MediaType::ImageLayer,
        _ => t.clone(),
    }
}

impl LoadedImage {
    /// Layer descriptors, base layer first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }

    /// A reader of layer `index`'s blob that fails at the end if the bytes are not the ones
    /// the manifest names. The check happens at end of stream: read it to EOF (as
    /// [`LoadedImage::copy_layers`] does) before trusting what was read.
    pub fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>> {
        let desc = self
            .layers()
            .get(index)
            .ok_or_else(|| ExportError::InvalidImage(format!("no layer {index}")))?;
        let (reader, _) = self.files.open(&self.layer_paths[index])?;
        Ok(Box::new(VerifyingReader::new(
            reader,
            format!("layer {index}"),
            desc.digest().clone(),
            desc.size(),
        )))
    }

    /// Copies every layer blob into `blob_dir` (named by digest hex), verified.
    pub fn copy_layers(&self, blob_dir: &Path) -> Result<Vec<LayerDescriptor>> {
        let mut out = Vec::new();
        for (i, desc) in self.layers().iter().enumerate() {
            let dest = blob_dir.join(sha256_hex(desc.digest())?);
            let mut file = AtomicFile::new(&dest)?;
            let mut reader = self.open_layer(i)?;
            std::io::copy(&mut reader, file.file()).map_err(|e| {
                match e.get_ref().map(|inner| inner.to_string()) {
                    Some(msg) if e.kind() == std::io::ErrorKind::InvalidData => {
                        ExportError::InvalidImage(msg)
                    }
                    _ => ExportError::Stream(e),
                }
            })?;
            file.commit()?;
            out.push(LayerDescriptor {
                media_type: oci_layer_type(desc.media_type()),
                digest: desc.digest().clone(),
                size: desc.size(),
                diff_id: self.config.rootfs.diff_ids[i].clone(),
                path: dest,
            });
        }
        Ok(out)
    }

    /// The image, its layers copied into `blob_dir`, ready for any output; the manifest and
    /// config bytes are kept as they were, so digests do not change.
    pub fn into_built_image(self, blob_dir: &Path) -> Result<BuiltImage> {
        let layers = self.copy_layers(blob_dir)?;
        let config_blob = Blob {
            descriptor: self.manifest.config().clone(),
            bytes: self.config_bytes,
        };
        let manifest_blob = Blob {
            descriptor: self.manifest_descriptor,
            bytes: self.manifest_bytes,
        };
        Ok(BuiltImage {
            config: self.config,
            config_blob,
            manifest: self.manifest,
            manifest_blob,
            layers,
        })
    }
}
