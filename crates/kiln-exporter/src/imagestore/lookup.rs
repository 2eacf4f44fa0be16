//! Finding images the ways docker users name them: a name (`busybox`, `busybox:1`), an
//! image ID or a prefix of one (`3f57d9401f8d`, `sha256:3f57...`), a manifest digest, or
//! `name@sha256:<manifest>`. Names win over IDs, as in docker.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_store::{Digest, ImageRecord, Store};
use serde::Serialize;

use super::error::{ImageStoreError, Result};
use super::names::{display_parts, is_dangling, normalize_name};
use super::{StoredImage, read_image};
use crate::reference::ImageName;

/// One row of `kiln images`: one name of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// The name as stored (`docker.io/library/busybox:latest`, or a dangling placeholder).
    pub name: String,
    /// Short repository (`busybox`), `<none>` for a dangling image.
    pub repository: String,
    pub tag: String,
    pub manifest: String,
    /// The image ID: the config digest.
    pub id: String,
    /// When the image was created (its config's `created`, else when it was named), ms
    /// since the Unix epoch.
    pub created_ms: i64,
    /// Bytes the image's blobs take in the store.
    pub size: u64,
}

/// What a reference matched.
enum Found {
    /// One stored name.
    Name(ImageRecord),
    /// An image ID or digest: every manifest with that config.
    Id(BTreeSet<Digest>),
}

/// Config digests of manifests, read once per call.
struct ConfigCache<'a> {
    store: &'a Store,
    configs: HashMap<Digest, Digest>,
}

impl ConfigCache<'_> {
    /// `None` for a damaged image: it cannot be matched by ID, but must not hide the others.
    fn config_of(&mut self, manifest: &Digest) -> Result<Option<Digest>> {
        if let Some(c) = self.configs.get(manifest) {
            return Ok(Some(c.clone()));
        }
        let Some(image) = readable(read_image(self.store, manifest))? else {
            return Ok(None);
        };
        self.configs
            .insert(manifest.clone(), image.config_digest.clone());
        Ok(Some(image.config_digest))
    }
}

