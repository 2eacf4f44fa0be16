//! Bringing images in from files: `load` (docker archives, OCI archives and layouts) and
//! `import` (a root filesystem tarball becomes a one-layer image).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use kiln_store::{Digest, Store};
use oci_spec::image::{Arch, Os, Platform};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::error::{ImageStoreError, Result, io_err};
use super::names::{is_full_reference, normalize_name};
use super::{apply_change, save, tag_all, to_store_digest};
use crate::config::{History, ImageConfig};
use crate::error::ExportError;
use crate::image::{ImageOptions, build_image};
use crate::layer::LayerDescriptor;
use crate::reader::{LoadedImage, load_image};
use crate::timestamp::Timestamp;

/// One image `load` brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedArchiveImage {
    pub manifest: Digest,
    /// The image ID (config digest).
    pub id: Digest,
    /// Stored names now pointing at it; empty when the archive named it only by a tag.
    pub names: Vec<String>,
}

/// The platform of this machine in OCI terms (`linux/amd64`, `linux/arm64`, ...).
pub fn host_platform() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        other => (other, None),
    };
    let mut p = Platform::default();
    p.set_os(Os::from(std::env::consts::OS));
    p.set_architecture(Arch::from(arch));
    p.set_variant(variant.map(str::to_owned));
    p
}

/// Loads every image of a docker archive, OCI archive or OCI layout at `path` into the
/// store (an index is resolved for this machine's platform).
pub fn load_archive(store: &Store, path: &Path) -> Result<Vec<LoadedArchiveImage>> {
    let platform = host_platform();
    match load_image(path, None, Some(&platform)) {
        Ok(image) => Ok(vec![store_loaded(store, image)?]),
        Err(ExportError::AmbiguousImage(_)) => {
            let mut out = Vec::new();
            for selector in image_selectors(path)? {
                let image = load_image(path, Some(&selector), Some(&platform))?;
                out.push(store_loaded(store, image)?);
            }
            Ok(out)
        }
        Err(e) => Err(e.into()),
    }
}

