//! Pushing an exported image: every blob the registry lacks (layers in parallel, mounted
//! from the repository a base image came from when it is on the same registry), then the
//! config, and the manifest under each tag only after all of them, so a tag never names
//! an image whose blobs are not all there.

use std::sync::Mutex;

use kiln_exporter::BuiltImage;
use kiln_registry::{Client, Descriptor, PushedBlob, Reference};
use kiln_store::Store;

use super::{ExportRequest, Session, SessionError};

/// Layers uploaded at once.
const PARALLEL_UPLOADS: usize = 4;

/// What a push did, for progress lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub uploaded: usize,
    pub mounted: usize,
    pub existed: usize,
}

/// Pushes `built` to every name in `names`. `mount_from` are repositories the image's base
/// layers were pulled from.
pub fn push_image(
    client: &Client,
    store: &Store,
    built: &BuiltImage,
    names: &[String],
    mount_from: &[Reference],
) -> Result<PushReport, SessionError> {
    let mut report = PushReport::default();
    for name in names {
        let target = Reference::parse(name).map_err(registry_error(name))?;
        if target.digest.is_some() {
            return Err(SessionError::Unsupported(format!(
                "cannot push to {name}: a pushed name needs a tag, not a digest"
            )));
        }
        // `push_blob` passes over sources it cannot mount from (another registry, the
        // target repository itself).
        push_layers(client, built, &target, mount_from, &mut report)?;
        let config = built.config_blob.descriptor.digest().to_string();
        let config_path = store.blob_path(&kiln_store::Digest::parse(&config)?);
        let descriptor = Descriptor::new(
            built.config_blob.descriptor.media_type().as_ref(),
            &config,
            built.config_blob.bytes.len() as u64,
        );
        count(
            &mut report,
            client
                .push_blob(&target, &descriptor, &config_path, &[])
                .map_err(registry_error(name))?,
        );
        client
            .push_manifest(
                &target,
                built.manifest_blob.descriptor.media_type().as_ref(),
                &built.manifest_blob.bytes,
            )
            .map_err(registry_error(name))?;
    }
    Ok(report)
}

impl Session {
    /// Pushes `built` under the names of every output that asks for it (`--push`,
    /// `type=registry`, `type=image,push=true`).
    pub(super) fn push_outputs(
        &self,
        built: &kiln_exporter::BuiltImage,
        request: &ExportRequest,
    ) -> Result<Option<(Vec<String>, PushReport)>, SessionError> {
        let mut names: Vec<String> = Vec::new();
        for output in request.outputs.iter().filter(|o| o.push) {
            let listed = if output.names.is_empty() {
                &request.tags
            } else {
                &output.names
            };
            for name in listed {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        if request.outputs.iter().any(|o| o.push) && names.is_empty() {
            return Err(SessionError::Unsupported(
                "nothing to push to: give the image a name with -t or --output type=registry,name=REF".into(),
            ));
        }
        if names.is_empty() {
            return Ok(None);
        }
        let client = self
            .images
            .registry()
            .ok_or_else(|| {
                SessionError::Unsupported(
                    "pushing needs registry access, which this build has not".into(),
                )
            })?
            .map_err(SessionError::Registry)?;
        let mounts = self.images.pulled_sources();
        let report = push_image(client, &self.store, built, &names, &mounts)?;
        Ok(Some((names, report)))
    }
}

fn push_layers(
    client: &Client,
    built: &BuiltImage,
    target: &Reference,
    mounts: &[Reference],
    report: &mut PushReport,
) -> Result<(), SessionError> {
    let queue = Mutex::new(built.layers.iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_UPLOADS.min(built.layers.len()) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(layer) = next else { break };
                    let descriptor = Descriptor::new(
                        layer.media_type.as_ref(),
                        layer.digest.as_ref(),
                        layer.size,
                    );
                    let result = client.push_blob(target, &descriptor, &layer.path, mounts);
                    let failed = result.is_err();
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(result);
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    for result in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        count(report, result.map_err(registry_error(&target.familiar()))?);
    }
    Ok(())
}

fn count(report: &mut PushReport, pushed: PushedBlob) {
    match pushed {
        PushedBlob::Uploaded => report.uploaded += 1,
        PushedBlob::Mounted => report.mounted += 1,
        PushedBlob::Existed => report.existed += 1,
    }
}

fn registry_error(name: &str) -> impl Fn(kiln_registry::RegistryError) -> SessionError + '_ {
    move |e| SessionError::Registry(format!("pushing {name}: {e}"))
}
