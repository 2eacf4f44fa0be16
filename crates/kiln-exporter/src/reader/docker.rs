//! Docker archives (`docker save`): `manifest.json` names the config and layer files, and
//! carries no digests of its own, so they are computed here and checked against what the
//! file names and the config's diff_ids promise.

use std::io::Read;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::blobs::Files;
use super::{LoadedImage, load_manifest_parts};
use crate::config::ImageConfig;
use crate::digest::{check_blob, digest_from_hasher, sha256_digest};
use crate::error::{ExportError, Result};
use crate::json::manifest_json;
use crate::reference::ImageName;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Option<Vec<String>>,
}

/// The hex a path names by convention: `blobs/sha256/<hex>`, `<hex>.json`, `<hex>/layer.tar`
/// is not one (legacy layer ids are not content digests).
fn named_hex(path: &str) -> Option<&str> {
    let hex = path
        .strip_prefix("blobs/sha256/")
        .or_else(|| path.strip_suffix(".json"))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

fn tag_matches(tags: &[String], selector: &str) -> bool {
    let wanted = ImageName::parse(selector).ok();
    tags.iter()
        .any(|t| t == selector || (wanted.is_some() && ImageName::parse(t).ok() == wanted))
}

pub(super) fn load(files: Files, selector: Option<&str>) -> Result<LoadedImage> {
    let entries: Vec<Entry> = serde_json::from_slice(&files.read_small("manifest.json")?)?;
    let mut configs = Vec::new();
    for e in &entries {
        let bytes = files.read_small(&e.config)?;
        configs.push((sha256_digest(&bytes), bytes));
    }
    let matching: Vec<usize> = (0..entries.len())
        .filter(|&i| match selector {
            None => true,
            Some(s) => {
                let digest = s.strip_prefix('@').unwrap_or(s);
                configs[i].0.as_ref() == digest
                    || tag_matches(entries[i].repo_tags.as_deref().unwrap_or(&[]), s)
            }
        })
        .collect();
    let i = match matching.as_slice() {
        [i] => *i,
        [] => {
            return Err(ExportError::ImageNotFound(
                selector.unwrap_or("").to_owned(),
            ));
        }
        many => return Err(ExportError::AmbiguousImage(many.len())),
    };
    let entry = &entries[i];
    let (config_digest, config_bytes) = configs.swap_remove(i);
    if let Some(hex) = named_hex(&entry.config) {
        let expected = crate::digest::parse_sha256(&format!("sha256:{hex}"))?;
        let size = config_bytes.len() as u64;
        check_blob("config", &expected, size, &config_digest, size)?;
    }
    let config = ImageConfig::from_json(&config_bytes)?;
    let layer_paths = entry.layers.clone().unwrap_or_default();
    if layer_paths.len() != config.rootfs.diff_ids.len() {
        return Err(ExportError::InvalidImage(format!(
            "{} layers but {} diff_ids",
            layer_paths.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (n, path) in layer_paths.iter().enumerate() {
        let (mut reader, _) = files.open(path)?;
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let k = reader.read(&mut buf)?;
            if k == 0 {
                break;
            }
            if head.len() < 4 {
                head.extend_from_slice(&buf[..k.min(4 - head.len())]);
            }
            hasher.update(&buf[..k]);
            size += k as u64;
        }
        let digest = digest_from_hasher(hasher);
        let media_type = if head.starts_with(&[0x1f, 0x8b]) {
            MediaType::ImageLayerGzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            MediaType::ImageLayerZstd
        } else {
            MediaType::ImageLayer
        };
        let expected = match named_hex(path) {
            Some(hex) => Some(crate::digest::parse_sha256(&format!("sha256:{hex}"))?),
            None if media_type == MediaType::ImageLayer => Some(config.rootfs.diff_ids[n].clone()),
            None => None,
        };
        if let Some(expected) = expected {
            check_blob(&format!("layer {path}"), &expected, size, &digest, size)?;
        }
        layers.push(Descriptor::new(media_type, size, digest));
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            config_digest,
        ))
        .layers(layers)
        .build()?;
    let manifest_bytes = manifest_json(&manifest)?;
    let names = entry.repo_tags.clone().unwrap_or_default();
    Ok(load_manifest_parts(
        files,
        manifest,
        manifest_bytes,
        config,
        config_bytes,
        names,
        layer_paths,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digest_shaped_names_are_trusted_as_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            named_hex(&format!("blobs/sha256/{hex}")),
            Some(hex.as_str())
        );
        assert_eq!(named_hex(&format!("{hex}.json")), Some(hex.as_str()));
        assert_eq!(named_hex(&format!("{hex}/layer.tar")), None);
        assert_eq!(named_hex("blobs/sha256/../../x"), None);
    }
}
