//! Filesystem outputs: `type=local` (the final filesystem as a directory) and `type=tar`
//! (the final filesystem as one tar).

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::Result;
use crate::fsutil::{AtomicDir, AtomicFile};
use crate::layer::{LayerDescriptor, LayerSource, write_layer_tar};
use crate::unpack::unpack_layer_file;

/// `--output type=local,dest=DIR`: applies `layers` in order into a fresh tree that then
/// replaces `dest`.
pub fn export_local(layers: &[LayerDescriptor], dest: &Path) -> Result<()> {
    let staging = AtomicDir::new(dest)?;
    for layer in layers {
        unpack_layer_file(&layer.path, staging.path())?;
    }
    staging.commit(0o755)
}

/// `--output type=tar,dest=FILE` from a directory holding the final filesystem (a merged
/// snapshot mount or an exported tree).
pub fn export_dir_tar(root: &Path, dest: &Path, source_date_epoch: Option<i64>) -> Result<()> {
    let mut out = AtomicFile::new(dest)?;
    let (mut buffered, _) = write_layer_tar(
        LayerSource::Tree(root),
        source_date_epoch,
        BufWriter::new(out.file()),
    )?;
    buffered.flush()?;
    drop(buffered);
    out.commit()
}

/// `--output type=tar,dest=FILE` from layers: they are applied in a scratch tree beside
/// `dest` (same filesystem, so no surprise from a small /tmp) and that tree is archived.
pub fn export_rootfs_tar(
    layers: &[LayerDescriptor],
    dest: &Path,
    source_date_epoch: Option<i64>,
) -> Result<()> {
    let scratch = AtomicDir::new(dest)?;
    for layer in layers {
        unpack_layer_file(&layer.path, scratch.path())?;
    }
    export_dir_tar(scratch.path(), dest, source_date_epoch)
    // `scratch` is dropped uncommitted: the tree is removed.
}
