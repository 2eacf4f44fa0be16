//! The one error type of the exporters.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while writing or reading layers and images.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("i/o error: {0}")]
    Stream(#[from] io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("oci spec: {0}")]
    Spec(String),
    #[error(
        "{path} uses overlayfs {feature}, which a layer cannot express; mount with {feature}=off"
    )]
    OverlayFeature {
        path: PathBuf,
        feature: &'static str,
    },
    #[error("unsupported file type at {0}")]
    UnsupportedFileType(PathBuf),
    #[error("{path} changed while it was being archived")]
    FileChanged { path: PathBuf },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected}, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("invalid image reference {0:?}")]
    InvalidReference(String),
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    #[error("unsafe path in archive: {0:?}")]
    UnsafePath(String),
    #[error("blob {0} not found")]
    BlobNotFound(String),
    #[error("no image matches {0:?}")]
    ImageNotFound(String),
    #[error("{0} images found; choose one by tag or digest")]
    AmbiguousImage(usize),
    #[error("no manifest for platform {0}")]
    PlatformNotFound(String),
    #[error("not an image archive or layout: {0}")]
    UnknownFormat(String),
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("destination {0} exists and is not an OCI layout")]
    DestinationNotEmpty(PathBuf),
}

pub type Result<T, E = ExportError> = std::result::Result<T, E>;

/// Attaches the operation and path to a raw `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| ExportError::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl From<oci_spec::OciSpecError> for ExportError {
    fn from(e: oci_spec::OciSpecError) -> Self {
        ExportError::Spec(e.to_string())
    }
}
