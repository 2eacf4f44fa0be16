//! kiln's image store seen by lowering (configs) and by the engine (layers): images are
//! looked up by name or digest; `oci-layout://` references are imported first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kiln_exporter::imagestore::{self, StoredImage};
use kiln_exporter::{OciLayoutRef, load_image, parse_platform};
use kiln_graph::lower::{HistoryEntry, ImageResolver, ImageState, ResolvedImage, RuntimeConfig};
use kiln_store::Store;

use crate::engine::{BlobLocation, ImageLayer, ImageLayers};

pub struct StoreImages {
    store: Arc<Store>,
    opened: Mutex<HashMap<String, Arc<StoredImage>>>,
    /// Every reference resolved, with the manifest digest it resolved to.
    resolved: Mutex<Vec<(String, String)>>,
}

impl StoreImages {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            opened: Mutex::new(HashMap::new()),
            resolved: Mutex::new(Vec::new()),
        }
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

    /// The manifest digest `reference` names in the store now.
    pub fn current_digest(&self, reference: &str) -> Option<String> {
        imagestore::open(&self.store, reference)
            .ok()
            .map(|s| s.manifest_digest.to_string())
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
        let stored = self.open(&key).map_err(|e| {
            format!(
                "image {reference:?} is not in kiln's image store ({e}); load it with `kiln load -i ARCHIVE`, \
                 import it with `kiln import`, build it with `-t`, or pass --build-context {reference}=oci-layout:///PATH"
            )
        })?;
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
        Ok(stored
            .layers
            .iter()
            .map(|l| ImageLayer {
                diff_id: l.diff_id.to_string(),
                digest: l.digest.to_string(),
                media_type: l.media_type.to_string(),
                size: l.size,
                location: BlobLocation::Local(l.path.clone()),
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
