//! The whole-build short cut: when a request is exactly the one an earlier successful
//! build answered — same fingerprint (Dockerfile, args, options, ignore patterns, ...),
//! every image reference still naming the same digest, every context read unchanged — its
//! image is the answer, without planning or walking a single op. `kiln bake` records one
//! entry for a whole request, with an image per target.
//!
//! A context read is unchanged when the stat plan its checksum recorded still holds (one
//! `statx` per path the checksum's walk observed: no listing, no file read, no store
//! lookup per file); when it does not (a file touched, or changed a moment ago) the full
//! checksum decides, and a match records the new plan so the next no-op is fast again.
//!
//! Everything here works on the store alone, before a [`Session`] is opened: an answer
//! from the short cut needs no worker, so the stale-container cleanup
//! `Session::open_with_images` does is left to the next build that runs something.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use kiln_exporter::BuiltImage;
use kiln_exporter::imagestore;
use kiln_graph::{Graph, NodeId, Op};
use kiln_store::{Digest, Store};

use super::export::{ExportRequest, ExportedImage, write_outputs};
use super::{Session, SessionError, check_outputs};
use crate::checksum::{checksum, plan_holds};
use crate::engine::cache::ContextRead;

/// What must still hold for a recorded build to answer its request again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortcutInputs {
    /// Image references as resolved, with their manifest digests.
    pub images: Vec<(String, String)>,
    pub reads: Vec<ContextRead>,
    /// A bake request's image per target name; empty for a build, whose one image is the
    /// record's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, String>,
}

/// The fingerprint a request's short cut is recorded under: the digest of `document`,
/// which holds everything the result depends on besides what [`shortcut`] checks itself.
pub fn fingerprint_of(document: &serde_json::Value) -> Option<String> {
    let bytes = serde_json::to_vec(document).ok()?;
    Some(Digest::of_bytes(&bytes).to_string())
}

/// Whether building `roots` fetches a URL: its content is not checked again by the short
/// cut, so such a build is never recorded.
pub fn fetches_urls(graph: &Graph, roots: &[NodeId]) -> bool {
    graph
        .required(roots)
        .iter()
        .any(|id| matches!(graph.node(*id).map(|n| &n.op), Some(Op::Http(_))))
}

/// The key a build's single image is answered under by [`shortcut`].
pub const SINGLE_IMAGE: &str = "";

/// The images an earlier build of `fingerprint` made, by target name ([`SINGLE_IMAGE`]
/// for a build), if every input it depended on is unchanged; `None` sends the request
/// the long way.
pub fn shortcut(
    store: &Store,
    fingerprint: &str,
) -> Result<Option<BTreeMap<String, BuiltImage>>, SessionError> {
    let Some((manifest, text)) = store.shortcut(fingerprint)? else {
        return Ok(None);
    };
    let Ok(mut inputs) = serde_json::from_str::<ShortcutInputs>(&text) else {
        return Ok(None);
    };
    for (reference, digest) in &inputs.images {
        // As resolution does: kiln's own image if there is one, else the remembered pull.
        let unchanged = match imagestore::manifest_of(store, reference) {
            Ok(found) => found.to_string() == *digest,
            Err(_) => crate::build::still_pulled(store, reference, digest),
        };
        if !unchanged {
            return Ok(None);
        }
    }
    let mut refreshed = false;
    for read in &mut inputs.reads {
        let mut plan_stored = false;
        if let Some(digest) = &read.plan
            && let Some(bytes) = store.stat_plan(digest)?
        {
            plan_stored = true;
            if plan_holds(&read.root, &read.selection, &bytes) {
                continue;
            }
        }
        match checksum(store, &read.root, &read.selection) {
            Ok(sum) if sum.digest == read.digest => {
                if let Some(plan) = sum.stat_plan
                    && (read.plan.as_ref() != Some(&plan.digest) || !plan_stored)
                {
                    read.plan = Some(plan.digest);
                    read.plan_bytes = Some(plan.bytes);
                    refreshed = true;
                }
            }
            _ => return Ok(None),
        }
    }
    let wanted = if inputs.targets.is_empty() {
        BTreeMap::from([(SINGLE_IMAGE.to_string(), manifest.clone())])
    } else {
        inputs.targets.clone()
    };
    let stored: BTreeSet<kiln_store::Digest> = store
        .list_images()?
        .into_iter()
        .map(|r| r.manifest)
        .collect();
    let mut images = BTreeMap::new();
    for (name, digest) in wanted {
        let Ok(digest) = kiln_store::Digest::parse(&digest) else {
            return Ok(None);
        };
        // The image was removed since (`kiln rmi`, or its blobs collected): build it again.
        if !stored.contains(&digest) {
            return Ok(None);
        }
        match imagestore::open_manifest(store, &digest) {
            Ok(image) => images.insert(name, image.to_built_image()),
            Err(_) => return Ok(None),
        };
    }
    if refreshed {
        remember_shortcut(store, fingerprint, &manifest, &inputs)?;
    }
    Ok(Some(images))
}

