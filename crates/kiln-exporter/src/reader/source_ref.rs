//! The textual forms that point at images on disk: `oci-layout://PATH[:TAG][@DIGEST]`
//! build contexts and `os/arch[/variant]` platforms.

use std::path::PathBuf;

use oci_spec::image::{Arch, Os, Platform};

use crate::error::{ExportError, Result};

/// A `--build-context NAME=oci-layout://PATH[:TAG][@sha256:DIGEST]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciLayoutRef {
    pub path: PathBuf,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl OciLayoutRef {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || ExportError::InvalidReference(text.to_owned());
        let rest = text.strip_prefix("oci-layout://").ok_or_else(bad)?;
        let (rest, digest) = match rest.rsplit_once('@') {
            Some((r, d)) => {
                crate::digest::parse_sha256(d)?;
                (r, Some(d.to_owned()))
            }
            None => (rest, None),
        };
        // A ':' after the last '/' starts the tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        if path.is_empty() || tag.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(OciLayoutRef {
            path: PathBuf::from(path),
            tag,
            digest,
        })
    }

    /// What to pass to [`crate::load_image`] as the selector: the digest wins over the tag.
    pub fn selector(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }
}

/// Parses `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
pub fn parse_platform(text: &str) -> Result<Platform> {
    let parts: Vec<&str> = text.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(ExportError::InvalidReference(text.to_owned()));
    }
    let mut p = Platform::default();
    p.set_os(Os::from(parts[0]));
    p.set_architecture(Arch::from(parts[1]));
    if let Some(v) = parts.get(2) {
        p.set_variant(Some((*v).to_owned()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layout_refs() {
        let r = OciLayoutRef::parse("oci-layout:///srv/img:v1").unwrap();
        assert_eq!(r.path, PathBuf::from("/srv/img"));
        assert_eq!(r.selector(), Some("v1"));
        let d = format!("sha256:{}", "b".repeat(64));
        let r = OciLayoutRef::parse(&format!("oci-layout://./rel/dir@{d}")).unwrap();
        assert_eq!(r.path, PathBuf::from("./rel/dir"));
        assert_eq!(r.tag, None);
        assert_eq!(r.selector(), Some(d.as_str()));
        let r = OciLayoutRef::parse("oci-layout:///a:b/dir").unwrap();
        assert_eq!(r.path, PathBuf::from("/a:b/dir"));
        assert!(OciLayoutRef::parse("docker-image://x").is_err());
        assert!(OciLayoutRef::parse("oci-layout:///x:").is_err());
    }

    #[test]
    fn parses_platforms() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(p.architecture(), &Arch::ARM64);
        assert_eq!(p.variant().as_deref(), Some("v8"));
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//v7").is_err());
    }
}
