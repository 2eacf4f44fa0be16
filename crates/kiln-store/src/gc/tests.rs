use std::fs;
use std::time::Duration;

use super::*;
use crate::Digest;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// A snapshot with `bytes` of file data, last used `age_ms` ago.
fn snap(store: &Store, id: &str, parent: Option<&str>, bytes: usize, age_ms: i64) {
    let dir = store.snapshot_dir(id).unwrap().join("fs");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("data"), vec![7u8; bytes]).unwrap();
    store.add_snapshot(id, parent, bytes as u64, id).unwrap();
    store.set_snapshot_last_used(id, now_ms() - age_ms).unwrap();
}

fn ids(report: &PruneReport) -> Vec<&str> {
    report.removed.iter().map(|r| r.id.as_str()).collect()
}

fn open() -> (tempfile::TempDir, Store) {
    crate::temp_store()
}

/// `kiln prune --all`.
fn prune_all(store: &Store) -> PruneReport {
    prune(
        store,
        &PrunePolicy {
            all: true,
            ..PrunePolicy::default()
        },
    )
    .unwrap()
}

/// Dates the blobs `digests` an hour back.
fn age_blobs(store: &Store, digests: &[&Digest]) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for d in digests {
        fs::File::options()
            .write(true)
            .open(store.blob_path(d))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

#[test]
fn least_recently_used_goes_first_whatever_its_size() {
    let (_d, store) = open();
    snap(&store, "oldsmall", None, 10, 3 * DAY);
    snap(&store, "newbig", None, 100_000, 2 * MINUTE);
    let limit = PrunePolicy {
        max_used_space: Some(Space::Bytes(100_000)),
        ..PrunePolicy::default()
    };
    let report = prune(&store, &limit).unwrap();
    assert_eq!(ids(&report), ["oldsmall"]);
    assert!(store.snapshot("newbig").unwrap().is_some());
    assert!(!store.snapshot_dir("oldsmall").unwrap().exists());
}

#[test]
fn build_roots_of_tagged_images_survive_unless_all() {
    let (_d, store) = open();
    snap(&store, "base", None, 10, 5 * DAY);
    snap(&store, "old", Some("base"), 10, 5 * DAY);
    snap(&store, "top", Some("old"), 10, 5 * DAY);
    snap(&store, "other", Some("base"), 10, 5 * DAY);
    store
        .cache_insert("k-top", Some("top"), "step top", "{}")
        .unwrap();
    store
        .cache_insert("k-other", Some("other"), "step other", "{}")
        .unwrap();
    store
        .set_snapshot_last_used("top", now_ms() - 5 * DAY)
        .unwrap();
    store
        .set_snapshot_last_used("other", now_ms() - 5 * DAY)
        .unwrap();
    let manifest = store.put_blob_bytes(b"{}").unwrap();
    store.tag("app:1", &manifest).unwrap();
    store.record_build_root("app:1", &["top"]).unwrap();
    store.record_build_root("gone:1", &["other"]).unwrap();

    let report = prune(&store, &PrunePolicy::default()).unwrap();
    assert_eq!(ids(&report), ["other"]);
    for id in ["base", "old", "top"] {
        assert!(store.snapshot(id).unwrap().is_some(), "{id} removed");
    }
    let keys: Vec<_> = store
        .cache_records()
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, ["k-top"]);

    let all = prune_all(&store);
    assert_eq!(ids(&all), ["top", "old", "base"], "leaves first");
    assert!(store.list_snapshots().unwrap().is_empty());
    assert!(store.cache_records().unwrap().is_empty());
    assert!(store.build_roots().unwrap().is_empty());
    // The tagged image's manifest is never collected.
    assert!(store.has_blob(&manifest));
}

#[test]
fn until_keeps_what_was_used_recently() {
    let (_d, store) = open();
    snap(&store, "week", None, 10, 7 * DAY);
    snap(&store, "hour", None, 10, 60 * MINUTE);
    snap(&store, "now", None, 10, 0);
    let policy = PrunePolicy {
        keep_duration: Some(Duration::from_secs(24 * 3600)),
        ..PrunePolicy::default()
    };
    assert_eq!(ids(&prune(&store, &policy).unwrap()), ["week"]);
    // Without an age the grace period still protects what was used a moment ago.
    assert_eq!(
        ids(&prune(&store, &PrunePolicy::default()).unwrap()),
        ["hour"]
    );
}

