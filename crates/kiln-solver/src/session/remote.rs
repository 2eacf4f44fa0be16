//! `--cache-from` / `--cache-to` turned into what a solve uses: import sources with their
//! indexes read, export targets with the steps each wants.

use std::collections::HashSet;
use std::sync::Arc;

use kiln_exporter::LayerOptions;
use kiln_graph::Graph;
use kiln_graph::lower::LoweredStage;

use super::Session;
use crate::remote_cache::{
    CacheBackend, CacheImport, CacheMode, CacheSpec, ExportTarget, RegistryAccess,
    RemoteCacheError, open_storage,
};

/// The sources of `specs`, indexes read. A source that cannot be read is left out with a
/// warning (a cache is never a reason to fail a build).
pub fn open_cache_imports(
    session: &Session,
    specs: &[CacheSpec],
) -> (Vec<Arc<CacheImport>>, Vec<String>) {
    let mut imports = Vec::new();
    let mut warnings = Vec::new();
    let tmp_dir = session.store.tmp_dir();
    let registry = registry_access(session, &tmp_dir);
    for spec in specs {
        let opened = open_storage(spec, false, &registry)
            .and_then(|storage| CacheImport::open(storage, &spec.tag));
        match opened {
            Ok(import) => imports.push(Arc::new(import)),
            Err(error) => warnings.push(format!("--cache-from: {error}; not used")),
        }
    }
    (imports, warnings)
}

/// Export destinations with the warnings about those that could not be opened.
pub type OpenedExports = (Vec<Arc<ExportTarget>>, Vec<String>);

/// The destinations of `specs` for the images of `stages`: `mode=min` takes the steps
/// whose layers make up those images, `mode=max` every step they need. One that cannot be
/// opened is left out with a warning, or is an error with `ignore-error=false`.
pub fn open_cache_exports(
    session: &Session,
    specs: &[CacheSpec],
    graph: &Graph,
    stages: &[&LoweredStage],
    source_date_epoch: Option<i64>,
) -> Result<OpenedExports, RemoteCacheError> {
    let mut targets = Vec::new();
    let mut warnings = Vec::new();
    let tmp_dir = session.store.tmp_dir();
    let registry = registry_access(session, &tmp_dir);
    // Inline records go into the image itself (`ExportRequest::inline_cache`).
    for spec in specs.iter().filter(|s| s.backend != CacheBackend::Inline) {
        let storage = match open_storage(spec, true, &registry) {
            Ok(storage) => storage,
            Err(error) if !spec.fail_on_error() => {
                warnings.push(format!(
                    "--cache-to: {error}; the cache is not exported there"
                ));
                continue;
            }
            Err(error) => return Err(error),
        };
        let nodes: HashSet<_> = match spec.mode {
            CacheMode::Min => stages
                .iter()
                .flat_map(|stage| stage.image.history.iter().filter_map(|h| h.layer))
                .collect(),
            CacheMode::Max => graph
                .required(&stages.iter().map(|s| s.fs).collect::<Vec<_>>())
                .into_iter()
                .collect(),
        };
        targets.push(Arc::new(ExportTarget {
            storage,
            prefix: spec.tag.clone(),
            options: LayerOptions {
                compression: spec.compression,
                compression_level: None,
                source_date_epoch,
            },
            nodes,
            fail_on_error: spec.fail_on_error(),
        }));
    }
    Ok((targets, warnings))
}

fn registry_access<'a>(session: &'a Session, tmp_dir: &'a std::path::Path) -> RegistryAccess<'a> {
    RegistryAccess {
        client: session.images.registry(),
        tmp_dir,
    }
}
