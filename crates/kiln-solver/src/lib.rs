//! The solver: walks the build graph, runs every op a request needs once, independent ops
//! in parallel up to a bound, and reports progress events as ops start, log and finish.
//!
//! It owns scheduling only. What an op does is the executor's business (the worker runs
//! it; the cache answers it without running); the solver just guarantees that an op runs
//! after all its inputs succeeded, at most `max_parallelism` at a time, and that after a
//! failure nothing new starts (fail-fast) or only ops that do not depend on it (keep-going).
//!
//! Around the scheduler: `engine` makes ops real (with the build cache in `engine::cache`
//! and lazy, not-yet-unpacked filesystems in `engine::lazy`), `remote_cache` shares cache
//! records between stores through OCI layouts or registries (`--cache-from`/`--cache-to`),
//! `checksum` sums context reads, `build` plans requests into graphs and `session` ties a
//! store, a solve and the exports of one `kiln build` or `kiln bake` together.

pub mod build;
pub mod checksum;
pub mod engine;
pub mod remote_cache;
mod schedule;
pub mod session;

pub use schedule::{Event, Executor, SolveOptions, SolveOutcome, solve};
