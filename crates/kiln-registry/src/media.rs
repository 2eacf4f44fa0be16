//! OCI and Docker schema 2 document types: descriptors, platforms, manifests and indexes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Reference, RegistryError};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Every manifest kind kiln understands, best first, for the `Accept` header.
pub const MANIFEST_ACCEPT: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    /// A descriptor for these bytes.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, &sha256_digest(bytes), bytes.len() as u64)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
        }
    }

    /// Parses `os/arch[/variant]` (`linux/amd64`, `linux/arm64/v8`).
    pub fn parse(s: &str) -> Result<Platform, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidPlatform {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("it needs two or three '/'-separated parts"));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("a part is empty"));
        }
        if parts.iter().any(|p| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        }) {
            return Err(bad("parts may only hold letters, digits, '_', '.' and '-'"));
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        Ok(Platform::new(
            &lower[0],
            &lower[1],
            lower.get(2).map(String::as_str),
        ))
    }

    /// The platform of the machine kiln runs on, in OCI terms.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Whether an image built for `self` satisfies a request for `wanted`. A request
    /// without variant takes any variant; arm64 without variant means v8.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os || self.architecture != wanted.architecture {
            return false;
        }
        match &wanted.variant {
            None => true,
            Some(w) => self.normalised_variant().as_deref() == Some(w.as_str()),
        }
    }

    /// Entries without a variant mean the architecture's usual one.
    fn normalised_variant(&self) -> Option<String> {
        match (&self.variant, self.architecture.as_str()) {
            (None, "arm64") => Some("v8".to_string()),
            (None, "arm") => Some("v7".to_string()),
            (v, _) => v.clone(),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest or index as the registry served it: the exact bytes and their digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }

    /// Parses an image manifest (OCI or Docker schema 2).
    pub fn image(&self) -> Result<ImageManifest, RegistryError> {
        if !is_image_manifest(&self.media_type) {
            return Err(RegistryError::UnsupportedMediaType {
                what: format!("manifest {}", self.digest),
                media_type: self.media_type.clone(),
            });
        }
        serde_json::from_slice(&self.bytes).map_err(|e| RegistryError::InvalidManifest {
            what: format!("manifest {}", self.digest),
            reason: e.to_string(),
        })
    }

    /// Parses an index or Docker manifest list.
    pub fn index(&self) -> Result<ImageIndex, RegistryError> {
        if !self.is_index() {
            return Err(RegistryError::UnsupportedMediaType {
                what: format!("index {}", self.digest),
                media_type: self.media_type.clone(),
            });
        }
        serde_json::from_slice(&self.bytes).map_err(|e| RegistryError::InvalidManifest {
            what: format!("index {}", self.digest),
            reason: e.to_string(),
        })
    }
}

/// Works out a manifest's media type when the server's `Content-Type` is missing or generic:
/// from its `mediaType` field, else from its shape (OCI allows leaving the field out).
pub fn sniff_manifest_media_type(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| MANIFEST_ACCEPT.contains(&c.as_str()));
    if declared.is_some() {
        return declared;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = value.get("mediaType").and_then(|m| m.as_str()) {
        return Some(mt.to_string());
    }
    if value.get("manifests").is_some() {
        Some(OCI_INDEX.to_string())
    } else if value.get("config").is_some() {
        Some(OCI_MANIFEST.to_string())
    } else {
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What `Client::pull` resolves: the platform's manifest and config, not the layers.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// The reference pulled, with `digest` set to the image manifest's digest.
    pub reference: Reference,
    /// Digest of the index or manifest list the image was picked from, if any.
    pub index_digest: Option<String>,
    pub manifest: Manifest,
    pub config: Descriptor,
    pub config_bytes: Vec<u8>,
    pub layers: Vec<Descriptor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::new("linux", "arm64", None).satisfies(&p));
        assert!(!Platform::new("linux", "arm", Some("v7")).satisfies(&p));
        let armv7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(Platform::new("linux", "arm", None).satisfies(&armv7));
        assert!(!Platform::new("linux", "arm", Some("v6")).satisfies(&armv7));
        assert!(
            Platform::new("linux", "arm", Some("v7"))
                .satisfies(&Platform::parse("linux/arm").unwrap())
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert!(
            Platform::parse("a/b/c/d")
                .unwrap_err()
                .to_string()
                .contains("os/arch")
        );
        assert_eq!(
            Platform::parse("Linux/AMD64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn descriptors_use_oci_field_names() {
        let mut d = Descriptor::for_bytes(OCI_CONFIG, b"{}");
        d.platform = Some(Platform::new("linux", "amd64", None));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["mediaType"], OCI_CONFIG);
        assert_eq!(json["size"], 2);
        assert_eq!(json["platform"]["architecture"], "amd64");
        assert!(json.get("annotations").is_none());
        let back: Descriptor = serde_json::from_value(json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn media_type_is_sniffed_when_not_declared() {
        assert_eq!(
            sniff_manifest_media_type(
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                b""
            )
            .as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(
            sniff_manifest_media_type(Some("application/json"), br#"{"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            sniff_manifest_media_type(None, br#"{"mediaType":"x","config":{}}"#).as_deref(),
            Some("x")
        );
        assert_eq!(sniff_manifest_media_type(None, b"not json"), None);
    }
}
