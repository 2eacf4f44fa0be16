//! kiln's image store seen by lowering (configs) and by the engine (layers): images are
//! looked up by name or digest; `oci-layout://` references are imported first; references
//! the store does not have (or every one under `--pull`) are resolved in their registry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kiln_exporter::imagestore::{self, StoredImage};
use kiln_exporter::{OciLayoutRef, load_image, parse_platform};
use kiln_graph::lower::{HistoryEntry, ImageResolver, ImageState, ResolvedImage, RuntimeConfig};
use kiln_store::Store;

use super::pull::RegistryPulls;
use crate::engine::{BlobLocation, ImageLayer, ImageLayers};

pub struct StoreImages {
    store: Arc<Store>,
    opened: Mutex<HashMap<String, Arc<StoredImage>>>,
    /// Every reference resolved, with the manifest digest it resolved to.
    resolved: Mutex<Vec<(String, String)>>,
    registry: Option<RegistryPulls>,
}

impl StoreImages {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            opened: Mutex::new(HashMap::new()),
            resolved: Mutex::new(Vec::new()),
            registry: None,
        }
    }

    /// Resolves references the store does not have in their registries (all of them when
    /// `pull` is set, as `--pull` does).
    pub fn with_registry(
        mut self,
        options: Result<kiln_registry::ClientOptions, String>,
        pull: bool,
    ) -> Self {
        self.registry = Some(RegistryPulls::new(options, pull));
        self
    }

    /// The registry client, made on first use; `None` when this build has no registry
    /// access.
    pub fn registry(&self) -> Option<Result<&kiln_registry::Client, String>> {
        self.registry.as_ref().map(RegistryPulls::client)
    }

    /// Whether `--pull` asked for fresh registry lookups.
    pub fn pulls_always(&self) -> bool {
        self.registry.as_ref().is_some_and(RegistryPulls::always)
    }

    /// Looks `reference` up in its registry (or the store's memory of that lookup) and
    /// opens the image it names, whose layers may not be fetched yet.
    fn resolve_in_registry(
        &self,
        registry: &RegistryPulls,
        reference: &str,
        platform: &str,
    ) -> Result<(String, Arc<StoredImage>), String> {
        let (manifest, stored) = registry.resolve(&self.store, reference, platform)?;
        let key = manifest.to_string();
        let stored = Arc::new(stored);
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), stored.clone());
        Ok((key, stored))
    }

    fn open(&self, key: &str) -> Result<Arc<StoredImage>, String> {
        if let Some(found) = self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(found.clone());
        }
        let stored = Arc::new(imagestore::open(&self.store, key).map_err(|e| e.to_string())?);
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), stored.clone());
        Ok(stored)
    }

    /// The references resolved so far and their manifest digests.
    pub fn resolutions(&self) -> Vec<(String, String)> {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Repositories the images resolved so far were pulled from: pushes mount their
    /// layers from there instead of uploading them.
    pub fn pulled_sources(&self) -> Vec<kiln_registry::Reference> {
        let mut out: Vec<kiln_registry::Reference> = Vec::new();
        for (_, digest) in self.resolutions() {
            let Ok(digest) = kiln_store::Digest::parse(&digest) else {
                continue;
            };
            if let Ok(Some(repository)) = self.store.pulled_repository(&digest)
                && let Ok(reference) = kiln_registry::Reference::parse(&repository)
                && !out.contains(&reference)
            {
                out.push(reference);
            }
        }
        out
    }

    /// Imports the image an `oci-layout://` reference names and returns its manifest digest.
    fn import_layout(&self, reference: &str, platform: &str) -> Result<String, String> {
        let layout = OciLayoutRef::parse(reference).map_err(|e| e.to_string())?;
        let platform = parse_platform(platform).map_err(|e| e.to_string())?;
        let loaded = load_image(&layout.path, layout.selector(), Some(&platform))
            .map_err(|e| format!("{reference}: {e}"))?;
        // Layers go straight to their content address in the store: nothing to clean up.
        let built = loaded
            .into_built_image(&self.store.blobs_dir())
            .map_err(|e| e.to_string())?;
        let digest = imagestore::save(&self.store, &built, &[]).map_err(|e| e.to_string())?;
        Ok(digest.to_string())
    }
}

