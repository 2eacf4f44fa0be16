//! RUN: the process in a container on a writable overlay of its parent, with its mounts.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use kiln_graph::{CacheSharing, ExecOp, MountKind, NetworkMode as OpNetwork};
use kiln_worker::run_step;
use kiln_worker::runc::{ExtraMount, NetworkMode, ProcessSpec};
use sha2::{Digest as _, Sha256};

use super::files::{Held, ScratchDir, copy_filtered, ensure_dir, input_root};
use super::{Engine, EngineError, Output, io_error};

/// The host name RUN steps see, as in BuildKit.
const HOSTNAME: &str = "buildkitsandbox";

pub(crate) fn run(
    engine: &Engine,
    exec: &ExecOp,
    inputs: &[Output],
    label: &str,
    log: &dyn Fn(&str),
) -> Result<Output, EngineError> {
    let parent = inputs
        .first()
        .and_then(Output::snapshot)
        .map(str::to_string);
    let mut held: Vec<Held> = Vec::new();
    let mut locks = Vec::new();
    let mut mounts = Vec::new();
    let mut env = exec.env.clone();
    for mount in &exec.mounts {
        let destination = PathBuf::from(&mount.target);
        match &mount.kind {
            MountKind::Bind {
                input,
                source,
                readwrite,
            } => {
                let root = input_root(engine, inputs.get(*input), &mut held)?;
                let from_context = matches!(inputs.get(*input), Some(Output::Dir { .. }));
                let path = if from_context && (*readwrite || !root.excludes.is_empty()) {
                    // The context is read in place: writes must never reach it and ignored
                    // files must not be visible, so the mount gets a filtered copy.
                    let copy = ScratchDir::create(engine, "bind")?;
                    copy_filtered(&root, source, &copy.path)?;
                    let path = copy.path.clone();
                    held.push(Held::Dir(copy));
                    path
                } else {
                    kiln_worker::resolve_in_root(&root.path, Path::new(source), true)?
                };
                mounts.push(ExtraMount::Bind {
                    source: path,
                    destination,
                    readonly: !readwrite,
                });
            }
            MountKind::Cache {
                id,
                sharing,
                mode,
                uid,
                gid,
                seed,
                readonly,
            } => {
                let key = hex::encode(Sha256::digest(id.as_bytes()));
                // Held while the step runs (shared unless private or locked): garbage
                // collection never removes a mount in use. Also records the use time.
                let exclusive = !matches!(sharing, CacheSharing::Shared);
                locks.push(engine.store().use_cache_mount(&key, id, exclusive)?);
                let dir = engine.store().root().join("cache-mounts").join(&key);
                let created = ensure_dir(&dir, *mode, *uid, *gid)?;
                if let (true, Some((input, source))) = (created, seed) {
                    let root = input_root(engine, inputs.get(*input), &mut held)?;
                    copy_filtered(&root, source, &dir)?;
                }
                mounts.push(ExtraMount::Bind {
                    source: dir,
                    destination,
                    readonly: *readonly,
                });
            }
            MountKind::Tmpfs { size } => mounts.push(ExtraMount::Tmpfs {
                destination,
                size_bytes: *size,
            }),
            MountKind::Secret {
                id,
                env: as_env,
                required,
                mode,
                uid,
                gid,
            } => {
                let Some(source) = engine.config.secrets.get(id) else {
                    if *required {
                        return Err(EngineError::Input(format!(
                            "secret {id} is required but was not provided (pass --secret id={id},src=PATH)"
                        )));
                    }
                    continue;
                };
                let value = source.read().map_err(EngineError::Input)?;
                if let Some(var) = as_env {
                    env.push(format!("{var}={}", String::from_utf8_lossy(&value)));
                    continue;
                }
                let dir = ScratchDir::create(engine, "secret")?;
                let file = dir.path.join("secret");
                write_private(&file, &value, *mode, *uid, *gid)?;
                held.push(Held::Dir(dir));
                mounts.push(ExtraMount::Bind {
                    source: file,
                    destination,
                    readonly: true,
                });
            }
            MountKind::Ssh { id, required, .. } => {
                if *required {
                    return Err(EngineError::Unsupported(format!(
                        "RUN --mount=type=ssh (id {id}) is not supported by this version of kiln"
                    )));
                }
            }
        }
    }
    let process = ProcessSpec {
        args: exec.args.clone(),
        env,
        cwd: exec.cwd.clone(),
        user: exec.user.clone(),
        network: match exec.network {
            OpNetwork::Default => NetworkMode::Default,
            OpNetwork::None => NetworkMode::None,
            OpNetwork::Host => NetworkMode::Host,
        },
        mounts,
        hostname: HOSTNAME.to_string(),
    };
    let outcome = run_step(
        engine.snapshotter(),
        &engine.runc,
        parent.as_deref(),
        &process,
        label,
        engine.cancel_token(),
        &mut |_stream, line| log(line),
    )?;
    drop(held);
    drop(locks);
    if outcome.run.exit_code != 0 {
        return Err(EngineError::RunFailed {
            command: exec.args.join(" "),
            exit_code: outcome.run.exit_code,
            tail: outcome
                .run
                .tail
                .iter()
                .map(|(_, line)| line.clone())
                .collect(),
        });
    }
    Ok(Output::Fs(outcome.snapshot.map(|s| s.id)))
}

fn write_private(
    path: &Path,
    value: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), EngineError> {
    std::fs::write(path, value).map_err(io_error("write secret file"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("chmod secret file"))?;
    chown(path, Some(uid), Some(gid)).map_err(io_error("chown secret file"))?;
    Ok(())
}
