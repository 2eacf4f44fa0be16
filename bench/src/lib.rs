//! Shared helpers for kiln benchmarks (run with `cargo bench -p kiln-bench`).
