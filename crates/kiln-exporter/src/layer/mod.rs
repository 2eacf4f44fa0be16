//! Layer writer: a directory tree or an overlayfs upper dir in, a content-addressed,
//! reproducible layer blob out.

mod parallel_gzip;
pub(crate) mod scan;
mod tar_entry;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, MediaType};

use crate::digest::{HashingWriter, sha256_hex};
use crate::error::{ExportError, IoContext, Result};
use crate::fsutil::AtomicFile;
use parallel_gzip::ParallelGzWriter;
use scan::{EntryKind, ScanMode, ScannedEntry};
use tar_entry::TarMeta;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    Uncompressed,
}

impl Compression {
    /// Every compression, in the order messages list them.
    pub const ALL: [Compression; 3] = [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ];

    /// The name options and records use: `gzip`, `zstd` or `uncompressed`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    /// The compression `name` stands for; `None` for a name kiln does not know.
    pub fn parse(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> MediaType {
        match self {
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
            Compression::Uncompressed => MediaType::ImageLayer,
        }
    }
}

/// What a layer is made from.
#[derive(Debug, Clone, Copy)]
pub enum LayerSource<'a> {
    /// An overlayfs upper dir: whiteout devices and opaque dirs become OCI whiteouts.
    OverlayDiff(&'a Path),
    /// A whole filesystem tree (a base rootfs), taken as it is.
    Tree(&'a Path),
}

impl LayerSource<'_> {
    fn parts(&self) -> (&Path, ScanMode) {
        match *self {
            LayerSource::OverlayDiff(p) => (p, ScanMode::OverlayDiff),
            LayerSource::Tree(p) => (p, ScanMode::Tree),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    pub compression: Compression,
    /// Compression level; gzip 0..=9 (default 6), zstd 1..=22 (default 3).
    pub compression_level: Option<i32>,
    /// `SOURCE_DATE_EPOCH`: file times later than this are written as this.
    pub source_date_epoch: Option<i64>,
}

/// A finished layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    pub media_type: MediaType,
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Size of the blob as stored.
    pub size: u64,
    /// Digest of the uncompressed tar, as listed in the image config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Where the blob is: `<blob_dir>/<hex of digest>`.
    pub path: PathBuf,
}

impl LayerDescriptor {
    /// The manifest descriptor of this layer.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.size, self.digest.clone())
    }
}

/// Writes every entry of `source` as an uncompressed layer tar into `out`, returning `out`
/// and the diff_id.
pub fn write_layer_tar<W: Write>(
    source: LayerSource<'_>,
    source_date_epoch: Option<i64>,
    out: W,
) -> Result<(W, Digest)> {
    let (out, diff_id, _) = write_tar_counted(source, source_date_epoch, out)?;
    Ok((out, diff_id))
}

/// The tar into `out`, with its digest and length.
fn write_tar_counted<W: Write>(
    source: LayerSource<'_>,
    source_date_epoch: Option<i64>,
    out: W,
) -> Result<(W, Digest, u64)> {
    let (root, mode) = source.parts();
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    scan::walk(root, mode, &mut |entry: ScannedEntry| {
        let meta = TarMeta::of(&entry, source_date_epoch);
        let result = if let EntryKind::File { .. } = entry.kind {
            let mut file = File::open(&entry.source).ctx("open", &entry.source)?;
            tar_entry::append(&mut builder, &meta, &mut file)
        } else {
            tar_entry::append(&mut builder, &meta, &mut io::empty())
        };
        result.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => ExportError::FileChanged {
                path: entry.source.clone(),
            },
            _ => ExportError::Stream(e),
        })
    })?;
    builder.finish()?;
    Ok(builder.into_inner()?.finish())
}

