//! Remote build cache: cache records a CI fleet shares through an OCI image layout
//! directory or a registry repository.
//!
//! One record per cache key, each an OCI image manifest under its own tag
//! (`{tag}-{hex of key}`): its config is a small JSON document (media type
//! [`RECORD_MEDIA_TYPE`]) naming the step, its key inputs and the key of the step it builds
//! on; its single layer, when the step changed anything, is the step's diff. Writers only
//! add tags, so fleets writing one ref merge instead of overwriting each other. See
//! `docs/remote-cache.md`.
//!
//! Storage (where tags, manifests and blobs live) is behind [`CacheStorage`]; everything
//! else — record documents, tags, which records to export, lookups — is here and
//! network-free.

mod export;
mod import;
mod inline;
mod layout;
mod record;
mod registry;
mod spec;
mod storage;

pub use export::{ExportItem, ExportReport, ExportTarget, export_records};
pub(crate) use import::StorageBlobs;
pub use import::{CacheImport, RemoteRecord};
pub use inline::{INLINE_KEY, InlineRecord, InlineRecords, image_config_ref, records_of_image};
pub use layout::LocalLayoutStorage;
pub use record::{RECORD_MEDIA_TYPE, RecordConfig, RecordLayer, key_of_tag, record_tag};
pub use registry::RegistryStorage;
pub use spec::{
    CacheBackend, CacheMode, CacheSpec, RegistryAccess, open_storage, parse_cache_spec,
};
pub use storage::{BlobRef, CacheStorage};

/// What can go wrong with a remote cache.
#[derive(Debug, thiserror::Error)]
pub enum RemoteCacheError {
    /// A `--cache-from`/`--cache-to` value kiln cannot use.
    #[error("{0}")]
    Spec(String),
    /// A backend this version of kiln does not serve.
    #[error("{0}")]
    Unsupported(String),
    /// Something stored that is not what kiln wrote (bad JSON, digest mismatch, ...).
    #[error("{0}")]
    Format(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] kiln_store::Error),
    /// A backend's own failure (network, registry status), as text.
    #[error("{0}")]
    Backend(String),
}

pub(crate) fn io_error(
    context: impl Into<String>,
) -> impl FnOnce(std::io::Error) -> RemoteCacheError {
    let context = context.into();
    move |source| RemoteCacheError::Io { context, source }
}
