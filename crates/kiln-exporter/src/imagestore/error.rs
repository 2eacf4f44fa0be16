use std::io;
use std::path::PathBuf;

use kiln_store::Digest;

use crate::error::ExportError;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("{reference:?} matches {count} images; give more of the ID or a name")]
    Ambiguous { reference: String, count: usize },
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error(
        "image {reference} is referenced by {count} names ({names}); remove them by name or force"
    )]
    Conflict {
        reference: String,
        count: usize,
        names: String,
    },
    #[error("stored image {manifest} is damaged: {reason}")]
    Corrupt { manifest: Digest, reason: String },
    #[error("invalid root filesystem archive: {0}")]
    InvalidArchive(String),
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
}

pub type Result<T, E = ImageStoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> ImageStoreError {
    let path = path.into();
    move |source| ImageStoreError::Io { op, path, source }
}
