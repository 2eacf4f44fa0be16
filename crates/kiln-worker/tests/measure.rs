//! Timing of the moving parts, printed for the record (`--nocapture`); the bounds asserted
//! are loose sanity limits, not benchmarks.

mod common;

use std::time::{Duration, Instant};

use common::{can_run_containers, fixture};
use kiln_worker::{CancelToken, ProcessSpec};

fn summary(name: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    let avg = samples.iter().sum::<Duration>() / samples.len() as u32;
    eprintln!(
        "{name}: avg {avg:.2?}, min {:.2?}, median {:.2?}, max {:.2?} ({} runs)",
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
        samples.len()
    );
    avg
}

#[test]
fn overheads_of_mounts_and_runs() {
    if !can_run_containers("overheads_of_mounts_and_runs") {
        return;
    }
    let f = fixture();
    {
        let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = table
            .lines()
            .find(|l| l.contains(active.rootfs().to_str().unwrap()))
            .unwrap();
        eprintln!("mount: {}", &line[line.find(" - ").unwrap()..]);
    }
    let (mut prepare, mut abort, mut run, mut commit) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..15 {
        let t = Instant::now();
        let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
        prepare.push(t.elapsed());
        let t = Instant::now();
        let res = f
            .executor
            .run(
                active.rootfs(),
                &ProcessSpec::new(["true"]),
                &CancelToken::new(),
                &mut |_, _| {},
            )
            .unwrap();
        run.push(t.elapsed());
        assert_eq!(res.exit_code, 0);
        let t = Instant::now();
        if i % 3 == 0 {
            let rec = f.snapshotter.commit(active, "true").unwrap();
            commit.push(t.elapsed());
            f.snapshotter.remove(&rec.id).unwrap();
        } else {
            f.snapshotter.abort(active).unwrap();
            abort.push(t.elapsed());
        }
    }
    let mut bare = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
        f.snapshotter.abort(active).unwrap();
        bare.push(t.elapsed());
    }
    summary("overlay prepare + abort, no container", &mut bare);
    summary("overlay prepare (dirs + mount)", &mut prepare);
    summary(
        "overlay abort after a container ran (unmount + rm)",
        &mut abort,
    );
    summary("commit (unmount + syncfs + rename + db row)", &mut commit);
    let per_run = summary(
        "RUN `true` via runc (spec, bundle, runc run, delete)",
        &mut run,
    );
    assert!(per_run < Duration::from_secs(5));
}
