//! The whole-build short cut: when a request is exactly the one a earlier successful
//! build answered — same fingerprint (Dockerfile, args, options, ignore patterns, ...),
//! every image reference still naming the same digest, every context read still summing
//! the same — its image is the answer, without planning or walking a single op.

use serde::{Deserialize, Serialize};

use kiln_exporter::BuiltImage;
use kiln_exporter::imagestore;

use super::{Session, SessionError};
use crate::checksum::checksum;
use crate::engine::cache::ContextRead;

/// What must still hold for a recorded build to answer its request again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortcutInputs {
    /// Image references as resolved, with their manifest digests.
    pub images: Vec<(String, String)>,
    pub reads: Vec<ContextRead>,
}

impl Session {
    /// The image an earlier build of `fingerprint` made, if every input it depended on is
    /// unchanged; `None` sends the build the long way.
    pub fn shortcut(&self, fingerprint: &str) -> Result<Option<BuiltImage>, SessionError> {
        let Some((manifest, inputs)) = self.store.shortcut(fingerprint)? else {
            return Ok(None);
        };
        let Ok(inputs) = serde_json::from_str::<ShortcutInputs>(&inputs) else {
            return Ok(None);
        };
        for (reference, digest) in &inputs.images {
            if self.images.current_digest(reference).as_deref() != Some(digest.as_str()) {
                return Ok(None);
            }
        }
        for read in &inputs.reads {
            match checksum(&self.store, &read.root, &read.selection) {
                Ok(sum) if sum.digest == read.digest => {}
                _ => return Ok(None),
            }
        }
        match imagestore::open(&self.store, &manifest) {
            Ok(stored) => Ok(Some(stored.to_built_image())),
            // The image was removed since: build it again.
            Err(_) => Ok(None),
        }
    }

    /// Remembers that `fingerprint` made the image `manifest_digest` from `inputs`.
    pub fn remember_shortcut(
        &self,
        fingerprint: &str,
        manifest_digest: &str,
        inputs: &ShortcutInputs,
    ) -> Result<(), SessionError> {
        let text = serde_json::to_string(inputs).unwrap_or_default();
        self.store
            .record_shortcut(fingerprint, manifest_digest, &text)?;
        Ok(())
    }
}