/// Separates a damaged image (`Ok(None)`) from a failing store (`Err`).
fn readable(result: Result<StoredImage>) -> Result<Option<StoredImage>> {
    match result {
        Ok(image) => Ok(Some(image)),
        Err(ImageStoreError::Corrupt { .. })
        | Err(ImageStoreError::Store(kiln_store::Error::BlobNotFound(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The hex of a reference that can only be an ID or digest (prefix).
fn id_hex(reference: &str) -> Option<&str> {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let ok = !hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

fn find(store: &Store, reference: &str) -> Result<Found> {
    if let Ok(name) = normalize_name(reference)
        && let Some(record) = store.resolve(&name)?
    {
        return Ok(Found::Name(record));
    }
    // Names tagged verbatim (and dangling placeholders) are looked up as typed.
    if let Some(record) = store.resolve(reference)? {
        return Ok(Found::Name(record));
    }
    let records = store.list_images()?;
    if let Ok(parsed) = ImageName::parse(reference)
        && let Some(pin) = &parsed.digest
    {
        let pin = Digest::parse(pin)?;
        let known = records.iter().any(|r| {
            r.manifest == pin
                && ImageName::parse(&r.name).is_ok_and(|n| n.repository == parsed.repository)
        });
        return if known {
            Ok(Found::Id(BTreeSet::from([pin])))
        } else {
            Err(ImageStoreError::NotFound(reference.to_owned()))
        };
    }
    let Some(hex) = id_hex(reference) else {
        return Err(ImageStoreError::NotFound(reference.to_owned()));
    };
    let mut cache = ConfigCache {
        store,
        configs: HashMap::new(),
    };
    let mut by_config: BTreeMap<Digest, BTreeSet<Digest>> = BTreeMap::new();
    for record in &records {
        let Some(config) = cache.config_of(&record.manifest)? else {
            continue;
        };
        if config.hex().starts_with(hex) || record.manifest.hex() == hex {
            by_config
                .entry(config)
                .or_default()
                .insert(record.manifest.clone());
        }
    }
    match by_config.len() {
        0 => Err(ImageStoreError::NotFound(reference.to_owned())),
        1 => Ok(Found::Id(
            by_config.into_values().next().unwrap_or_default(),
        )),
        count => Err(ImageStoreError::Ambiguous {
            reference: reference.to_owned(),
            count,
        }),
    }
}

/// The manifest digest `reference` names, without reading the image: for checks that
/// only ask whether a name still means the same image.
pub fn manifest_of(store: &Store, reference: &str) -> Result<Digest> {
    match find(store, reference)? {
        Found::Name(record) => Ok(record.manifest),
        Found::Id(manifests) => manifests
            .into_iter()
            .next()
            .ok_or_else(|| ImageStoreError::NotFound(reference.to_owned())),
    }
}

/// Opens the image stored under `manifest` (without its names): one image's blobs read,
/// where [`open`] with a digest may look through every image for a matching ID.
pub fn open_manifest(store: &Store, manifest: &Digest) -> Result<StoredImage> {
    read_image(store, manifest)
}

/// Opens the image `reference` names (a name, an ID or ID prefix, a digest).
pub fn open(store: &Store, reference: &str) -> Result<StoredImage> {
    let manifest = match find(store, reference)? {
        Found::Name(record) => record.manifest,
        Found::Id(manifests) => manifests
            .into_iter()
            .next()
            .ok_or_else(|| ImageStoreError::NotFound(reference.to_owned()))?,
    };
    let mut image = read_image(store, &manifest)?;
    image.names = store
        .list_images()?
        .into_iter()
        .filter(|r| r.manifest == manifest && !is_dangling(&r.name))
        .map(|r| r.name)
        .collect();
    Ok(image)
}

/// Every name in the store, newest image first. A damaged image is listed with an empty
/// `id` and size 0, so that it can be seen and removed by name.
pub fn list(store: &Store) -> Result<Vec<ImageSummary>> {
    let mut images: HashMap<Digest, Option<StoredImage>> = HashMap::new();
    let mut out = Vec::new();
    for record in store.list_images()? {
        if !images.contains_key(&record.manifest) {
            let image = readable(read_image(store, &record.manifest))?;
            images.insert(record.manifest.clone(), image);
        }
        let image = images[&record.manifest].as_ref();
        let created_ms = image
            .and_then(|i| i.config.created)
            .map_or(record.created_ms, |t| {
                t.secs.saturating_mul(1000) + i64::from(t.nanos / 1_000_000)
            });
        let (repository, tag) = display_parts(&record.name);
        out.push(ImageSummary {
            repository,
            tag,
            manifest: record.manifest.to_string(),
            id: image.map_or_else(String::new, |i| i.config_digest.to_string()),
            created_ms,
            size: image.map_or(0, StoredImage::size),
            name: record.name,
        });
    }
    out.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// Removes what `reference` names and returns the stored names removed. A name removes
/// only itself; an ID removes every name of the image, which takes `force` when there are
/// several. Blobs stay until garbage collection.
pub fn remove(store: &Store, reference: &str, force: bool) -> Result<Vec<String>> {
    match find(store, reference)? {
        Found::Name(record) => {
            store.remove_image(&record.name)?;
            Ok(vec![record.name])
        }
        Found::Id(manifests) => {
            let names: Vec<String> = store
                .list_images()?
                .into_iter()
                .filter(|r| manifests.contains(&r.manifest))
                .map(|r| r.name)
                .collect();
            let named: Vec<&String> = names.iter().filter(|n| !is_dangling(n)).collect();
            if named.len() > 1 && !force {
                return Err(ImageStoreError::Conflict {
                    reference: reference.to_owned(),
                    count: named.len(),
                    names: named
                        .iter()
                        .map(|n| super::familiar_name(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            for name in &names {
                store.remove_image(name)?;
            }
            Ok(names)
        }
    }
}
