//! The build graph: the frontend lowers the selected stages into content-addressed
//! ops (image source, local source, exec, file ops, merge). Identical ops share one node.
//!
//! This crate owns the op definitions and their digests; it does not execute anything.
