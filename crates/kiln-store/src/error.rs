use std::io;
use std::path::PathBuf;

use crate::Digest;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("could not put the metadata database in WAL mode (journal_mode is {0})")]
    NotWal(String),
    #[error("invalid digest {0:?} (expected sha256:<64 lowercase hex>)")]
    InvalidDigest(String),
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    #[error("blob digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("invalid image name {0:?}")]
    InvalidImageName(String),
    #[error("invalid snapshot id {0:?}")]
    InvalidSnapshotId(String),
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    #[error("snapshot key {0:?} already belongs to another snapshot")]
    SnapshotKeyTaken(String),
    #[error("snapshot {0} already exists")]
    SnapshotExists(String),
    #[error("snapshot {id} is the parent of {children} other snapshot(s)")]
    SnapshotHasChildren { id: String, children: u64 },
    #[error("snapshot chain from {0} is cyclic or deeper than {max} layers", max = crate::snapshots::MAX_CHAIN_DEPTH)]
    SnapshotChainTooDeep(String),
    #[error("store schema version {found} is newer than this kiln understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("invalid lock name {0:?}")]
    InvalidLockName(String),
    #[error("no store root: pass --root, set KILN_ROOT, XDG_DATA_HOME or HOME")]
    NoRoot,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error; used as `.map_err(io_err("open", &p))`.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