#[test]
fn a_parent_goes_only_after_its_children_and_is_as_recent_as_them() {
    let (_d, store) = open();
    snap(&store, "p", None, 10, 9 * DAY);
    snap(&store, "c", Some("p"), 10, DAY);
    snap(&store, "lone", None, 10, 3 * DAY);
    let one = PrunePolicy {
        max_used_space: Some(Space::Bytes(25)),
        ..PrunePolicy::default()
    };
    // p is older than lone, but its child was used more recently.
    assert_eq!(ids(&prune(&store, &one).unwrap()), ["lone"]);
}

#[test]
fn keep_storage_keeps_the_newest_up_to_the_size() {
    let (_d, store) = open();
    for (i, age) in [5, 4, 3, 2, 1].iter().enumerate() {
        snap(&store, &format!("s{i}"), None, 1000, age * DAY);
    }
    let policy = PrunePolicy {
        keep_storage: Some(Space::Bytes(2500)),
        ..PrunePolicy::default()
    };
    let report = prune(&store, &policy).unwrap();
    assert_eq!(ids(&report), ["s0", "s1", "s2"]);
    assert_eq!(report.reclaimed, 3000);
    let left: Vec<_> = store
        .list_snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["s3", "s4"]);
}

#[test]
fn unreferenced_blobs_go_and_image_blobs_stay() {
    let (_d, store) = open();
    let layer = store.put_blob_bytes(b"layer bytes").unwrap();
    let manifest_json = format!("{{\"layers\":[{{\"digest\":\"{layer}\"}}]}}");
    let manifest = store.put_blob_bytes(manifest_json.as_bytes()).unwrap();
    let loose = store.put_blob_bytes(b"nobody").unwrap();
    let fresh = store.put_blob_bytes(b"just written").unwrap();
    store.tag("app:1", &manifest).unwrap();
    age_blobs(&store, &[&layer, &manifest, &loose]);
    let usage = usage(&store).unwrap();
    let reclaimable: Vec<_> = usage
        .records
        .iter()
        .filter(|r| r.reclaimable)
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(reclaimable.len(), 2, "{reclaimable:?}");
    let report = prune_all(&store);
    assert_eq!(ids(&report), [loose.to_string().as_str()]);
    assert!(store.has_blob(&layer) && store.has_blob(&manifest) && store.has_blob(&fresh));
    store.remove_image("app:1").unwrap();
    let report = prune(&store, &PrunePolicy::default()).unwrap();
    assert_eq!(report.removed.len(), 2);
    assert!(!store.has_blob(&layer));
    let _ = Digest::of_bytes(b"");
}

#[test]
fn blobs_of_pulled_base_images_stay() {
    let (_d, store) = open();
    let layer = store.put_blob_bytes(b"base layer").unwrap();
    let manifest_json = format!("{{\"layers\":[{{\"digest\":\"{layer}\"}}]}}");
    let manifest = store.put_blob_bytes(manifest_json.as_bytes()).unwrap();
    store
        .record_pulled_image(
            "r.example/base:1",
            "linux/amd64",
            &manifest,
            "r.example/base",
        )
        .unwrap();
    age_blobs(&store, &[&layer, &manifest]);
    let report = prune_all(&store);
    assert!(report.removed.is_empty(), "{:?}", ids(&report));
    assert!(store.has_blob(&layer) && store.has_blob(&manifest));
}

