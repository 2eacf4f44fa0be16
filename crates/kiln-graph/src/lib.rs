//! The build graph: the frontend lowers the selected stages into content-addressed ops
//! (image source, local source, exec, file ops, merge). An op's digest covers its own
//! definition and the digests of its inputs, so two identical ops — in one Dockerfile or
//! across every target of a bake file — are one node.
//!
//! This crate owns the op definitions, their digests and the graph structure; it does not
//! execute anything (that is the solver's and the worker's job).

mod graph;
pub mod lower;
mod op;

pub use graph::{Graph, GraphError, Node, NodeId};
pub use op::{
    CacheSharing, ChmodSpec, CopyAction, ExecMount, ExecOp, FileAction, FileOp, HttpSource,
    ImageSource, LocalSource, MountKind, NetworkMode, Op, OpDigest, Ownership, SecurityMode,
};
