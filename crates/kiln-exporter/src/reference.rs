//! Image names as users type them (`alpine`, `ghcr.io/o/r:1.2`), normalized the way Docker
//! does: a missing registry is `docker.io`, a one-part Docker Hub path gets `library/`.

use std::fmt;

use crate::error::{ExportError, Result};

const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed image name: a repository and a tag (a digest pin is kept but not required).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    /// Fully qualified repository, e.g. `docker.io/library/alpine`.
    pub repository: String,
    /// The tag; `latest` when the user gave none.
    pub tag: String,
    /// An `@sha256:...` pin, if given.
    pub digest: Option<String>,
}

fn valid_path_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl ImageName {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || ExportError::InvalidReference(text.to_owned());
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                crate::digest::parse_sha256(d).map_err(|_| bad())?;
                (r, Some(d.to_owned()))
            }
            None => (text, None),
        };
        // A ':' after the last '/' separates the tag; one before it is a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad());
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let has_registry = parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
        let registry = if has_registry {
            let r = parts.remove(0);
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            {
                return Err(bad());
            }
            r
        } else {
            DEFAULT_REGISTRY
        };
        if parts.is_empty() || !parts.iter().all(|c| valid_path_component(c)) {
            return Err(bad());
        }
        if registry == DEFAULT_REGISTRY && parts.len() == 1 {
            parts.insert(0, "library");
        }
        Ok(ImageName {
            repository: format!("{registry}/{}", parts.join("/")),
            tag: tag.unwrap_or("latest").to_owned(),
            digest,
        })
    }

    /// `docker.io/library/alpine:3` → `alpine:3`, the form `docker save` writes in RepoTags.
    pub fn familiar(&self) -> String {
        let repo = self
            .repository
            .strip_prefix("docker.io/library/")
            .or_else(|| self.repository.strip_prefix("docker.io/"))
            .unwrap_or(&self.repository);
        format!("{repo}:{}", self.tag)
    }

    /// Repository in familiar form, without the tag (the key of a `repositories` file).
    pub fn familiar_repository(&self) -> String {
        let full = self.familiar();
        full[..full.len() - self.tag.len() - 1].to_owned()
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let n = ImageName::parse("alpine").unwrap();
        assert_eq!(n.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(n.familiar(), "alpine:latest");
        let n = ImageName::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(n.repository, "localhost:5000/team/app");
        assert_eq!(n.tag, "v1");
        assert_eq!(n.familiar(), "localhost:5000/team/app:v1");
        assert_eq!(
            ImageName::parse("me/app:2").unwrap().familiar_repository(),
            "me/app"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "UPPER",
            "a/../b",
            "app:",
            "app:bad tag",
            "x@sha256:12",
            "/x",
        ] {
            assert!(ImageName::parse(bad).is_err(), "{bad}");
        }
    }
}