/// Remembers that `fingerprint` made the image `manifest_digest` (for a bake request,
/// the images in `inputs.targets`) from `inputs`.
pub fn remember_shortcut(
    store: &Store,
    fingerprint: &str,
    manifest_digest: &str,
    inputs: &ShortcutInputs,
) -> Result<(), SessionError> {
    let mut inputs = inputs.clone();
    // A base image used by several stages is resolved once per use, and steps copying
    // the same files read them once each; one check of each is enough.
    let mut seen = BTreeSet::new();
    inputs.images.retain(|pair| seen.insert(pair.clone()));
    let mut reads: Vec<ContextRead> = Vec::with_capacity(inputs.reads.len());
    for read in inputs.reads.drain(..) {
        if !reads.contains(&read) {
            reads.push(read);
        }
    }
    inputs.reads = reads;
    let text = serde_json::to_string(&inputs).unwrap_or_default();
    let plans: Vec<_> = inputs
        .reads
        .iter()
        .filter_map(|read| Some((read.plan.as_deref()?, read.plan_bytes.as_deref())))
        .collect();
    store.record_shortcut(fingerprint, manifest_digest, &text, &plans)?;
    Ok(())
}

/// Writes an image already in the store (a short-cut answer) to every output; names
/// already pointing at it are left as they are, so an unchanged answer writes nothing.
pub fn publish(
    store: &Store,
    built: &BuiltImage,
    request: &ExportRequest,
) -> Result<ExportedImage, SessionError> {
    check_outputs(request)?;
    let _gc = store.lock("gc")?;
    write_outputs(store, built, request)
}

impl Session {
    /// [`remember_shortcut`] on this session's store.
    pub fn remember_shortcut(
        &self,
        fingerprint: &str,
        manifest_digest: &str,
        inputs: &ShortcutInputs,
    ) -> Result<(), SessionError> {
        remember_shortcut(&self.store, fingerprint, manifest_digest, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_graph::HttpSource;

    #[test]
    fn only_a_url_the_roots_need_keeps_a_build_from_being_recorded() {
        let mut graph = Graph::new();
        let scratch = graph.add(Op::Scratch, vec![], "").unwrap();
        let fetch = Op::Http(HttpSource {
            url: "https://example.invalid/a".into(),
            checksum: None,
            filename: "a".into(),
        });
        let url = graph.add(fetch, vec![], "ADD").unwrap();
        let merged = graph.add(Op::Merge, vec![scratch, url], "").unwrap();
        assert!(!fetches_urls(&graph, &[scratch]));
        assert!(fetches_urls(&graph, &[merged]));
        assert!(fetches_urls(&graph, &[scratch, url]));
    }

    #[test]
    fn a_fingerprint_is_the_documents_digest() {
        let document = serde_json::json!({"a": 1});
        let expected = Digest::of_bytes(br#"{"a":1}"#).to_string();
        assert!(expected.starts_with("sha256:"));
        assert_eq!(fingerprint_of(&document), Some(expected));
    }
}
