//! Running RUN steps in containers with the runc binary.
//!
//! Each run gets a bundle in `tmp/run-<container id>/` (locked while the run lasts) and a
//! runc state directory under `<store>/runc`, so stale cleanup only ever touches
//! containers kiln made.

mod output;
mod spec;
mod stale;
mod stubs;

use std::collections::VecDeque;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kiln_store::Store;

use crate::cancel::CancelToken;
use crate::error::{Error, Result, io_err};
use crate::scratch::Scratch;
use crate::snapshotter::remove_scratch_dir;
use crate::sys;
use crate::users::{ensure_workdir, resolve_user};

pub use output::Stream;
pub use spec::{
    DEFAULT_CAPABILITIES, DEFAULT_PATH, ExtraMount, NetworkMode, ProcessSpec, build_spec,
};
pub use stale::{CleanupReport, cleanup_stale};

pub const DEFAULT_RUNC: &str = "/usr/sbin/runc";
pub(crate) const RUN_PREFIX: &str = "run-";
pub(crate) const CONTAINER_PREFIX: &str = "kiln-";

/// How a finished run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The process's exit code, or 128 + signal number if a signal ended it.
    pub exit_code: i32,
    /// The last lines of output (both streams, in arrival order).
    pub tail: Vec<(Stream, String)>,
    pub container_id: String,
    /// From starting runc to its exit.
    pub duration: Duration,
}

/// Runs processes in containers through the runc binary.
#[derive(Debug, Clone)]
pub struct RuncExecutor {
    runc: PathBuf,
    state_root: PathBuf,
    tmp: PathBuf,
    tail_lines: usize,
}

impl RuncExecutor {
    /// Uses `KILN_RUNC` if set, else `/usr/sbin/runc`, else `runc` from `PATH`.
    pub fn new(store: &Store) -> Self {
        let runc = std::env::var_os("KILN_RUNC")
            .map(PathBuf::from)
            .or_else(|| {
                Path::new(DEFAULT_RUNC)
                    .exists()
                    .then(|| PathBuf::from(DEFAULT_RUNC))
            })
            .unwrap_or_else(|| PathBuf::from("runc"));
        Self {
            runc,
            state_root: store.root().join("runc"),
            tmp: store.tmp_dir(),
            tail_lines: 100,
        }
    }

    pub fn with_runc_binary(mut self, runc: impl Into<PathBuf>) -> Self {
        self.runc = runc.into();
        self
    }

    /// How many output lines [`RunResult::tail`] keeps.
    pub fn with_tail_lines(mut self, n: usize) -> Self {
        self.tail_lines = n;
        self
    }

    /// runc's `--root`: the state of kiln's containers and nobody else's.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// Runs `process` with `rootfs` (a mounted snapshot) as its root filesystem, passing each
    /// output line to `on_output` as it arrives. Returns when the process has exited and
    /// the container is gone; on cancel the container is killed and `Err(Cancelled)`
    /// returned, again only after everything is cleaned up.
    pub fn run(
        &self,
        rootfs: &Path,
        process: &ProcessSpec,
        cancel: &CancelToken,
        on_output: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunResult> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let user = resolve_user(rootfs, &process.user)?;
        ensure_workdir(rootfs, Path::new(&process.cwd), user.uid, user.gid)?;
        let stubs = stubs::Stubs::record(rootfs, process)?;
        let id = format!("{CONTAINER_PREFIX}{}", kiln_store::fsutil::random_hex(8));
        fs::create_dir_all(&self.state_root).map_err(io_err("create", &self.state_root))?;
        let scratch = Scratch::create(&self.tmp, RUN_PREFIX, &id)?;
        let result =
            self.run_in_bundle(&scratch.dir, &id, rootfs, process, &user, cancel, on_output);
        let cleanup = self
            .delete_container(&id)
            .and_then(|()| remove_scratch_dir(&scratch.dir));
        scratch.release();
        let stub_cleanup = stubs.remove_created();
        let result = result?;
        cleanup?;
        stub_cleanup?;
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_in_bundle(
        &self,
        bundle: &Path,
        id: &str,
        rootfs: &Path,
        process: &ProcessSpec,
        user: &crate::users::ResolvedUser,
        cancel: &CancelToken,
        on_output: &mut dyn FnMut(Stream, &str),
    ) -> Result<RunResult> {
        let files_dir = bundle.join("files");
        fs::create_dir(&files_dir).map_err(io_err("create", &files_dir))?;
        for (i, m) in process.mounts.iter().enumerate() {
            if let ExtraMount::File { contents, .. } = m {
                let p = spec::file_mount_source(&files_dir, i);
                fs::write(&p, contents).map_err(io_err("write", &p))?;
            }
        }
        let spec = build_spec(rootfs, process, user, &files_dir, &format!("/kiln/{id}"))?;
        let config = bundle.join("config.json");
        fs::write(&config, serde_json::to_vec(&spec)?).map_err(io_err("write", &config))?;

        let started = Instant::now();
        let mut child = Command::new(&self.runc)
            .arg("--root")
            .arg(&self.state_root)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal reaches kiln only, which then
            // cancels in order, instead of runc forwarding SIGINT into the container.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::RuncSpawn {
                runc: self.runc.clone(),
                source,
            })?;
        let runc_pid = child.id();
        let (tx, rx) = mpsc::channel();
        let readers = [
            child
                .stdout
                .take()
                .map(|s| output::spawn_reader(s, Stream::Stdout, tx.clone())),
            child
                .stderr
                .take()
                .map(|s| output::spawn_reader(s, Stream::Stderr, tx.clone())),
        ];
        let open_streams = readers.iter().flatten().count();
        let waiter_tx = tx.clone();
        drop(tx);
        std::thread::spawn(move || {
            let _ = waiter_tx.send(output::Event::Exited(child.wait()));
        });