fn store_loaded(store: &Store, image: LoadedImage) -> Result<LoadedArchiveImage> {
    let names = image
        .names
        .iter()
        .filter(|n| is_full_reference(n))
        .map(|n| normalize_name(n))
        .collect::<Result<Vec<_>>>()?;
    for (i, layer) in image.layers().iter().enumerate() {
        let digest = to_store_digest(layer.digest())?;
        if !store.has_blob(&digest) {
            store.put_blob_expecting(image.open_layer(i)?, &digest)?;
        }
    }
    let id = to_store_digest(image.manifest.config().digest())?;
    store.put_blob_expecting(image.config_bytes.as_slice(), &id)?;
    let manifest = to_store_digest(image.manifest_descriptor.digest())?;
    store.put_blob_expecting(image.manifest_bytes.as_slice(), &manifest)?;
    tag_all(store, &manifest, &names)?;
    Ok(LoadedArchiveImage {
        manifest,
        id,
        names,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

/// One selector per image of a multi-image source: a docker archive's first RepoTag or
/// config digest, else each manifest digest of an OCI index.
fn image_selectors(path: &Path) -> Result<Vec<String>> {
    let read_member = |name: &str| -> Result<Option<Vec<u8>>> {
        if path.is_dir() {
            return match std::fs::read(path.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("read", path.join(name))(e)),
            };
        }
        archive_member(path, name)
    };
    if let Some(bytes) = read_member("manifest.json")? {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(&bytes).map_err(ExportError::from)?;
        let mut out = Vec::new();
        for e in entries {
            match e.repo_tags.and_then(|t| t.into_iter().next()) {
                Some(tag) => out.push(tag),
                None => {
                    let hex = e
                        .config
                        .trim_start_matches("blobs/sha256/")
                        .trim_end_matches(".json");
                    out.push(format!("sha256:{hex}"));
                }
            }
        }
        return Ok(out);
    }
    if let Some(bytes) = read_member("index.json")? {
        let index: Index = serde_json::from_slice(&bytes).map_err(ExportError::from)?;
        let mut out: Vec<String> = index.manifests.into_iter().map(|m| m.digest).collect();
        out.dedup();
        return Ok(out);
    }
    Err(ExportError::UnknownFormat(path.display().to_string()).into())
}

/// The bytes of a small top-level member of a (possibly compressed) tar archive.
fn archive_member(path: &Path, wanted: &str) -> Result<Option<Vec<u8>>> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut archive = tar::Archive::new(crate::unpack::decompressed(file)?);
    for entry in archive.entries().map_err(io_err("read archive", path))? {
        let mut entry = entry.map_err(io_err("read archive", path))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name.trim_start_matches("./") == wanted {
            let mut bytes = Vec::new();
            entry
                .by_ref()
                .take(32 << 20)
                .read_to_end(&mut bytes)
                .map_err(io_err("read archive", path))?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// How `import` makes its image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `REPOSITORY[:TAG]`; none keeps the image dangling.
    pub name: Option<String>,
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`).
    pub changes: Vec<String>,
    /// History comment; `Imported from <source>` when none.
    pub message: Option<String>,
    /// This machine's platform when none.
    pub platform: Option<Platform>,
}

/// `import` of a tarball file (plain, gzip or zstd).
pub fn import_rootfs_tar(
    store: &Store,
    tar_path: &Path,
    options: &ImportOptions,
) -> Result<Digest> {
    let file = File::open(tar_path).map_err(io_err("open", tar_path))?;
    import_rootfs_reader(store, file, &tar_path.display().to_string(), options)
}

/// Makes a one-layer image of the root filesystem tarball `reader` yields (`source` names
/// it in the history) and returns its manifest digest. The tar is kept entry for entry:
/// its digest is the layer's diff_id, and the layer blob is its gzip.
pub fn import_rootfs_reader(
    store: &Store,
    reader: impl Read,
    source: &str,
    options: &ImportOptions,
) -> Result<Digest> {
    // Everything that can be refused cheaply is refused before reading the tarball.
    let names: Vec<String> = options.name.iter().cloned().collect();
    for n in &names {
        normalize_name(n)?;
    }
    let platform = options.platform.clone().unwrap_or_else(host_platform);
    let mut config = ImageConfig::for_platform(&platform);
    for change in &options.changes {
        apply_change(&mut config.config, change)?;
    }
    let layer = write_import_layer(store, reader)?;
    let created = Timestamp::now();
    config.created = Some(created);
    config.history.push(History {
        created: Some(created),
        comment: options
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {source}")),
        ..Default::default()
    });
    let image = build_image(&config, &[layer], &ImageOptions::default())?;
    save(store, &image, &names)
}

/// Reads a tar through, checks it, and stores its gzip as a blob.
fn write_import_layer(store: &Store, reader: impl Read) -> Result<LayerDescriptor> {
    let tmp_dir = store.tmp_dir();
    // `blob-` so that the store's cleanup of dead writers' leftovers covers it.
    let temp = tempfile::Builder::new()
        .prefix("blob-import-")
        .tempfile_in(&tmp_dir)
        .map_err(io_err("create temporary file in", &tmp_dir))?;
    let encoder =
        flate2::GzBuilder::new().write(BufWriter::new(temp.as_file()), flate2::Compression::new(6));
    let mut tee = Tee {
        inner: crate::unpack::decompressed(reader)?,
        hasher: Sha256::new(),
        out: encoder,
        count: 0,
        write_error: None,
    };
    let checked = check_rootfs_tar(&mut tee);
    if let Some(e) = tee.write_error.take() {
        return Err(io_err("write", temp.path())(e));
    }
    checked?;
    let diff_id = crate::digest::digest_from_hasher(tee.hasher);
    let mut buffered = tee.out.finish().map_err(io_err("write", temp.path()))?;
    buffered.flush().map_err(io_err("write", temp.path()))?;
    drop(buffered);
    let digest = store.put_blob_file(temp.path())?;
    let size = store.blob_size(&digest)?;
    Ok(LayerDescriptor {
        media_type: oci_spec::image::MediaType::ImageLayerGzip,
        digest: crate::digest::parse_sha256(&digest.to_string())?,
        size,
        diff_id,
        path: store.blob_path(&digest),
    })
}

/// Walks every entry (so a truncated or corrupt archive fails here) and refuses paths that
/// climb out of the root; then drains the padding so the diff_id covers every byte.
fn check_rootfs_tar<R: Read, W: Write>(tee: &mut Tee<R, W>) -> Result<()> {
    let invalid = |e: io::Error| ImageStoreError::InvalidArchive(e.to_string());
    let mut archive = tar::Archive::new(&mut *tee);
    let entries = archive.entries().map_err(invalid)?;
    for entry in entries {
        let entry = entry.map_err(invalid)?;
        let path = entry.path_bytes();
        if path.split(|&b| b == b'/').any(|c| c == b"..") {
            return Err(ImageStoreError::InvalidArchive(format!(
                "entry {:?} climbs out of the root",
                String::from_utf8_lossy(&path)
            )));
        }
    }
    io::copy(tee, &mut io::sink()).map_err(invalid)?;
    if tee.count == 0 {
        return Err(ImageStoreError::InvalidArchive("the input is empty".into()));
    }
    Ok(())
}

/// Hashes what it reads and copies it to `out`; a failed write is kept aside so it is
/// reported as a write error, not as a damaged archive.
struct Tee<R, W> {
    inner: R,
    hasher: Sha256,
    out: W,
    count: u64,
    write_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let kind = e.kind();
            self.write_error = Some(e);
            return Err(io::Error::new(kind, "writing the layer failed"));
        }
        Ok(n)
    }
}
