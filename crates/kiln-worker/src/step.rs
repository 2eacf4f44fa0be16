//! One RUN step end to end: overlay on the parent, the process in a container, and the
//! upper dir committed as a snapshot if the process succeeded.

use std::path::Path;

use kiln_store::SnapshotRecord;

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::runc::{ProcessSpec, RunResult, RuncExecutor, Stream};
use crate::snapshotter::Snapshotter;

/// How a step ended. A non-zero exit is an outcome, not an error: the caller decides how
/// to report it (with [`RunResult::tail`]).
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub run: RunResult,
    /// The committed snapshot; `None` when the process failed (its changes are discarded).
    pub snapshot: Option<SnapshotRecord>,
}

/// Runs `process` on a writable overlay of `parent` and commits the result, labelled
/// `label`, when it exits 0. `/etc/hosts` and `/etc/resolv.conf` are provided unless the
/// process already mounts something there. Errors and cancellation leave no mount,
/// container or scratch directory behind.
pub fn run_step(
    snapshotter: &Snapshotter,
    executor: &RuncExecutor,
    parent: Option<&str>,
    process: &ProcessSpec,
    label: &str,
    cancel: &CancelToken,
    on_output: &mut dyn FnMut(Stream, &str),
) -> Result<StepOutcome> {
    let mut process = process.clone();
    let has = |p: &ProcessSpec, d: &str| p.mounts.iter().any(|m| m.destination() == Path::new(d));
    if !has(&process, "/etc/hosts") && !has(&process, "/etc/resolv.conf") {
        process = process.with_network_files();
    }
    let active = snapshotter.prepare(parent)?;
    // On any error below, dropping `active` unmounts and removes it.
    let run = executor.run(active.rootfs(), &process, cancel, on_output)?;
    if run.exit_code != 0 {
        snapshotter.abort(active)?;
        return Ok(StepOutcome {
            run,
            snapshot: None,
        });
    }
    let snapshot = snapshotter.commit(active, label)?;
    Ok(StepOutcome {
        run,
        snapshot: Some(snapshot),
    })
}