/// Writes a layer blob into `blob_dir` (named by the hex of its digest) in one pass:
/// the tar is hashed for the diff_id, compressed, and hashed again for the blob digest.
pub fn write_layer(
    source: LayerSource<'_>,
    options: &LayerOptions,
    blob_dir: &Path,
) -> Result<LayerDescriptor> {
    let mut temp = AtomicFile::new(&blob_dir.join("layer"))?;
    let epoch = options.source_date_epoch;
    let buffered = BufWriter::new(temp.file());
    let (mut buffered, digest, size, diff_id) = match options.compression {
        Compression::Gzip => {
            let level = options.compression_level.unwrap_or(6).clamp(0, 9) as u32;
            let encoder = ParallelGzWriter::new(HashingWriter::new(buffered), level);
            let (encoder, diff_id, _) = write_tar_counted(source, epoch, encoder)?;
            let (buffered, digest, size) = encoder.finish()?.finish();
            (buffered, digest, size, diff_id)
        }
        Compression::Zstd => {
            let level = options.compression_level.unwrap_or(3).clamp(1, 22);
            let encoder = zstd::Encoder::new(HashingWriter::new(buffered), level)?;
            let (encoder, diff_id, _) = write_tar_counted(source, epoch, encoder)?;
            let (buffered, digest, size) = encoder.finish()?.finish();
            (buffered, digest, size, diff_id)
        }
        Compression::Uncompressed => {
            // The blob is the tar: one hash serves as digest and diff_id.
            let (buffered, diff_id, size) = write_tar_counted(source, epoch, buffered)?;
            (buffered, diff_id.clone(), size, diff_id)
        }
    };
    buffered.flush()?;
    drop(buffered);
    let path = blob_dir.join(sha256_hex(&digest)?);
    temp.commit_as(&path)?;
    Ok(LayerDescriptor {
        media_type: options.compression.media_type(),
        digest,
        size,
        diff_id,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, u64)> {
        let mut ar = tar::Archive::new(tar_bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                    e.header().entry_type(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn compression_names_parse_back_and_unknown_names_do_not() {
        for c in Compression::ALL {
            assert_eq!(Compression::parse(c.name()), Some(c));
        }
        assert_eq!(Compression::parse("zstd"), Some(Compression::Zstd));
        assert_eq!(Compression::parse("lz4"), None);
        assert_eq!(Compression::parse("GZIP"), None);
    }

    #[test]
    fn tree_tar_lists_dirs_first_and_clamps_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("etc")).unwrap();
        fs::write(root.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
        std::os::unix::fs::symlink("hosts", root.join("etc/hosts2")).unwrap();
        let (bytes, diff_id) =
            write_layer_tar(LayerSource::Tree(root), Some(10), Vec::new()).unwrap();
        assert_eq!(diff_id, crate::digest::sha256_digest(&bytes));
        let got = entries(&bytes);
        assert_eq!(got[0].0, "etc/");
        assert_eq!(got[1].0, "etc/hosts");
        assert_eq!(got[2].1, tar::EntryType::Symlink);
        assert!(got.iter().all(|e| e.2 == 10));
    }

    #[test]
    fn long_names_use_pax_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(80)).join("f".repeat(80));
        fs::create_dir_all(deep.parent().unwrap()).unwrap();
        fs::write(&deep, b"data").unwrap();
        let (bytes, _) = write_layer_tar(LayerSource::Tree(dir.path()), None, Vec::new()).unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut found = false;
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path_bytes().len() == 161 {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                assert_eq!(s, "data");
                found = true;
            }
        }
        assert!(found);
    }

    #[test]
    fn gzip_layer_is_content_addressed_and_decompresses_to_diff_id() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a"), b"hello").unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let opts = LayerOptions::default();
        let layer = write_layer(LayerSource::Tree(src.path()), &opts, blobs.path()).unwrap();
        let raw = fs::read(&layer.path).unwrap();
        assert_eq!(raw.len() as u64, layer.size);
        assert_eq!(crate::digest::sha256_digest(&raw), layer.digest);
        // gzip header: magic, deflate, no flags, mtime 0
        assert_eq!(&raw[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(crate::digest::sha256_digest(&tar_bytes), layer.diff_id);
        assert_eq!(fs::read_dir(blobs.path()).unwrap().count(), 1);
    }

    #[test]
    fn zstd_and_uncompressed_layers() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a"), b"hello").unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let mut opts = LayerOptions {
            compression: Compression::Zstd,
            ..Default::default()
        };
        let z = write_layer(LayerSource::Tree(src.path()), &opts, blobs.path()).unwrap();
        assert_eq!(z.media_type, MediaType::ImageLayerZstd);
        let tar_bytes = zstd::decode_all(fs::read(&z.path).unwrap().as_slice()).unwrap();
        assert_eq!(crate::digest::sha256_digest(&tar_bytes), z.diff_id);
        opts.compression = Compression::Uncompressed;
        let u = write_layer(LayerSource::Tree(src.path()), &opts, blobs.path()).unwrap();
        assert_eq!(u.digest, u.diff_id);
        assert_eq!(u.diff_id, z.diff_id);
    }
}
