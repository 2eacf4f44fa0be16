//! Checksum of a 20,000-file, ~200 MB build context: first run (nothing remembered, every
//! file read), second run (nothing changed: no file read), and after one file's content
//! changed (only that file read); and the check of the stat plan the whole-build short cut
//! makes instead (one `statx` per path the walk observed: nothing listed, read or looked
//! up).
//! Run: `cargo bench -p kiln-bench --bench context_checksum`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kiln_solver::checksum::{ContextChecksum, Selection, checksum, plan_holds};
use kiln_store::Store;

const FILES: usize = 20_000;
const TOP_DIRS: usize = 20;
const SUB_DIRS: usize = 10;
/// Repetitions of the no-change run; the median is reported.
const WARM_RUNS: usize = 7;

/// Deterministic pseudo-random numbers (xorshift64), so every run builds the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Mostly small files, some medium, one in a hundred large: about 200 MB in all.
fn file_size(rng: &mut Rng) -> usize {
    match rng.next() % 100 {
        0 => 200_000 + (rng.next() % 700_000) as usize,
        1..=9 => 8_000 + (rng.next() % 24_000) as usize,
        _ => (rng.next() % 7_000) as usize,
    }
}

/// File `i` of the generated tree: spread over `TOP_DIRS * SUB_DIRS` directories.
fn file_path(root: &Path, i: usize) -> PathBuf {
    root.join(format!(
        "pkg{:02}/mod{:02}/src/file{i:05}.rs",
        i % TOP_DIRS,
        (i / TOP_DIRS) % SUB_DIRS
    ))
}

fn generate(root: &Path) -> std::io::Result<(usize, u64)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    let mut buf = Vec::new();
    for i in 0..FILES {
        let path = file_path(root, i);
        if i < TOP_DIRS * SUB_DIRS
            && let Some(dir) = path.parent()
        {
            fs::create_dir_all(dir)?;
        }
        let size = file_size(&mut rng);
        buf.clear();
        while buf.len() < size {
            buf.extend_from_slice(&rng.next().to_le_bytes());
        }
        buf.truncate(size);
        fs::write(&path, &buf)?;
        total += size as u64;
    }
    Ok((FILES, total))
}

/// CPU time of the calling thread, from the kernel's scheduler statistics. Wall time on
/// a busy machine includes waiting for a core; this does not (the runs without files to
/// read stay on the calling thread).
fn thread_cpu() -> Duration {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

struct Timing {
    wall: Duration,
    cpu: Duration,
}

fn timed(store: &Store, root: &Path) -> (Timing, ContextChecksum) {
    let (start, cpu) = (Instant::now(), thread_cpu());
    let sum = match checksum(store, root, &Selection::default()) {
        Ok(sum) => sum,
        Err(e) => panic!("checksum failed: {e}"),
    };
    let timing = Timing {
        wall: start.elapsed(),
        cpu: thread_cpu().saturating_sub(cpu),
    };
    (timing, sum)
}

fn report(label: &str, took: &Timing, sum: &ContextChecksum) {
    println!(
        "{label:<28} {:>8.1} ms wall {:>8.1} ms cpu(main thread)   hashed {:>6}   reused {:>6}",
        took.wall.as_secs_f64() * 1000.0,
        took.cpu.as_secs_f64() * 1000.0,
        sum.files_hashed,
        sum.files_reused
    );
}

fn run(work: &Path) -> Result<(), String> {
    let root = work.join("context");
    let store = Store::open(work.join("store")).map_err(|e| e.to_string())?;
    fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let (files, bytes) = generate(&root).map_err(|e| e.to_string())?;
    println!(
        "context: {files} files, {:.0} MB, {} directories",
        bytes as f64 / 1e6,
        TOP_DIRS * SUB_DIRS
    );
    // Files younger than the checksum's racy window (1 s) are hashed but not remembered;
    // wait so the first run can remember all of them, as with any real checkout.
    std::thread::sleep(Duration::from_millis(1100));

    let (took, first) = timed(&store, &root);
    report("first (nothing remembered)", &took, &first);
    println!(
        "{:<28} {:>8.0} MB/s",
        "",
        bytes as f64 / 1e6 / took.wall.as_secs_f64()
    );

    let mut warm = Vec::new();
    let mut last = None;
    for _ in 0..WARM_RUNS {
        let (took, sum) = timed(&store, &root);
        warm.push(took);
        last = Some(sum);
    }
    warm.sort_by_key(|t| t.wall);
    let second = last.ok_or("no warm run")?;
    report("second (no change, median)", &warm[WARM_RUNS / 2], &second);
    report("second (no change, fastest)", &warm[0], &second);

    let plan = second
        .stat_plan
        .clone()
        .ok_or("a settled context's checksum carries no stat plan")?;
    let mut checks = Vec::new();
    for _ in 0..WARM_RUNS {
        let start = Instant::now();
        let holds = plan_holds(&root, &Selection::default(), &plan.bytes);
        checks.push(start.elapsed());
        if !holds {
            return Err("the stat plan does not hold for an unchanged context".to_string());
        }
    }
    checks.sort();
    println!(
        "{:<28} {:>8.1} ms wall (median of {WARM_RUNS}; fastest {:.1} ms; plan {} KB)",
        "stat plan check, no change",
        checks[WARM_RUNS / 2].as_secs_f64() * 1000.0,
        checks[0].as_secs_f64() * 1000.0,
        plan.bytes.len() / 1000
    );

    let touched = file_path(&root, 627);
    let mut content = fs::read(&touched).map_err(|e| e.to_string())?;
    content.iter_mut().take(16).for_each(|b| *b = !*b);
    fs::write(&touched, &content).map_err(|e| e.to_string())?;
    let (took, third) = timed(&store, &root);
    report("after one file changed", &took, &third);

    let mut problems = Vec::new();
    if first.files_hashed != FILES {
        problems.push(format!("first run hashed {} files", first.files_hashed));
    }
    if second.files_hashed != 0 || second.digest != first.digest {
        problems.push("second run re-read files or changed the digest".to_string());
    }
    if third.files_hashed != 1 || third.digest == first.digest {
        problems.push(format!("third run hashed {} files", third.files_hashed));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn main() -> ExitCode {
    let work: PathBuf =
        std::env::temp_dir().join(format!("kiln-bench-context-{}", std::process::id()));
    let outcome = run(&work);
    let _ = fs::remove_dir_all(&work);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("context_checksum: {e}");
            ExitCode::FAILURE
        }
    }
}
