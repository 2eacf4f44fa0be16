//! `KILN_TIMINGS=1`: how long a command took to reach each of its phases, on stderr, to
//! find where a no-op build's fixed cost goes. Off, a mark costs one relaxed load.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Starts the clock if `KILN_TIMINGS` is set; call first thing in `main`.
pub fn start() {
    START.get_or_init(|| {
        std::env::var_os("KILN_TIMINGS")
            .filter(|v| !v.is_empty() && v != "0")
            .map(|_| Instant::now())
    });
}

/// Prints `timing: <ms since start> <phase>` when timings are on.
pub fn mark(phase: &str) {
    if let Some(Some(start)) = START.get() {
        eprintln!(
            "timing: {:8.3} ms  {phase}",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
}