#[test]
fn cache_mounts_need_all_or_an_explicit_age() {
    let (_d, store) = open();
    let name = "ab".repeat(32);
    let dir = store.root().join("cache-mounts").join(&name);
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pkg");
    fs::write(&file, vec![1u8; 5000]).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::File::open(&dir).unwrap().set_modified(old).unwrap();
    let u = usage(&store).unwrap();
    assert!(
        u.records
            .iter()
            .any(|r| r.kind == RecordKind::CacheMount && r.size >= 5000)
    );
    assert!(
        prune(&store, &PrunePolicy::default())
            .unwrap()
            .removed
            .is_empty()
    );
    let young = PrunePolicy {
        kinds: vec![RecordKind::CacheMount],
        keep_duration: Some(Duration::from_secs(4 * 86_400)),
        ..PrunePolicy::default()
    };
    assert!(prune(&store, &young).unwrap().removed.is_empty());
    let aged = PrunePolicy {
        keep_duration: Some(Duration::from_secs(2 * 86_400)),
        ..young
    };
    assert_eq!(ids(&prune(&store, &aged).unwrap()), [name.as_str()]);
    assert!(!dir.exists());
}

#[test]
fn sizes_missing_from_rows_are_measured_and_orphans_collected() {
    let (_d, store) = open();
    let dir = store.snapshot_dir("z").unwrap().join("fs");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f"), vec![0u8; 9000]).unwrap();
    store.add_snapshot("z", None, 0, "unsized").unwrap();
    let u = usage(&store).unwrap();
    assert!(u.records[0].size >= 9000);
    assert_eq!(
        store.snapshot("z").unwrap().unwrap().size,
        u.records[0].size
    );
    fs::create_dir_all(store.snapshot_dir("orphan").unwrap().join("fs")).unwrap();
    let report = prune(&store, &PrunePolicy::default()).unwrap();
    assert_eq!(ids(&report), ["orphan"]);
    assert!(store.snapshot("z").unwrap().is_some());
}

#[test]
fn size_targets_combine_like_buildkit() {
    let fs = Some(FsSpace {
        total: 1000,
        free: 100,
    });
    let p = |f: fn(&mut PrunePolicy)| {
        let mut p = PrunePolicy::default();
        f(&mut p);
        p
    };
    assert_eq!(PrunePolicy::default().target(500, fs), None);
    assert_eq!(
        p(|p| p.max_used_space = Some(Space::Bytes(300))).target(500, fs),
        Some(300)
    );
    assert_eq!(
        p(|p| p.reserved_space = Some(Space::Percent(10.0))).target(500, fs),
        Some(100)
    );
    // 200 free wanted, 100 free: usage must drop by 100.
    assert_eq!(
        p(|p| p.min_free_space = Some(Space::Bytes(200))).target(500, fs),
        Some(400)
    );
    let both = p(|p| {
        p.max_used_space = Some(Space::Bytes(50));
        p.reserved_space = Some(Space::Bytes(80));
    });
    assert_eq!(both.target(500, fs), Some(80));
}

/// A cache mount directory with `bytes` of data, last mounted by a step `age_ms` ago
/// and not written since.
fn cache_mount(store: &Store, id: &str, bytes: usize, age_ms: i64) -> String {
    let key = Digest::of_bytes(id.as_bytes()).hex().to_string();
    let dir = store.root().join("cache-mounts").join(&key);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("pkg"), vec![1u8; bytes]).unwrap();
    drop(store.use_cache_mount(&key, id, false).unwrap());
    let when = now_ms() - age_ms;
    store
        .conn()
        .execute(
            "UPDATE cache_mounts SET last_used_ms = ?1 WHERE key = ?2",
            rusqlite::params![when, key],
        )
        .unwrap();
    let old = std::time::UNIX_EPOCH + Duration::from_millis(when as u64);
    for path in [dir.join("pkg"), dir.clone()] {
        fs::File::open(&path).unwrap().set_modified(old).unwrap();
    }
    key
}

