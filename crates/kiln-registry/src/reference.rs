//! Image references (`busybox`, `localhost:5000/app:1`, `host/repo@sha256:...`) with the
//! same normalisation as the docker CLI.

use std::fmt;

use crate::RegistryError;

/// The registry that names without a host refer to.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Host and optional port, `docker.io` for Docker Hub.
    pub registry: String,
    /// Path inside the registry, `library/busybox` for official Docker Hub images.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does: no host means Docker Hub,
    /// a single Hub path component gets `library/`, and no tag nor digest means `latest`.
    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidReference {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("the reference is empty"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace"));
        }
        let (name_and_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            validate_digest(d)
                .map_err(|_| bad("the digest must look like sha256:<64 lowercase hex digits>"))?;
        }
        // A tag can only follow the last path component; a colon before that is a port.
        let last_component_start = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_component_start..].rfind(':') {
            Some(i) => {
                let at = last_component_start + i;
                (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
            }
            None => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if let Some(t) = tag {
            validate_tag(t).map_err(|r| bad(&r))?;
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first.to_string(), rest.to_string()),
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        validate_host(&registry).map_err(|r| bad(&r))?;
        if registry == "index.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_repository(&repository).map_err(|r| bad(&r))?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad("the name is longer than 255 characters"));
        }
        let tag = match (tag, digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// The short form docker prints: Docker Hub's host and `library/` are left out.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d);
        }
        out
    }

    /// `registry/repository`, without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The familiar repository name without tag or digest (`busybox`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The same repository with this tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository and tag, pinned to this digest.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// Host (and port) the registry API is reached at.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What manifests are fetched by: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Reference, RegistryError> {
        Reference::parse(s)
    }
}

/// Checks a content digest as the registry APIs use it; only sha256 and sha512 are known.
pub fn validate_digest(d: &str) -> Result<(), RegistryError> {
    let invalid = || RegistryError::InvalidDigest {
        digest: d.to_string(),
    };
    let (algorithm, hex) = d.split_once(':').ok_or_else(invalid)?;
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(invalid()),
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid());
    }
    Ok(())
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn validate_host(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("registry host {host:?} has an unclosed '['"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "registry host {host:?} is not a valid IPv6 address"
            ));
        }
        (None, after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let ok = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!("registry host {host:?} is not a valid host name"));
        }
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(format!(
            "registry port {p:?} is not a number from 0 to 65535"
        ));
    }
    Ok(())
}

fn validate_repository(repo: &str) -> Result<(), String> {
    for component in repo.split('/') {
        if component.is_empty() {
            return Err("the repository path has an empty component".to_string());
        }
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("repository name {repo:?} must be lowercase"));
        }
        if !valid_path_component(component) {
            return Err(format!(
                "repository path component {component:?} may only hold a-z, 0-9 and single '.', '_', '__' or '-' runs between them"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+` separated by `.`, `_`, `__` or any run of `-`.
fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag as registries do: at most 128 letters, digits, `_`, `.` and `-`, not
/// starting with `.` or `-`; the error says what is wrong.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if tag.is_empty() {
        return Err("the tag after ':' is empty".to_string());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err("the tag is longer than 128 characters".to_string());
    }
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err(format!(
            "tag {tag:?} may only hold letters, digits, '_', '.' and '-' and must not start with '.' or '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(s).unwrap();
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(
            parts("busybox"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(parts("user/app:1").1, "user/app");
        assert_eq!(parts("docker.io/busybox:1").1, "library/busybox");
        assert_eq!(parts("index.docker.io/user/app").0, "docker.io");
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        assert_eq!(
            parts("localhost:5000/a/b:1"),
            (
                "localhost:5000".into(),
                "a/b".into(),
                Some("1".into()),
                None
            )
        );
        assert_eq!(
            parts(&format!("h.io/r@{D}")),
            ("h.io".into(), "r".into(), None, Some(D.into()))
        );
        assert_eq!(
            parts(&format!("h.io/r:t@{D}")),
            ("h.io".into(), "r".into(), Some("t".into()), Some(D.into()))
        );
        assert_eq!(parts("localhost/app").0, "localhost");
        assert_eq!(parts("[::1]:5000/app").0, "[::1]:5000");
        assert_eq!(parts("127.0.0.1:5000/app").1, "app");
    }

    #[test]
    fn name_is_registry_and_repository_without_tag_or_digest() {
        let n = |s: &str| Reference::parse(s).unwrap().name();
        assert_eq!(n("busybox"), "docker.io/library/busybox");
        assert_eq!(n("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(n(&format!("h.io/r:t@{D}")), "h.io/r");
    }

    #[test]
    fn familiar_form_matches_docker() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("user/app"), "user/app:latest");
        assert_eq!(f("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(f(&format!("h.io/r@{D}")), format!("h.io/r@{D}"));
        assert_eq!(
            Reference::parse("busybox").unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse(&format!("h.io/r:t@{D}")).unwrap();
        assert_eq!(r.with_tag("x").familiar(), "h.io/r:x");
        assert_eq!(r.with_tag("x").with_digest(D).manifest_ref(), D);
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            DOCKER_HUB_API
        );
        assert_eq!(
            Reference::parse("h.io:5000/r").unwrap().api_host(),
            "h.io:5000"
        );
    }

    #[test]
    fn bad_references_are_clear_errors() {
        for (input, needle) in [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("host.io/Repo", "lowercase"),
            ("a b", "whitespace"),
            ("busybox:", "tag after ':' is empty"),
            ("busybox:-x", "must not start"),
            ("busybox@sha256:abc", "digest"),
            ("busybox@md5:0123", "digest"),
            ("h.io:99999/app", "port"),
            ("h.io//app", "empty component"),
            ("h.io/a..b", "may only hold"),
            ("h.io/-a", "may only hold"),
            (":tag", "empty"),
        ] {
            let err = Reference::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
        let long = format!("h.io/{}", "a".repeat(300));
        assert!(Reference::parse(&long).is_err());
    }

    #[test]
    fn familiar_form_parses_back_and_odd_input_never_panics() {
        for s in [
            "busybox",
            "user/app:1",
            "h.io:5000/a/b:c",
            "localhost/x",
            "docker.io/library/a/b",
        ] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{s}");
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{s}");
        }
        for s in [
            "@",
            ":",
            "/",
            "//",
            "a@",
            "a@@b",
            "[",
            "[::1",
            "[zz]:1/a",
            "h:/a",
            "h.io:/a",
            "a/",
            "/a",
            "é",
            "a/é",
            "h.io:5000",
            "a:b:c",
            "A/b",
            "-/a",
            "h-.io/a",
            "a/b:c/d",
        ] {
            let _ = Reference::parse(s);
        }
    }

    #[test]
    fn digests_are_checked() {
        assert!(validate_digest(D).is_ok());
        assert!(validate_digest("sha256:ABC").is_err());
        assert!(validate_digest(&D.replace('a', "A")).is_err());
        assert!(validate_digest("sha1:00").is_err());
    }
}
