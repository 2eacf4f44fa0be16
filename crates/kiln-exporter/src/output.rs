//! Image outputs: an OCI image layout directory, an OCI archive (that layout as a tar) and a
//! docker archive (the layout plus the `manifest.json` and `repositories` `docker load`
//! reads). Each destination appears whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, ImageIndex, MediaType};
use serde::Serialize;

use crate::digest::{VerifyingReader, sha256_hex};
use crate::error::{ExportError, IoContext, Result};
use crate::fsutil::{AtomicDir, AtomicFile, write_file_atomic};
use crate::image::BuiltImage;
use crate::json::{index_json, to_go_json};
use crate::reference::ImageName;

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

enum Content {
    Bytes(Vec<u8>),
    /// A layer blob on disk, checked against its descriptor as it is copied out.
    File {
        path: PathBuf,
        digest: Digest,
        size: u64,
    },
}

/// Reads a layer blob, failing at its end if it is not the blob the manifest names: a
/// damaged store must not produce an image whose manifest lies.
fn open_verified(path: &Path, digest: &Digest, size: u64) -> Result<impl Read> {
    let file = File::open(path).ctx("open blob", path)?;
    Ok(VerifyingReader::new(
        file,
        path.display().to_string(),
        digest.clone(),
        size,
    ))
}

/// Every blob of the image, keyed by `blobs/sha256/<hex>` (sorted, deduplicated).
fn blob_files(image: &BuiltImage) -> Result<BTreeMap<String, Content>> {
    let mut files = BTreeMap::new();
    for layer in &image.layers {
        files.insert(
            format!("blobs/sha256/{}", sha256_hex(&layer.digest)?),
            Content::File {
                path: layer.path.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
            },
        );
    }
    for blob in [&image.config_blob, &image.manifest_blob] {
        files.insert(
            format!("blobs/sha256/{}", sha256_hex(blob.descriptor.digest())?),
            Content::Bytes(blob.bytes.clone()),
        );
    }
    Ok(files)
}