impl ImageResolver for StoreImages {
    fn resolve_image(&self, reference: &str, platform: &str) -> Result<ResolvedImage, String> {
        let (key, shown) = if reference.starts_with("oci-layout://") {
            (
                self.import_layout(reference, platform)?,
                reference.to_string(),
            )
        } else {
            (reference.to_string(), String::new())
        };
        let local = if shown.is_empty() && self.pulls_always() {
            Err("--pull looks every image up in its registry".to_string())
        } else {
            self.open(&key)
        };
        let stored = match (local, &self.registry) {
            (Ok(stored), _) => stored,
            (Err(e), Some(registry)) if shown.is_empty() => {
                match self.resolve_in_registry(registry, reference, platform) {
                    Ok((_, stored)) => stored,
                    Err(pull_error) if self.pulls_always() && self.open(&key).is_ok() => {
                        return Err(format!(
                            "image {reference:?} could not be pulled (--pull looks every image up in its registry): \
                             {pull_error}; kiln's store has an image of that name: build without --pull to use it"
                        ));
                    }
                    Err(pull_error) => {
                        return Err(format!(
                            "image {reference:?} is not in kiln's image store ({e}) and could not be pulled: {pull_error}"
                        ));
                    }
                }
            }
            (Err(e), _) => {
                return Err(format!(
                    "image {reference:?} is not in kiln's image store ({e}); load it with `kiln load -i ARCHIVE`, \
                     import it with `kiln import`, build it with `-t`, or pass --build-context {reference}=oci-layout:///PATH"
                ));
            }
        };
        let name = if shown.is_empty() {
            stored.names.first().cloned().unwrap_or(key)
        } else {
            shown
        };
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((reference.to_string(), stored.manifest_digest.to_string()));
        Ok(ResolvedImage {
            reference: name,
            digest: stored.manifest_digest.to_string(),
            image: image_state(&stored),
        })
    }
}

impl ImageLayers for StoreImages {
    fn image_layers(&self, manifest_digest: &str) -> Result<Vec<ImageLayer>, String> {
        let stored = self.open(manifest_digest)?;
        // Layers of a pulled image come from its registry the first time they are needed.
        let source = match &self.registry {
            Some(registry) if stored.layers.iter().any(|l| !l.path.exists()) => {
                registry.blob_source(&self.store, &stored.manifest_digest)?
            }
            _ => None,
        };
        Ok(stored
            .layers
            .iter()
            .map(|l| ImageLayer {
                diff_id: l.diff_id.to_string(),
                digest: l.digest.to_string(),
                media_type: l.media_type.to_string(),
                size: l.size,
                location: match &source {
                    Some(source) if !l.path.exists() => BlobLocation::Remote(source.clone()),
                    _ => BlobLocation::Local(l.path.clone()),
                },
            })
            .collect())
    }
}

/// A stored image's config as lowering edits it.
fn image_state(stored: &StoredImage) -> ImageState {
    let c = &stored.config;
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    let some_list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    ImageState {
        os: c.os.clone(),
        architecture: c.architecture.clone(),
        variant: some(&c.variant),
        author: some(&c.author),
        config: RuntimeConfig {
            user: some(&c.config.user),
            exposed_ports: c.config.exposed_ports.clone(),
            env: c.config.env.clone(),
            entrypoint: some_list(&c.config.entrypoint),
            cmd: some_list(&c.config.cmd),
            volumes: c.config.volumes.clone(),
            working_dir: some(&c.config.working_dir),
            labels: c.config.labels.clone(),
            stop_signal: some(&c.config.stop_signal),
            healthcheck: c
                .config
                .healthcheck
                .as_ref()
                .map(|h| kiln_graph::lower::HealthConfig {
                    test: h.test.clone(),
                    interval: u64::try_from(h.interval).ok().filter(|n| *n > 0),
                    timeout: u64::try_from(h.timeout).ok().filter(|n| *n > 0),
                    start_period: u64::try_from(h.start_period).ok().filter(|n| *n > 0),
                    start_interval: u64::try_from(h.start_interval).ok().filter(|n| *n > 0),
                    retries: u32::try_from(h.retries).ok().filter(|n| *n > 0),
                }),
            on_build: c.config.on_build.clone(),
            shell: some_list(&c.config.shell),
        },
        history: c
            .history
            .iter()
            .map(|h| HistoryEntry {
                created_by: h.created_by.clone(),
                comment: some(&h.comment),
                empty_layer: h.empty_layer,
                layer: None,
            })
            .collect(),
    }
}
