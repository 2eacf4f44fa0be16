use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

use super::*;
use crate::checksum::{collect, matchers};

/// The plan of `selection` as if walked well after every entry last changed.
fn settled(root: &Path, selection: &Selection) -> Option<StatPlan> {
    let root = canonical_root(root).unwrap();
    let (ignore, exclude) = matchers(selection).unwrap();
    let found = collect(&root, selection, &ignore, &exclude).unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    of_walk(&root, selection, &found, later)
}

fn plan(root: &Path, selection: &Selection) -> StatPlan {
    settled(root, selection).expect("a settled walk has a plan")
}

fn including(include: &[&str]) -> Selection {
    Selection {
        include: include.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    }
}

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("src/a/one.rs", "one"),
        ("src/b/two.rs", "two"),
        ("src/top.rs", "top"),
        ("docs/guide.md", "guide"),
        ("build/out.o", "object"),
    ] {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn an_unchanged_context_holds_and_only_for_its_own_selection() {
    let dir = context();
    let whole = Selection::default();
    let recorded = plan(dir.path(), &whole);
    assert_eq!(plan(dir.path(), &whole), recorded);
    assert!(plan_holds(dir.path(), &whole, &recorded.bytes));
    assert!(!plan_holds(
        dir.path(),
        &including(&["src"]),
        &recorded.bytes
    ));
    let elsewhere = context();
    assert!(!plan_holds(elsewhere.path(), &whole, &recorded.bytes));
}

#[test]
fn any_write_breaks_it_even_with_the_same_content() {
    let dir = context();
    let whole = Selection::default();
    let recorded = plan(dir.path(), &whole);
    // Same bytes, same size: only the change time tells.
    fs::write(dir.path().join("src/a/one.rs"), "one").unwrap();
    assert!(!plan_holds(dir.path(), &whole, &recorded.bytes));

    let recorded = plan(dir.path(), &whole);
    fs::write(dir.path().join("src/b/new.rs"), "").unwrap();
    assert!(!plan_holds(dir.path(), &whole, &recorded.bytes));

    let recorded = plan(dir.path(), &whole);
    fs::remove_file(dir.path().join("docs/guide.md")).unwrap();
    assert!(!plan_holds(dir.path(), &whole, &recorded.bytes));

    let recorded = plan(dir.path(), &whole);
    fs::set_permissions(
        dir.path().join("src/top.rs"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert!(!plan_holds(dir.path(), &whole, &recorded.bytes));
}

#[test]
fn ignored_and_excluded_entries_do_not_count() {
    let dir = context();
    let selection = Selection {
        excludes: vec!["build".into(), "**/*.md".into()],
        extra_excludes: vec!["src/b".into()],
        ..Selection::default()
    };
    let recorded = plan(dir.path(), &selection);
    fs::write(dir.path().join("build/out.o"), "relinked").unwrap();
    fs::write(dir.path().join("docs/guide.md"), "edited").unwrap();
    fs::write(dir.path().join("build/more.o"), "").unwrap();
    fs::write(dir.path().join("src/b/two.rs"), "edited").unwrap();
    assert!(plan_holds(dir.path(), &selection, &recorded.bytes));
    fs::write(dir.path().join("src/a/one.rs"), "edited").unwrap();
    assert!(!plan_holds(dir.path(), &selection, &recorded.bytes));
}

#[test]
fn a_named_source_that_appears_breaks_it() {
    let dir = context();
    let selection = including(&["src/top.rs", "missing/later.txt"]);
    let recorded = plan(dir.path(), &selection);
    // Outside what the sources name.
    fs::write(dir.path().join("docs/new.md"), "").unwrap();
    assert!(plan_holds(dir.path(), &selection, &recorded.bytes));
    fs::create_dir(dir.path().join("missing")).unwrap();
    assert!(!plan_holds(dir.path(), &selection, &recorded.bytes));

    let recorded = plan(dir.path(), &selection);
    assert!(plan_holds(dir.path(), &selection, &recorded.bytes));
    fs::write(dir.path().join("missing/later.txt"), "").unwrap();
    assert!(!plan_holds(dir.path(), &selection, &recorded.bytes));
}

#[test]
fn a_new_wildcard_match_breaks_it() {
    let dir = context();
    let selection = including(&["src/*/*.rs"]);
    let recorded = plan(dir.path(), &selection);
    fs::write(dir.path().join("src/a/notes.txt"), "").unwrap();
    // The listing of src/a changed, so the plan cannot tell the new name is no match.
    assert!(!plan_holds(dir.path(), &selection, &recorded.bytes));

    let recorded = plan(dir.path(), &selection);
    fs::write(dir.path().join("docs/more.md"), "").unwrap();
    assert!(plan_holds(dir.path(), &selection, &recorded.bytes));
    fs::create_dir(dir.path().join("src/c")).unwrap();
    fs::write(dir.path().join("src/c/three.rs"), "three").unwrap();
    assert!(!plan_holds(dir.path(), &selection, &recorded.bytes));
}

#[test]
fn a_source_reached_through_a_symlink_gets_no_plan() {
    let dir = context();
    symlink("src", dir.path().join("code")).unwrap();
    assert!(settled(dir.path(), &including(&["code/top.rs"])).is_none());
    // A symlink inside a copied directory is copied as a link, not followed.
    assert!(settled(dir.path(), &Selection::default()).is_some());
}

#[test]
fn an_entry_changed_a_moment_ago_gets_no_plan() {
    let dir = context();
    let selection = Selection::default();
    let root = canonical_root(dir.path()).unwrap();
    let (ignore, exclude) = matchers(&selection).unwrap();
    let found = collect(&root, &selection, &ignore, &exclude).unwrap();
    assert_eq!(of_walk(&root, &selection, &found, SystemTime::now()), None);
}

#[test]
fn a_damaged_plan_does_not_hold() {
    let dir = context();
    let whole = Selection::default();
    let recorded = plan(dir.path(), &whole);
    for cut in [0, 10, recorded.bytes.len() / 2, recorded.bytes.len() - 1] {
        assert!(!plan_holds(dir.path(), &whole, &recorded.bytes[..cut]));
    }
    let mut longer = recorded.bytes.to_vec();
    longer.push(0);
    assert!(!plan_holds(dir.path(), &whole, &longer));
}

#[test]
fn statx_reads_what_lstat_reads() {
    let dir = context();
    symlink("src/top.rs", dir.path().join("link")).unwrap();
    let fifo = CString::new(dir.path().join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    let root = std::fs::File::open(dir.path()).unwrap();
    for name in ["src", "src/top.rs", "link", "fifo", "."] {
        let meta = fs::symlink_metadata(dir.path().join(name)).unwrap();
        let fresh = statx(root.as_raw_fd(), &CString::new(name).unwrap()).unwrap();
        assert_eq!(fresh, Stat::of(&meta), "{name}");
    }
}

#[test]
fn a_checksum_carries_the_plan_of_what_it_walked() {
    let dir = context();
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    let store_dir = tempfile::tempdir().unwrap();
    let store = kiln_store::Store::open(store_dir.path()).unwrap();
    let whole = Selection::default();
    let sum = super::super::checksum(&store, dir.path(), &whole).unwrap();
    let recorded = sum.stat_plan.expect("a settled context has a plan");
    assert!(plan_holds(dir.path(), &whole, &recorded.bytes));
    fs::write(dir.path().join("src/top.rs"), "changed").unwrap();
    assert!(!plan_holds(dir.path(), &whole, &recorded.bytes));
}