#[test]
fn cache_mounts_go_by_their_own_rule_least_recently_used_first() {
    let (_d, store) = open();
    let stale = cache_mount(&store, "/var/cache/apt", 6000, 5 * DAY);
    let older = cache_mount(&store, "/root/.npm", 3000, 9 * DAY);
    let recent = cache_mount(&store, "/root/.cache/go", 4000, 2 * 3_600_000);
    snap(&store, "ancient", None, 10, 30 * DAY);
    let u = usage(&store).unwrap();
    let shown = u.records.iter().find(|r| r.id == stale).unwrap();
    assert_eq!(shown.kind.as_str(), "exec.cachemount");
    assert_eq!(
        shown.description,
        "RUN --mount=type=cache,id=/var/cache/apt"
    );
    assert!(shown.size >= 6000 && shown.reclaimable && !shown.in_use);

    let rule = PrunePolicy {
        kinds: vec![RecordKind::CacheMount],
        keep_duration: Some(Duration::from_secs(2 * 86_400)),
        ..PrunePolicy::default()
    };
    let report = prune(&store, &rule).unwrap();
    // Least recently used first; the one used two hours ago and the snapshot stay.
    assert_eq!(ids(&report), [older.as_str(), stale.as_str()]);
    let mounts = store.root().join("cache-mounts");
    assert!(mounts.join(&recent).exists() && !mounts.join(&stale).exists());
    assert!(store.snapshot("ancient").unwrap().is_some());
    let known: Vec<String> = store
        .cache_mounts()
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(known, std::slice::from_ref(&recent));
    // A policy without the type leaves cache mounts alone, however old.
    let everything_old = PrunePolicy {
        keep_duration: Some(Duration::from_secs(60)),
        ..PrunePolicy::default()
    };
    cache_mount(&store, "/root/.npm", 3000, 9 * DAY);
    let report = prune(&store, &everything_old).unwrap();
    assert_eq!(ids(&report), ["ancient"]);
}

#[test]
fn a_cache_mount_a_step_holds_is_never_removed() {
    let (_d, store) = open();
    let key = cache_mount(&store, "/root/.cache", 1000, 5 * DAY);
    let running = store.use_cache_mount(&key, "/root/.cache", false).unwrap();
    // The step above recorded a use now; make it look old again, as a long step would.
    store
        .conn()
        .execute("UPDATE cache_mounts SET last_used_ms = 0", [])
        .unwrap();
    let all = PrunePolicy {
        all: true,
        ..PrunePolicy::default()
    };
    let held = usage(&store).unwrap();
    assert!(
        held.records
            .iter()
            .any(|r| r.id == key && r.in_use && !r.reclaimable)
    );
    assert!(prune(&store, &all).unwrap().removed.is_empty());
    drop(running);
    assert_eq!(ids(&prune(&store, &all).unwrap()), [key.as_str()]);
}

#[test]
fn a_collection_forgets_short_cuts_whose_image_lost_its_name() {
    let (_dir, store) = open();
    let old = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
    let new = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
    let plan = format!("plan:{}", "c".repeat(64));
    store.tag("app:1", &old).unwrap();
    store
        .record_shortcut("commit-1", &old.to_string(), "{}", &[(&plan, Some(b"p"))])
        .unwrap();
    store.tag("app:1", &new).unwrap();
    store
        .record_shortcut("commit-2", &new.to_string(), "{}", &[])
        .unwrap();
    prune(&store, &PrunePolicy::default()).unwrap();
    assert!(store.shortcut("commit-1").unwrap().is_none());
    assert!(store.shortcut("commit-2").unwrap().is_some());
    assert_eq!(store.stat_plan(&plan).unwrap(), None);
}

#[test]
fn later_policies_see_what_earlier_ones_removed() {
    let (_d, store) = open();
    snap(&store, "base", None, 10, 5 * DAY);
    snap(&store, "child", Some("base"), 10, 5 * DAY);
    snap(&store, "keep", None, 10, 2 * MINUTE);
    let untouched = PrunePolicy {
        keep_duration: Some(Duration::from_secs(30 * 86_400)),
        ..PrunePolicy::default()
    };
    let down_to = |bytes| PrunePolicy {
        max_used_space: Some(Space::Bytes(bytes)),
        ..PrunePolicy::default()
    };
    // The first removes nothing, the second the leaf "child"; the third must see that
    // (usage 20, "base" without a child) to take "base" rather than the newer "keep".
    let report = prune_policies(&store, &[untouched, down_to(20), down_to(10)]).unwrap();
    assert_eq!(ids(&report), ["child", "base"]);
    assert!(store.snapshot("keep").unwrap().is_some());
}
