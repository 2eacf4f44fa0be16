//! `RUN --mount=type=cache` directories as garbage collection sees them: each is a record
//! of type `exec.cachemount` in `kiln du`, named by its id, whose last use is the last time
//! a RUN mounted it (reading counts, not only writing). The collection rule itself is
//! tested against the store in kiln-store's gc tests.

mod support;

use std::fs;

use support::{Env, text};

/// The cache mount records `kiln du --format json` lists: (description, last used ms).
fn cache_mounts(env: &Env) -> Vec<(String, i64)> {
    let out = env.kiln(&["du", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .filter(|r| r["Type"] == "exec.cachemount")
        .map(|r| {
            (
                r["Description"].as_str().unwrap_or_default().to_string(),
                r["LastUsedMs"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn du_lists_cache_mounts_with_the_time_a_run_last_used_them() {
    let Some(env) = Env::new() else { return };
    let writer = env.context(
        "writer",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/cache echo fetched > /cache/pkg\n",
        )],
    );
    env.build_ok(&[writer.to_str().unwrap()]);
    let first = cache_mounts(&env);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, "RUN --mount=type=cache,id=pkgs");

    std::thread::sleep(std::time::Duration::from_millis(20));
    // Another step only reads the cache: its use still counts.
    let reader = env.context(
        "reader",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/cache,sharing=locked cat /cache/pkg > /seen\n",
        )],
    );
    let out = env.path("out");
    let output = format!("type=local,dest={}", out.display());
    env.build_ok(&["--output", &output, reader.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(out.join("seen")).unwrap(), "fetched\n");
    let second = cache_mounts(&env);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second[0].1 > first[0].1, "{first:?} then {second:?}");
}
