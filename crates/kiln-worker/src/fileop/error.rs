use std::io;
use std::path::PathBuf;

/// Why a file action failed. Paths in messages are the ones the user wrote (image or
/// input paths), except for I/O errors, which name the host path that failed.
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("copy reads input {index} but the op has only {available} inputs")]
    MissingInput { index: usize, available: usize },
    #[error("{pattern:?}: not found")]
    SourceNotFound { pattern: String },
    #[error("invalid source pattern {pattern:?}: {problem}")]
    BadPattern { pattern: String, problem: String },
    #[error("invalid exclude pattern: {0}")]
    BadExclude(#[from] kiln_frontend::dockerignore::PatternError),
    #[error(
        "copying {count} sources to {dest:?}: with more than one source the destination must be a directory and end with a /"
    )]
    DestNotDirectory { dest: String, count: usize },
    #[error("cannot copy to non-directory {path:?}")]
    NotADirectory { path: String },
    #[error("cannot replace directory {path:?} with a non-directory")]
    ReplaceDirectory { path: String },
    #[error("parent directory of {path:?} does not exist")]
    MissingParent { path: String },
    #[error("{path:?} does not exist")]
    NotFound { path: String },
    #[error("invalid path {path:?}")]
    InvalidPath { path: String },
    #[error("invalid chmod {spec:?}: {problem}")]
    BadChmod { spec: String, problem: String },
    #[error("resolving owner {spec:?}: {source}")]
    Owner {
        spec: String,
        #[source]
        source: crate::Error,
    },
    #[error("resolving {path:?} inside the root: {source}")]
    Resolve {
        path: String,
        #[source]
        source: crate::Error,
    },
    #[error("unpacking {archive:?}: {problem}")]
    Archive { archive: String, problem: String },
    #[error("{path:?}: file type cannot be copied")]
    UnsupportedFileType { path: String },
}

/// Attaches the operation and path to an I/O error: `.map_err(io_err("open", &p))`.
pub(super) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> FileOpError {
    let path = path.into();
    move |source| FileOpError::Io { op, path, source }
}
