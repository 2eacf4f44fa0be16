//! Checksum of a 20,000-file, ~200 MB build context: first run (nothing remembered, every
//! file read), second run (nothing changed: no file read), and after one file's content
//! changed (only that file read).
//! Run: `cargo bench -p kiln-bench --bench context_checksum`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kiln_solver::checksum::{ContextChecksum, Selection, checksum};
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
        0 => 300_000 + (rng.next() % 900_000) as usize,
        1..=9 => 8_000 + (rng.next() % 24_000) as usize,
        _ => (rng.next() % 7_000) as usize,
    }
}

fn generate(root: &Path) -> std::io::Result<(usize, u64)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    let mut buf = Vec::new();
    for i in 0..FILES {
        let dir = root.join(format!(
            "pkg{:02}/mod{:02}/src",
            i % TOP_DIRS,
            (i / TOP_DIRS) % SUB_DIRS
        ));
        if i < TOP_DIRS * SUB_DIRS {
            fs::create_dir_all(&dir)?;
        }
        let size = file_size(&mut rng);
        buf.clear();
        while buf.len() < size {
            buf.extend_from_slice(&rng.next().to_le_bytes());
        }
        buf.truncate(size);
        fs::write(dir.join(format!("file{i:05}.rs")), &buf)?;
        total += size as u64;
    }
    Ok((FILES, total))
}

fn timed(store: &Store, root: &Path) -> (Duration, ContextChecksum) {
    let start = Instant::now();
    let sum = match checksum(store, root, &Selection::default()) {
        Ok(sum) => sum,
        Err(e) => panic!("checksum failed: {e}"),
    };
    (start.elapsed(), sum)
}

fn report(label: &str, took: Duration, sum: &ContextChecksum) {
    println!(
        "{label:<28} {:>9.1} ms   hashed {:>6}   reused {:>6}",
        took.as_secs_f64() * 1000.0,
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
    report("first (nothing remembered)", took, &first);
    println!(
        "                             {:>9.0} MB/s",
        bytes as f64 / 1e6 / took.as_secs_f64()
    );

    let mut warm = Vec::new();
    let mut last = None;
    for _ in 0..WARM_RUNS {
        let (took, sum) = timed(&store, &root);
        warm.push(took);
        last = Some(sum);
    }
    warm.sort();
    let second = last.ok_or("no warm run")?;
    report("second (no change, median)", warm[WARM_RUNS / 2], &second);
    println!(
        "                             min {:.1} ms, max {:.1} ms",
        warm[0].as_secs_f64() * 1000.0,
        warm[WARM_RUNS - 1].as_secs_f64() * 1000.0
    );

    let touched = root.join("pkg07/mod03/src/file00627.rs");
    let mut content = fs::read(&touched).map_err(|e| e.to_string())?;
    content.iter_mut().take(16).for_each(|b| *b = !*b);
    fs::write(&touched, &content).map_err(|e| e.to_string())?;
    let (took, third) = timed(&store, &root);
    report("after one file changed", took, &third);

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
