//! The worker: turns ops into filesystem results. It owns overlayfs snapshots (prepare,
//! commit, layer unpacking, flattening), RUN execution through the runc binary (runtime
//! spec, output streaming, cancellation, stale cleanup), and resolving users, groups and
//! working directories inside an image's rootfs.

mod cancel;
mod error;
pub mod fileop;
mod materialize;
mod mountinfo;
mod rootpath;
pub mod runc;
mod scratch;
mod snapshotter;
mod step;
mod sys;
mod unpack;
mod untouched;
mod users;

pub use cancel::CancelToken;
pub use error::{Error, Result};
pub use materialize::materialize;
pub use mountinfo::{is_mount_point, mounts_under};
pub use rootpath::resolve_in_root;
pub use runc::{
    CleanupReport, ExtraMount, NetworkMode, ProcessSpec, RunResult, RuncExecutor, Stream,
    cleanup_stale,
};
pub use snapshotter::{ActiveMount, LowerMode, Snapshotter};
pub use step::{StepOutcome, run_step};
pub use unpack::{UnpackStats, unpack_layer, unpack_layer_auto};
pub use users::{ResolvedUser, ensure_workdir, resolve_chown, resolve_user};

/// Whether this process can mount and run containers (tests skip without it).
pub fn have_root() -> bool {
    sys::is_root()
}
