//! Base images are unpacked only when a step needs to see their files.

mod support;

use std::fs;
use std::path::Path;

use support::{Env, Layout, run_ok};

/// Snapshot directories in the store at `store`.
fn snapshots(store: &Path) -> usize {
    fs::read_dir(store.join("snapshots")).map_or(0, |entries| entries.count())
}

#[test]
fn an_image_no_step_reads_is_never_unpacked() {
    let Some(env) = Env::new() else { return };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nENV MODE=lazy\nLABEL app=demo\n",
        )],
    );
    let archive = env.path("image.tar");
    let output = format!("type=oci,dest={}", archive.display());
    env.build_ok(&["-t", "app:lazy", "--output", &output, ctx.to_str().unwrap()]);
    assert_eq!(snapshots(&env.store), 0, "the base image was unpacked");
    // The image still has the base's layer and runs.
    let layout = Layout::from_archive(&archive, &env.path("layout")).dir;
    let inspected = run_ok("skopeo", &["inspect", &format!("oci:{}", layout.display())]);
    assert!(inspected.contains("MODE=lazy"), "{inspected}");

    // A step that reads the files unpacks the base once, and later builds reuse it.
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo hi > /hi\n").unwrap();
    env.build_ok(&["-t", "app:run", ctx.to_str().unwrap()]);
    let after_run = snapshots(&env.store);
    assert_eq!(after_run, 2, "one base layer and the RUN's result");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo other > /other\n",
    )
    .unwrap();
    env.build_ok(&["-t", "app:other", ctx.to_str().unwrap()]);
    assert_eq!(snapshots(&env.store), 3, "the base was unpacked once");
}
