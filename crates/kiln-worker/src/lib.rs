//! The worker: turns ops into filesystem results. It owns overlayfs snapshots,
//! RUN execution through the runc binary, and file ops (copy, mkdir, mkfile).
