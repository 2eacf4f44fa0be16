//! Names in the image store. They are stored fully qualified
//! (`docker.io/library/busybox:latest`) so that `busybox` and `docker.io/library/busybox`
//! are one image, and shown the short way docker shows them (`busybox`, `latest`).
//!
//! An image that arrives without a name (an OCI archive whose only ref is a bare tag, an
//! unnamed `import`) is kept under a dangling name, `@sha256:<manifest hex>`: parsed names
//! never start with `@`, so the two can never collide.

use kiln_store::Digest;

use super::error::{ImageStoreError, Result};
use crate::reference::ImageName;

const DANGLING_PREFIX: &str = "@";

/// What listings print for the repository and tag of a dangling image.
pub const NONE: &str = "<none>";

/// The stored form of a name a user typed: `busybox` → `docker.io/library/busybox:latest`.
/// Digest-pinned names cannot be tags.
pub fn normalize_name(text: &str) -> Result<String> {
    let parsed = ImageName::parse(text).map_err(|_| ImageStoreError::InvalidName {
        name: text.to_owned(),
        reason: "not a valid image reference",
    })?;
    if parsed.digest.is_some() {
        return Err(ImageStoreError::InvalidName {
            name: text.to_owned(),
            reason: "a digest reference cannot be used as a tag",
        });
    }
    Ok(parsed.to_string())
}

/// The placeholder name under which an image with no name is kept.
pub fn dangling_name(manifest: &Digest) -> String {
    format!("{DANGLING_PREFIX}{manifest}")
}

pub fn is_dangling(stored: &str) -> bool {
    stored.starts_with(DANGLING_PREFIX)
}

/// Repository and tag of a stored name in docker's short form; `<none>` for dangling ones.
/// Names tagged by other means than [`normalize_name`] are split at their last `:` after
/// the last `/`.
pub fn display_parts(stored: &str) -> (String, String) {
    if is_dangling(stored) {
        return (NONE.to_owned(), NONE.to_owned());
    }
    if let Ok(name) = ImageName::parse(stored)
        && name.digest.is_none()
    {
        return (name.familiar_repository(), name.tag);
    }
    let after_slash = stored.rfind('/').map_or(0, |i| i + 1);
    match stored[after_slash..].rfind(':') {
        Some(i) => (
            stored[..after_slash + i].to_owned(),
            stored[after_slash + i + 1..].to_owned(),
        ),
        None => (stored.to_owned(), NONE.to_owned()),
    }
}

/// `repository:tag` in short form (`busybox:latest`), as `docker load` and `rmi` print it.
pub fn familiar_name(stored: &str) -> String {
    let (repo, tag) = display_parts(stored);
    format!("{repo}:{tag}")
}

/// Whether a name recorded inside an archive names an image, rather than being only a tag
/// (`org.opencontainers.image.ref.name` is often just `latest` or `v1`).
pub(crate) fn is_full_reference(recorded: &str) -> bool {
    recorded.contains(':') || recorded.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_shows_short_names() {
        let full = normalize_name("busybox").unwrap();
        assert_eq!(full, "docker.io/library/busybox:latest");
        assert_eq!(
            display_parts(&full),
            ("busybox".to_owned(), "latest".to_owned())
        );
        assert_eq!(
            familiar_name(&normalize_name("ghcr.io/o/app:1.2").unwrap()),
            "ghcr.io/o/app:1.2"
        );
        assert_eq!(familiar_name("docker.io/me/app:v1"), "me/app:v1");
    }

    #[test]
    fn refuses_bad_and_pinned_names() {
        assert!(normalize_name("Busybox").is_err());
        let pinned = format!("busybox@sha256:{}", "a".repeat(64));
        assert!(matches!(
            normalize_name(&pinned),
            Err(ImageStoreError::InvalidName { .. })
        ));
    }

    #[test]
    fn dangling_names_are_not_image_names() {
        let d = Digest::of_bytes(b"m");
        let name = dangling_name(&d);
        assert!(is_dangling(&name));
        assert!(ImageName::parse(&name).is_err());
        assert_eq!(display_parts(&name), (NONE.to_owned(), NONE.to_owned()));
        assert!(!is_dangling("docker.io/library/busybox:latest"));
    }

    #[test]
    fn bare_tags_are_not_full_references() {
        assert!(!is_full_reference("latest"));
        assert!(is_full_reference("busybox:1"));
        assert!(is_full_reference("docker.io/library/busybox"));
    }
}
