//! Manifests, indexes, pulling an image's metadata and listing tags.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LINK};
use serde::Deserialize;

use super::{Call, Client};
use crate::media::{self, Descriptor, Manifest, Platform, PulledImage, sha256_digest};
use crate::{Reference, RegistryError};

/// Manifests bigger than this are refused (containerd uses the same limit).
const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;
/// Image configs bigger than this are refused.
const MAX_CONFIG_SIZE: u64 = 64 * 1024 * 1024;

impl Client {
    /// Fetches a manifest or index by digest if the reference has one, else by tag.
    /// `None` when the registry does not have it.
    pub fn get_manifest(&self, r: &Reference) -> Result<Option<Manifest>, RegistryError> {
        let wanted = r.manifest_ref().to_string();
        let call = Call::pull(self, r, format!("fetching manifest {wanted}"));
        let url = self.repo_url(r, &format!("manifests/{wanted}"));
        let accept = media::MANIFEST_ACCEPT.join(", ");
        let reply = self.send_read(&call, &|http| http.get(&url).header(ACCEPT, &accept))?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(self.status_error(&call, reply.status, &reply.body));
        }
        let what = format!("{} manifest {wanted}", r.name());
        if reply.body.len() > MAX_MANIFEST_SIZE {
            return Err(RegistryError::InvalidManifest {
                what,
                reason: format!("it is larger than {MAX_MANIFEST_SIZE} bytes"),
            });
        }
        let digest = sha256_digest(&reply.body);
        if let Some(expected) = &r.digest
            && expected != &digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual: digest,
            });
        }
        let content_type = reply
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let media_type = media::sniff_manifest_media_type(content_type, &reply.body)
            .filter(|m| media::MANIFEST_ACCEPT.contains(&m.as_str()))
            .ok_or_else(|| RegistryError::UnsupportedMediaType {
                what: what.clone(),
                media_type: content_type.unwrap_or("none").to_string(),
            })?;
        Ok(Some(Manifest {
            media_type,
            bytes: reply.body,
            digest,
        }))
    }

    /// Resolves a reference to one image for a platform: its manifest and config, not
    /// its layers. Indexes and manifest lists pick the platform's entry.
    pub fn pull(&self, r: &Reference, platform: &Platform) -> Result<PulledImage, RegistryError> {
        let not_found = |r: &Reference| RegistryError::NotFound {
            reference: r.to_string(),
            what: "image".to_string(),
        };
        let top = self.get_manifest(r)?.ok_or_else(|| not_found(r))?;
        let (manifest, index_digest) = if top.is_index() {
            let index = top.index()?;
            let entry = pick_platform(&index.manifests, platform).ok_or_else(|| {
                RegistryError::NoMatchingPlatform {
                    reference: r.familiar(),
                    wanted: platform.to_string(),
                    available: index
                        .manifests
                        .iter()
                        .filter(|d| !is_attestation(d))
                        .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                        .collect(),
                }
            })?;
            let by_digest = r.with_digest(&entry.digest);
            let m = self
                .get_manifest(&by_digest)?
                .ok_or_else(|| not_found(&by_digest))?;
            (m, Some(top.digest.clone()))
        } else {
            (top, None)
        };
        let image = manifest.image()?;
        let config_bytes = self.fetch_blob_bytes(r, &image.config, MAX_CONFIG_SIZE)?;
        Ok(PulledImage {
            reference: r.with_digest(&manifest.digest),
            index_digest,
            config: image.config,
            layers: image.layers,
            config_bytes,
            manifest,
        })
    }

    /// Uploads a manifest under the reference's tag (or its digest when it has no tag)
    /// and returns the manifest's digest.
    pub fn push_manifest(
        &self,
        r: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(bytes);
        let target = match (&r.tag, &r.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) if d != &digest => {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest pushed as {r}"),
                    expected: d.clone(),
                    actual: digest,
                });
            }
            (None, _) => digest.clone(),
        };
        let call = Call::push(self, r, format!("pushing manifest {target}"));
        let url = self.repo_url(r, &format!("manifests/{target}"));
        let body = bytes.to_vec();
        let reply = self.send_read(&call, &|http| {
            http.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(body.clone())
        })?;
        if !reply.status.is_success() {
            return Err(self.status_error(&call, reply.status, &reply.body));
        }
        Ok(digest)
    }

    /// Every tag of the repository, following `Link` pagination. A repository the
    /// registry does not know has no tags.
    pub fn list_tags(&self, r: &Reference) -> Result<Vec<String>, RegistryError> {
        self.list_tags_paged(r, None)
    }

    /// Like `list_tags`, asking for `page_size` tags per request (`?n=`).
    pub fn list_tags_paged(
        &self,
        r: &Reference,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = self.resolve(r, &format!("{}/tags/list", r.repository))?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let call = Call::pull(self, r, format!("listing tags (page {pages})"));
            let reply = self.send_read(&call, &|http| http.get(url.clone()))?;
            if reply.status == StatusCode::NOT_FOUND && pages == 1 {
                return Ok(Vec::new());
            }
            if !reply.status.is_success() {
                return Err(self.status_error(&call, reply.status, &reply.body));
            }
            let page: TagList = serde_json::from_slice(&reply.body).map_err(|e| {
                RegistryError::InvalidManifest {
                    what: format!("{} tag list", r.name()),
                    reason: format!("not valid JSON: {e}"),
                }
            })?;
            tags.extend(page.tags.unwrap_or_default());
            let next = reply
                .headers
                .get_all(LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            match next {
                Some(target) => {
                    let next_url = self.resolve(r, &target)?;
                    if next_url == url || pages > 100_000 {
                        break;
                    }
                    url = next_url;
                }
                None => break,
            }
        }
        Ok(tags)
    }
}

/// The first index entry for the platform, skipping attestations.
fn pick_platform<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    manifests.iter().find(|d| {
        !is_attestation(d)
            && media::is_image_manifest(&d.media_type)
            && d.platform.as_ref().is_some_and(|p| p.satisfies(wanted))
    })
}

/// BuildKit stores provenance as index entries with platform unknown/unknown.
fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// The target of `<URL>; rel="next"` in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn platform_pick_skips_attestations() {
        let mut att = Descriptor::new(media::OCI_MANIFEST, "sha256:a", 1);
        att.platform = Some(Platform::new("unknown", "unknown", None));
        let mut amd = Descriptor::new(media::OCI_MANIFEST, "sha256:b", 1);
        amd.platform = Some(Platform::new("linux", "amd64", None));
        let mut arm = Descriptor::new(media::OCI_MANIFEST, "sha256:c", 1);
        arm.platform = Some(Platform::new("linux", "arm64", None));
        let list = [att, amd, arm];
        assert_eq!(
            pick_platform(&list, &Platform::parse("linux/arm64/v8").unwrap())
                .unwrap()
                .digest,
            "sha256:c"
        );
        assert_eq!(
            pick_platform(&list, &Platform::parse("linux/amd64").unwrap())
                .unwrap()
                .digest,
            "sha256:b"
        );
        assert!(pick_platform(&list, &Platform::parse("linux/s390x").unwrap()).is_none());
    }
}
