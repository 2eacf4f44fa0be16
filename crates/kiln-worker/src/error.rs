use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error("mount overlay on {}: {source}", target.display())]
    Mount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmount {}: {source}", target.display())]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("path {0:?} escapes the root it must stay in")]
    PathEscapes(PathBuf),
    #[error("too many levels of symbolic links resolving {0:?}")]
    SymlinkLoop(PathBuf),
    #[error("layer entry {path:?}: {reason}")]
    BadLayerEntry { path: PathBuf, reason: String },
    #[error("reading layer archive: {0}")]
    LayerRead(#[source] io::Error),
    #[error("invalid user spec {0:?}")]
    InvalidUserSpec(String),
    #[error("unknown user {name:?}: no such entry in /etc/passwd of the image")]
    UnknownUser { name: String },
    #[error("unknown group {name:?}: no such entry in /etc/group of the image")]
    UnknownGroup { name: String },
    #[error("invalid process: {0}")]
    InvalidProcess(String),
    #[error("building runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("writing runtime spec: {0}")]
    SpecJson(#[from] serde_json::Error),
    #[error("starting {}: {source}", runc.display())]
    RuncSpawn {
        runc: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("runc {op} {id} failed ({status}): {stderr}")]
    Runc {
        op: &'static str,
        id: String,
        status: String,
        stderr: String,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("refusing to delete {} while something is still mounted under it", .0.display())]
    StillMounted(PathBuf),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error: `.map_err(io_err("open", &p))`.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