        let mut tail = VecDeque::new();
        let mut status: Option<std::io::Result<ExitStatus>> = None;
        let mut closed = 0;
        let mut drain_deadline = None;
        let mut cancel_started: Option<Instant> = None;
        let mut last_kill: Option<Instant> = None;
        loop {
            if status.is_some()
                && (closed >= open_streams || drain_deadline.is_some_and(|d| Instant::now() > d))
            {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(output::Event::Line(stream, line)) => {
                    on_output(stream, &line);
                    if self.tail_lines > 0 {
                        if tail.len() == self.tail_lines {
                            tail.pop_front();
                        }
                        tail.push_back((stream, line));
                    }
                }
                Ok(output::Event::Closed) => closed += 1,
                Ok(output::Event::Exited(s)) => {
                    status = Some(s);
                    // Output still buffered in the pipes arrives right after; a process that
                    // handed its pipe to a daemon outside the container must not hang us.
                    drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if status.is_none() && cancel.is_cancelled() {
                let since = *cancel_started.get_or_insert_with(Instant::now);
                // Repeat: the container may not exist yet when cancel arrives.
                if last_kill.is_none_or(|t| t.elapsed() > Duration::from_millis(100)) {
                    let _ = self.runc_quiet(&["kill", id, "KILL"]);
                    last_kill = Some(Instant::now());
                }
                if since.elapsed() > Duration::from_secs(10) {
                    let _ = sys::kill(runc_pid, libc::SIGKILL);
                }
            }
        }
        let duration = started.elapsed();
        if cancel_started.is_some() {
            return Err(Error::Cancelled);
        }
        let status = status
            .unwrap_or_else(|| Err(std::io::Error::other("runc output channel closed early")))
            .map_err(|source| Error::RuncSpawn {
                runc: self.runc.clone(),
                source,
            })?;
        let exit_code = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            (None, None) => -1,
        };
        Ok(RunResult {
            exit_code,
            tail: tail.into(),
            container_id: id.to_owned(),
            duration,
        })
    }

    /// Removes the container's runc state if any is left (runc run removes it itself when
    /// it gets to finish normally).
    pub(crate) fn delete_container(&self, id: &str) -> Result<()> {
        if !self.state_root.join(id).exists() {
            return Ok(());
        }
        let out = self.runc_quiet(&["delete", "--force", id])?;
        if !out.status.success() && self.state_root.join(id).exists() {
            return Err(Error::Runc {
                op: "delete",
                id: id.to_owned(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }

    fn runc_quiet(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new(&self.runc)
            .arg("--root")
            .arg(&self.state_root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::RuncSpawn {
                runc: self.runc.clone(),
                source,
            })
    }
}
