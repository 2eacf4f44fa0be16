//! Base images from registries: a reference not in kiln's image store (or any reference
//! under `--pull`) is resolved in its registry; only the manifest and config are fetched
//! then, and each layer blob the first time a step needs the filesystem or an export needs
//! the bytes. The resolution is remembered in the store so later builds work offline
//! until `--pull` asks again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use kiln_exporter::imagestore::{StoredImage, open_pulled};
use kiln_registry::{Client, ClientOptions, Platform as RegistryPlatform, Reference};
use kiln_store::{Digest, Store};

use crate::engine::BlobSource;
use crate::remote_cache::{RegistryStorage, StorageBlobs};

/// Registry access for one build.
pub struct RegistryPulls {
    /// An unreadable docker configuration fails only what needs a registry.
    options: Result<ClientOptions, String>,
    /// Made on first use: most builds (and every short-cut answer) never talk to a registry.
    client: OnceLock<Result<Client, String>>,
    /// `--pull`: look every reference up again, once per process.
    always: bool,
    looked_up: Mutex<HashSet<(String, String)>>,
}

impl RegistryPulls {
    pub fn new(options: Result<ClientOptions, String>, always: bool) -> Self {
        Self {
            options,
            client: OnceLock::new(),
            always,
            looked_up: Mutex::new(HashSet::new()),
        }
    }

    pub fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_init(|| {
                let options = self.options.clone()?;
                Client::new(options).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn always(&self) -> bool {
        self.always
    }

    /// The manifest digest `reference` names for `platform` and the image it opens:
    /// remembered, or looked up in the registry (manifest and config stored, layers not
    /// fetched).
    pub fn resolve(
        &self,
        store: &Store,
        reference: &str,
        platform: &str,
    ) -> Result<(Digest, StoredImage), String> {
        let parsed = Reference::parse(reference).map_err(|e| e.to_string())?;
        let name = parsed.to_string();
        let key = (name.clone(), platform.to_string());
        let fresh = self
            .looked_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key);
        if (!self.always || fresh)
            && let Some(known) = store
                .pulled_image(&name, platform)
                .map_err(|e| e.to_string())?
            && let Ok(image) = open_pulled(store, &known.manifest)
        {
            return Ok((known.manifest, image));
        }
        let wanted = RegistryPlatform::parse(platform).map_err(|e| e.to_string())?;
        let pulled = self
            .client()?
            .pull(&parsed, &wanted)
            .map_err(|e| e.to_string())?;
        let manifest = store
            .put_blob_expecting(
                pulled.manifest.bytes.as_slice(),
                &parse(&pulled.manifest.digest)?,
            )
            .map_err(|e| e.to_string())?;
        store
            .put_blob_expecting(
                pulled.config_bytes.as_slice(),
                &parse(&pulled.config.digest)?,
            )
            .map_err(|e| e.to_string())?;
        store
            .record_pulled_image(&name, platform, &manifest, &parsed.name())
            .map_err(|e| e.to_string())?;
        self.looked_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        let image = open_pulled(store, &manifest).map_err(|e| e.to_string())?;
        Ok((manifest, image))
    }

    /// Where the layer blobs of the pulled image `manifest` come from, if it was pulled.
    pub fn blob_source(
        &self,
        store: &Arc<Store>,
        manifest: &Digest,
    ) -> Result<Option<Arc<dyn BlobSource>>, String> {
        let Some(repository) = store
            .pulled_repository(manifest)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let storage = RegistryStorage::new(self.client()?.clone(), &repository, store.tmp_dir())
            .map_err(|e| e.to_string())?;
        Ok(Some(Arc::new(StorageBlobs::named(
            Arc::new(storage),
            repository,
        ))))
    }
}

/// Whether `digest` is what `reference` resolved to when it was last looked up in its
/// registry (for any platform), with the manifest still in the store: what a build without
/// `--pull` would use again.
pub fn still_pulled(store: &Store, reference: &str, digest: &str) -> bool {
    let Ok(parsed) = Reference::parse(reference) else {
        return false;
    };
    store
        .pulled_manifests_of(&parsed.to_string())
        .unwrap_or_default()
        .iter()
        .any(|m| m.to_string() == digest && store.has_blob(m))
}

fn parse(digest: &str) -> Result<Digest, String> {
    Digest::parse(digest).map_err(|e| e.to_string())
}