fn ref_name_of(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

/// `index.json` naming the image once per name (untagged when there are none); entries of
/// `existing` with another ref name are kept.
fn index_for(image: &BuiltImage, names: &[ImageName], existing: Option<ImageIndex>) -> ImageIndex {
    let mut manifest = Descriptor::new(
        image.manifest_blob.descriptor.media_type().clone(),
        image.manifest_blob.descriptor.size(),
        image.manifest_blob.descriptor.digest().clone(),
    );
    let mut entries = Vec::new();
    for name in names {
        let mut ann: HashMap<String, String> = [
            (ANNOTATION_CONTAINERD_NAME.to_owned(), name.to_string()),
            (ANNOTATION_REF_NAME.to_owned(), name.tag.clone()),
        ]
        .into_iter()
        .collect();
        // BuildKit stamps the image's creation time here too (already epoch-clamped).
        if let Some(created) = image.config.created {
            ann.insert(ANNOTATION_CREATED.to_owned(), created.to_string());
        }
        let mut d = manifest.clone();
        d.set_annotations(Some(ann));
        entries.push(d);
    }
    if names.is_empty() {
        manifest.set_annotations(None);
        entries.push(manifest);
    }
    let mut index = existing.unwrap_or_default();
    index.set_schema_version(2);
    index.set_media_type(Some(MediaType::ImageIndex));
    let new_refs: BTreeSet<&str> = names.iter().map(|n| n.tag.as_str()).collect();
    let mut kept: Vec<Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| match ref_name_of(d) {
            Some(r) => !new_refs.contains(r),
            None => d.digest() != image.manifest_blob.descriptor.digest(),
        })
        .cloned()
        .collect();
    kept.extend(entries);
    index.set_manifests(kept);
    index
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// `manifest.json` and `repositories` of a docker archive.
fn docker_files(image: &BuiltImage, names: &[ImageName]) -> Result<Vec<(String, Content)>> {
    let mut layers = Vec::new();
    for l in &image.layers {
        layers.push(format!("blobs/sha256/{}", sha256_hex(&l.digest)?));
    }
    let entry = DockerManifestEntry {
        config: format!(
            "blobs/sha256/{}",
            sha256_hex(image.config_blob.descriptor.digest())?
        ),
        repo_tags: names.iter().map(ImageName::familiar).collect(),
        layers,
    };
    let mut files = vec![(
        "manifest.json".to_owned(),
        Content::Bytes(to_go_json(&[entry])?),
    )];
    if let Some(top) = image.layers.last() {
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for n in names {
            repos
                .entry(n.familiar_repository())
                .or_default()
                .insert(n.tag.clone(), sha256_hex(&top.digest)?.to_owned());
        }
        if !repos.is_empty() {
            files.push((
                "repositories".to_owned(),
                Content::Bytes(to_go_json(&repos)?),
            ));
        }
    }
    Ok(files)
}

fn copy_blob_file(src: &Path, digest: &Digest, size: u64, dest: &Path) -> Result<()> {
    let mut from = open_verified(src, digest, size)?;
    let mut out = AtomicFile::new(dest)?;
    io::copy(&mut from, out.file()).ctx("copy blob to", dest)?;
    out.commit()
}

fn write_content(dest: &Path, content: &Content) -> Result<()> {
    match content {
        Content::Bytes(b) => write_file_atomic(dest, b),
        Content::File { path, digest, size } => copy_blob_file(path, digest, *size, dest),
    }
}

/// Writes the image into an OCI image layout at `dir`, tagged with each of `names`
/// (`org.opencontainers.image.ref.name` is the tag, as `skopeo` and `umoci` expect).
/// A new directory appears whole; an existing layout gets the blobs first and its
/// `index.json` replaced last, so it is valid at every moment.
pub fn write_oci_layout(image: &BuiltImage, dir: &Path, names: &[ImageName]) -> Result<()> {
    let exists = fs::symlink_metadata(dir).is_ok();
    if exists && dir.join("oci-layout").is_file() {
        let index_path = dir.join("index.json");
        let existing = match fs::read(&index_path) {
            Ok(bytes) => Some(serde_json::from_slice::<ImageIndex>(&bytes)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).ctx("read", &index_path),
        };
        for (rel, content) in blob_files(image)? {
            let dest = dir.join(&rel);
            if !dest.is_file() {
                write_content(&dest, &content)?;
            }
        }
        let index = index_for(image, names, existing);
        return write_file_atomic(&index_path, &index_json(&index)?);
    }
    if exists
        && fs::read_dir(dir)
            .ctx("read directory", dir)?
            .next()
            .is_some()
    {
        return Err(ExportError::DestinationNotEmpty(dir.to_path_buf()));
    }
    let staging = AtomicDir::new(dir)?;
    let root = staging.path();
    for (rel, content) in blob_files(image)? {
        write_content(&root.join(rel), &content)?;
    }
    write_file_atomic(&root.join("oci-layout"), OCI_LAYOUT_FILE)?;
    let index = index_for(image, names, None);
    write_file_atomic(&root.join("index.json"), &index_json(&index)?)?;
    staging.commit(0o755)
}

fn tar_header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

fn write_archive(image: &BuiltImage, dest: &Path, names: &[ImageName], docker: bool) -> Result<()> {
    let mtime = image
        .config
        .created
        .map_or(0, |t| u64::try_from(t.secs).unwrap_or(0));
    let mut out = AtomicFile::new(dest)?;
    let mut builder = tar::Builder::new(BufWriter::new(out.file()));
    let add_bytes = |b: &mut tar::Builder<_>, name: &str, bytes: &[u8]| -> Result<()> {
        let mut h = tar_header(tar::EntryType::Regular, bytes.len() as u64, 0o644, mtime);
        b.append_data(&mut h, name, bytes)?;
        Ok(())
    };
    // Small metadata first so a streaming reader knows what follows.
    add_bytes(&mut builder, "oci-layout", OCI_LAYOUT_FILE)?;
    add_bytes(
        &mut builder,
        "index.json",
        &index_json(&index_for(image, names, None))?,
    )?;
    if docker {
        for (name, content) in docker_files(image, names)? {
            if let Content::Bytes(b) = content {
                add_bytes(&mut builder, &name, &b)?;
            }
        }
    }
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar_header(tar::EntryType::Directory, 0, 0o755, mtime);
        builder.append_data(&mut h, dir, io::empty())?;
    }
    for (name, content) in blob_files(image)? {
        match content {
            Content::Bytes(b) => add_bytes(&mut builder, &name, &b)?,
            Content::File { path, digest, size } => {
                let reader = open_verified(&path, &digest, size)?;
                let mut h = tar_header(tar::EntryType::Regular, size, 0o644, mtime);
                builder
                    .append_data(&mut h, &name, reader)
                    .ctx("archive blob", &path)?;
            }
        }
    }
    builder.finish()?;
    let mut buffered = builder.into_inner()?;
    buffered.flush()?;
    drop(buffered);
    out.commit()
}

/// `--output type=oci,dest=FILE`: the OCI layout as a tar archive.
pub fn write_oci_archive(image: &BuiltImage, dest: &Path, names: &[ImageName]) -> Result<()> {
    write_archive(image, dest, names, false)
}

/// `--output type=docker,dest=FILE`: an archive `docker load` (and `skopeo
/// docker-archive:`) reads; it is also a valid OCI layout tar.
pub fn write_docker_archive(image: &BuiltImage, dest: &Path, names: &[ImageName]) -> Result<()> {
    write_archive(image, dest, names, true)
}
