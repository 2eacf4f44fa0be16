//! Cleaning up after kiln processes that died mid-build: their containers, overlay mounts,
//! scratch directories and half-recorded snapshots. Work of live kiln processes is
//! recognised by the locks they hold and left alone.

use std::fs;
use std::time::Duration;

use kiln_store::Store;

use crate::error::{Result, io_err};
use crate::runc::{CONTAINER_PREFIX, RUN_PREFIX, RuncExecutor};
use crate::scratch::{forget_lock, stale};
use crate::snapshotter::{ACTIVE_PREFIX, remove_scratch_dir};

/// What [`cleanup_stale`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub containers: usize,
    pub active_snapshots: usize,
    pub orphan_snapshots: usize,
    pub temp_blobs: usize,
}

/// Temp blobs younger than this may belong to a live writer.
const TEMP_BLOB_AGE: Duration = Duration::from_secs(3600);

/// Removes everything dead kiln processes left in `store`, using `executor`'s runc.
pub fn cleanup_stale(store: &Store, executor: &RuncExecutor) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    let tmp = store.tmp_dir();

    for (dir, lock) in stale(&tmp, RUN_PREFIX)? {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = name.trim_start_matches(RUN_PREFIX);
        if kill_and_delete(executor, id)? {
            report.containers += 1;
        }
        remove_scratch_dir(&dir)?;
        forget_lock(lock);
    }
    // Containers whose bundle is already gone (the owner died while removing it).
    for id in list_containers(executor)? {
        let bundle = tmp.join(format!("{RUN_PREFIX}{id}"));
        if id.starts_with(CONTAINER_PREFIX) && !bundle.exists() && kill_and_delete(executor, &id)? {
            report.containers += 1;
        }
    }

    for (dir, lock) in stale(&tmp, ACTIVE_PREFIX)? {
        remove_scratch_dir(&dir)?;
        forget_lock(lock);
        report.active_snapshots += 1;
    }

    // Snapshot directories renamed into place whose row was never written.
    {
        let _guard = store.lock("snapshots")?;
        let dir = store.snapshots_dir();
        for entry in fs::read_dir(&dir).map_err(io_err("read dir", &dir))? {
            let entry = entry.map_err(io_err("read dir", &dir))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if store.snapshot(&id)?.is_none() {
                remove_scratch_dir(&entry.path())?;
                report.orphan_snapshots += 1;
            }
        }
    }

    report.temp_blobs = store.clean_tmp_blobs(TEMP_BLOB_AGE)?;
    Ok(report)
}

fn list_containers(executor: &RuncExecutor) -> Result<Vec<String>> {
    // runc keeps one directory per container under its root: with none there, asking
    // runc (a process start on every build) would only confirm there is nothing.
    let has_state =
        std::fs::read_dir(executor.state_root()).is_ok_and(|mut entries| entries.next().is_some());
    if !has_state {
        return Ok(Vec::new());
    }
    let out = executor.runc_quiet(&["list", "--format", "json"])?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    Ok(parsed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Kills and deletes a container; `Ok(false)` if runc had no such container.
fn kill_and_delete(executor: &RuncExecutor, id: &str) -> Result<bool> {
    if !executor.state_root().join(id).exists() {
        return Ok(false);
    }
    let _ = executor.runc_quiet(&["kill", id, "KILL"]);
    executor.delete_container(id)?;
    Ok(true)
}
