//! The solver: walks the build graph, runs every op a request needs once, independent ops
//! in parallel up to a bound, and reports progress events as ops start, log and finish.
//!
//! It owns scheduling only. What an op does is the executor's business (the worker runs
//! it; the cache answers it without running); the solver just guarantees that an op runs
//! after all its inputs succeeded, at most `max_parallelism` at a time, and that after a
//! failure nothing new starts (fail-fast) or only ops that do not depend on it (keep-going).

pub mod build;
pub mod checksum;
pub mod engine;
pub mod remote_cache;
mod schedule;
pub mod session;

pub use schedule::{Event, Executor, SolveOptions, SolveOutcome, solve};
