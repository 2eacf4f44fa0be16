//! File operations of the build graph (`COPY`, `ADD`, mkdir, mkfile, rm) applied to a
//! mounted rootfs, with BuildKit's semantics.
//!
//! Every destination path is resolved inside the destination root the way it would
//! resolve if that root were `/`: symlinks in the image are followed but re-rooted, and
//! `..` stops at the root, so nothing is ever written outside it.

mod archive;
mod chmod;
mod copy;
mod error;
mod paths;
pub mod pattern;
mod simple;
mod sources;
mod tree;

use std::path::{Path, PathBuf};

use kiln_graph::{FileAction, Ownership};

pub use chmod::Chmod;
pub use error::FileOpError;

/// One input filesystem a copy can read from.
#[derive(Debug, Clone, Default)]
pub struct InputRoot {
    pub path: PathBuf,
    /// `.dockerignore` patterns when this input is the build context, else empty: what
    /// they match is treated as absent.
    pub excludes: Vec<String>,
}

/// Applies one file action to the rootfs mounted at `dest_root`.
pub fn apply(
    dest_root: &Path,
    action: &FileAction,
    inputs: &[InputRoot],
) -> Result<(), FileOpError> {
    match action {
        FileAction::Copy(copy_action) => {
            let input = inputs
                .get(copy_action.input)
                .ok_or(FileOpError::MissingInput {
                    index: copy_action.input,
                    available: inputs.len(),
                })?;
            copy::apply_copy(dest_root, copy_action, input)
        }
        FileAction::Mkdir {
            path,
            mode,
            parents,
            owner,
        } => {
            let owner = resolve_owner(dest_root, owner.as_ref())?;
            simple::mkdir(dest_root, path, *mode, *parents, owner)
        }
        FileAction::Mkfile {
            path,
            mode,
            data,
            owner,
        } => {
            let owner = resolve_owner(dest_root, owner.as_ref())?;
            simple::mkfile(dest_root, path, *mode, data, owner)
        }
        FileAction::Rm {
            path,
            allow_not_found,
        } => simple::rm(dest_root, path, *allow_not_found),
    }
}

/// `(uid, gid)` for an ownership, looked up in the destination's own passwd and group.
fn resolve_owner(
    dest_root: &Path,
    owner: Option<&Ownership>,
) -> Result<Option<(u32, u32)>, FileOpError> {
    let Some(owner) = owner else {
        return Ok(None);
    };
    let spec = match &owner.group {
        Some(group) => format!("{}:{group}", owner.user),
        None => owner.user.clone(),
    };
    crate::resolve_chown(dest_root, &spec)
        .map(Some)
        .map_err(|source| FileOpError::Owner { spec, source })
}
