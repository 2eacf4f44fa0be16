//! Deterministic JSON for configs, manifests and indexes: fixed key order (that of the Go
//! structs other tools marshal, maps sorted) and Go's default HTML-safe string escaping, so
//! the bytes, and therefore the digests, never depend on hash-map iteration order.

use std::collections::{BTreeMap, HashMap};
use std::io;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, Platform};
use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use crate::error::Result;

/// Escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u00XX` the way Go's encoding/json does.
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        CompactFormatter.write_char_escape(writer, char_escape)
    }
}

/// Serializes compactly with Go-compatible escaping.
pub(crate) fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

fn sorted(map: &Option<HashMap<String, String>>) -> BTreeMap<&str, &str> {
    map.iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[derive(Serialize)]
struct PlatformOut<'a> {
    architecture: String,
    os: String,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(rename = "os.features", skip_serializing_if = "Option::is_none")]
    os_features: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

impl<'a> PlatformOut<'a> {
    fn of(p: &'a Platform) -> Self {
        PlatformOut {
            architecture: p.architecture().to_string(),
            os: p.os().to_string(),
            os_version: p.os_version().as_deref(),
            os_features: p.os_features().as_deref(),
            variant: p.variant().as_deref(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorOut<'a> {
    media_type: String,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<&'a [String]>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
}

impl<'a> DescriptorOut<'a> {
    fn of(d: &'a Descriptor) -> Self {
        DescriptorOut {
            media_type: d.media_type().to_string(),
            digest: d.digest().as_ref(),
            size: d.size(),
            urls: d.urls().as_deref(),
            annotations: sorted(d.annotations()),
            platform: d.platform().as_ref().map(PlatformOut::of),
            artifact_type: d.artifact_type().as_ref().map(|m| m.to_string()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestOut<'a> {
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    config: DescriptorOut<'a>,
    layers: Vec<DescriptorOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<DescriptorOut<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexOut<'a> {
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    manifests: Vec<DescriptorOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<DescriptorOut<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, &'a str>,
}

/// The canonical bytes of a manifest.
pub fn manifest_json(m: &ImageManifest) -> Result<Vec<u8>> {
    to_go_json(&ManifestOut {
        schema_version: m.schema_version(),
        media_type: m.media_type().as_ref().map(|t| t.to_string()),
        artifact_type: m.artifact_type().as_ref().map(|t| t.to_string()),
        config: DescriptorOut::of(m.config()),
        layers: m.layers().iter().map(DescriptorOut::of).collect(),
        subject: m.subject().as_ref().map(DescriptorOut::of),
        annotations: sorted(m.annotations()),
    })
}

/// The canonical bytes of an image index (also an OCI layout's `index.json`).
pub fn index_json(i: &ImageIndex) -> Result<Vec<u8>> {
    to_go_json(&IndexOut {
        schema_version: i.schema_version(),
        media_type: i.media_type().as_ref().map(|t| t.to_string()),
        artifact_type: i.artifact_type().as_ref().map(|t| t.to_string()),
        manifests: i.manifests().iter().map(DescriptorOut::of).collect(),
        subject: i.subject().as_ref().map(DescriptorOut::of),
        annotations: sorted(i.annotations()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    #[test]
    fn escapes_like_go() {
        let out = to_go_json(&"a && b <c> \u{2028}\"\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a \u0026\u0026 b \u003cc\u003e \u2028\"\n""#
        );
    }

    #[test]
    fn annotations_are_sorted_whatever_the_map_order() {
        let mut d = Descriptor::new(
            MediaType::ImageManifest,
            3,
            crate::digest::sha256_digest(b"abc"),
        );
        let ann: HashMap<String, String> = (0..20)
            .map(|i| (format!("k{i:02}"), i.to_string()))
            .collect();
        d.set_annotations(Some(ann));
        let text = String::from_utf8(to_go_json(&DescriptorOut::of(&d)).unwrap()).unwrap();
        assert!(text.starts_with(
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:"#
        ));
        let k00 = text.find("k00").unwrap();
        let k19 = text.find("k19").unwrap();
        assert!(k00 < k19);
    }
}
