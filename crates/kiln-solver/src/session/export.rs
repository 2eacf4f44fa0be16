//! Where an image goes: kiln's store (tags), archives, directories, stdout, a docker
//! daemon; and what was written, for `--iidfile` and `--metadata-file`.

use std::path::Path;

use kiln_exporter::imagestore;
use kiln_exporter::{
    BuiltImage, ImageName, export_local, export_rootfs_tar, write_docker_archive,
    write_oci_archive, write_oci_layout,
};
use kiln_store::Store;

use super::SessionError;
use super::outputs::{OutputKind, OutputSpec};

/// Where one image goes.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub tags: Vec<String>,
    pub outputs: Vec<OutputSpec>,
    pub source_date_epoch: Option<i64>,
    pub load: bool,
    /// `--cache-to type=inline`: the image carries the records of its own layers.
    pub inline_cache: bool,
}

/// What was written, for `--iidfile` and `--metadata-file`.
pub struct ExportedImage {
    pub manifest_digest: String,
    pub config_digest: String,
    pub manifest_media_type: String,
    pub manifest_size: u64,
    pub names: Vec<String>,
    /// Names pushed to registries, and how their blobs got there.
    pub pushed: Option<(Vec<String>, super::PushReport)>,
}

impl ExportedImage {
    /// No image was made (`type=cacheonly`).
    pub fn none() -> Self {
        ExportedImage {
            manifest_digest: String::new(),
            config_digest: String::new(),
            manifest_media_type: String::new(),
            manifest_size: 0,
            names: Vec::new(),
            pushed: None,
        }
    }

    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "containerimage.digest": self.manifest_digest,
            "containerimage.config.digest": self.config_digest,
            "containerimage.descriptor": {
                "mediaType": self.manifest_media_type,
                "digest": self.manifest_digest,
                "size": self.manifest_size,
            },
            "image.name": self.names.join(","),
        })
    }
}

pub(super) fn write_outputs(
    store: &Store,
    built: &BuiltImage,
    request: &ExportRequest,
) -> Result<ExportedImage, SessionError> {
    let mut names: Vec<String> = request.tags.clone();
    for output in &request.outputs {
        names.extend(output.names.iter().cloned());
    }
    let manifest_digest = imagestore::save(store, built, &names)?;
    let image_names: Vec<ImageName> = names
        .iter()
        .filter_map(|n| ImageName::parse(n).ok())
        .collect();
    for output in &request.outputs {
        let epoch = request.source_date_epoch;
        match &output.kind {
            OutputKind::Image | OutputKind::CacheOnly | OutputKind::Registry => {}
            OutputKind::Oci { dest, tar: true } => {
                to_file_or_stdout(store, dest, |d| write_oci_archive(built, d, &image_names))?
            }
            OutputKind::Oci { dest, tar: false } => write_oci_layout(built, dest, &image_names)?,
            OutputKind::Docker { dest } => to_file_or_stdout(store, dest, |d| {
                write_docker_archive(built, d, &image_names)
            })?,
            OutputKind::Local { dest } => export_local(&built.layers, dest)?,
            OutputKind::Tar { dest } => {
                to_file_or_stdout(store, dest, |d| export_rootfs_tar(&built.layers, d, epoch))?
            }
        }
    }
    if request.load {
        load_into_docker(built, &image_names)?;
    }
    Ok(ExportedImage {
        manifest_digest: manifest_digest.to_string(),
        config_digest: built.config_blob.descriptor.digest().to_string(),
        manifest_media_type: built.manifest_blob.descriptor.media_type().to_string(),
        manifest_size: built.manifest_blob.descriptor.size(),
        names,
        pushed: None,
    })
}

/// `dest=-` streams the archive to stdout (written to a temp file first, so a failed
/// export never sends half an archive); any other dest is written in place, atomically.
fn to_file_or_stdout(
    store: &Store,
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<(), kiln_exporter::ExportError>,
) -> Result<(), SessionError> {
    if dest.as_os_str() != "-" {
        return Ok(write(dest)?);
    }
    let temp = store
        .tmp_dir()
        .join(format!("stdout-{}.tar", kiln_store::fsutil::random_hex(8)));
    let result = write(&temp).map_err(SessionError::from).and_then(|()| {
        let mut file = std::fs::File::open(&temp)?;
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut file, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok(())
    });
    let _ = std::fs::remove_file(&temp);
    result
}

/// `--load`: hands a docker archive to a running docker daemon through the docker CLI.
fn load_into_docker(built: &BuiltImage, names: &[ImageName]) -> Result<(), SessionError> {
    let socket = Path::new("/var/run/docker.sock");
    if !socket.exists() {
        return Err(SessionError::Unsupported("--load: no docker daemon is running (/var/run/docker.sock is missing); the image is in kiln's store".into()));
    }
    let dir = std::env::temp_dir().join(format!("kiln-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let archive = dir.join("image.tar");
    write_docker_archive(built, &archive, names)?;
    let status = std::process::Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(&archive)
        .status();
    let _ = std::fs::remove_dir_all(&dir);
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(SessionError::Unsupported(format!(
            "--load: docker load failed ({s})"
        ))),
        Err(e) => Err(SessionError::Unsupported(format!(
            "--load: cannot run docker: {e}"
        ))),
    }
}
