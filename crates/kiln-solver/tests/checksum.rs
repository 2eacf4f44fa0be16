//! Context checksums: what changes them, what does not, and that unchanged files are not
//! read twice.

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use kiln_solver::checksum::{ChecksumError, ContextChecksum, EntryKind, Selection, checksum};
use kiln_store::Store;

/// Files younger than the checksum's racy window are hashed but not remembered; tests
/// about reuse wait this long after writing.
const SETTLE: Duration = Duration::from_millis(1100);

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "src/main.rs", "fn main() {}\n");
    write(root, "src/lib/util.rs", "pub fn util() {}\n");
    write(root, "docs/README.md", "# readme\n");
    write(root, "docs/guide.md", "# guide\n");
    symlink("src/main.rs", root.join("main-link")).unwrap();
    dir
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn all() -> Selection {
    Selection::default()
}

fn sum(store: &Store, root: &Path, selection: &Selection) -> ContextChecksum {
    checksum(store, root, selection).unwrap()
}

fn paths(sum: &ContextChecksum) -> Vec<&str> {
    sum.entries.iter().map(|e| e.path.as_str()).collect()
}

/// Sets the file's times to a fixed instant, `secs_after_2023` after 2023-11-14.
fn set_mtime(path: &Path, secs_after_2023: u64) {
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs_after_2023);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(when).set_accessed(when))
        .unwrap();
}

#[test]
fn digest_is_deterministic_and_the_same_for_a_copy_of_the_context() {
    let (_s, store) = store();
    let (a, b) = (context(), context());
    let first = sum(&store, a.path(), &all());
    assert_eq!(first, sum(&store, a.path(), &all()));
    assert_eq!(first.digest, sum(&store, b.path(), &all()).digest);
    assert!(first.digest.starts_with("sha256:") && first.digest.len() == 71);
    assert_eq!(
        paths(&first),
        [
            "Dockerfile",
            "docs",
            "docs/README.md",
            "docs/guide.md",
            "main-link",
            "src",
            "src/lib",
            "src/lib/util.rs",
            "src/main.rs"
        ]
    );
    let link = &first.entries[4];
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(link.link_target.as_deref(), Some("src/main.rs"));
    assert_eq!(link.content, None);
    let main = &first.entries[8];
    assert_eq!(main.kind, EntryKind::File);
    let expected = kiln_store::Digest::of_bytes(b"fn main() {}\n").to_string();
    assert_eq!(main.content.as_deref(), Some(expected.as_str()));
}

#[test]
fn every_covered_attribute_changes_the_digest_but_times_do_not() {
    let (_s, store) = store();
    let dir = context();
    let root = dir.path();
    let mut seen = vec![sum(&store, root, &all()).digest];
    let mut expect_new = |what: &str| {
        let digest = sum(&store, root, &all()).digest;
        assert!(!seen.contains(&digest), "{what} did not change the digest");
        seen.push(digest);
    };

    fs::write(root.join("src/main.rs"), "fn main() { }\n").unwrap();
    expect_new("content");
    fs::set_permissions(root.join("src/main.rs"), fs::Permissions::from_mode(0o600)).unwrap();
    expect_new("file mode");
    fs::set_permissions(root.join("src"), fs::Permissions::from_mode(0o700)).unwrap();
    expect_new("directory mode");
    fs::remove_file(root.join("main-link")).unwrap();
    symlink("src/lib/util.rs", root.join("main-link")).unwrap();
    expect_new("symlink target");
    fs::rename(root.join("docs/guide.md"), root.join("docs/guide2.md")).unwrap();
    expect_new("rename");
    write(root, "new.txt", "");
    expect_new("new empty file");
    fs::create_dir(root.join("empty")).unwrap();
    expect_new("new empty directory");
    fs::remove_file(root.join("docs/README.md")).unwrap();
    expect_new("deletion");
    std::os::unix::fs::lchown(root.join("new.txt"), Some(1234), Some(1234)).unwrap();
    expect_new("owner");

    let before = sum(&store, root, &all()).digest;
    set_mtime(&root.join("src/main.rs"), 3600);
    set_mtime(&root.join("new.txt"), 7200);
    assert_eq!(
        sum(&store, root, &all()).digest,
        before,
        "mtime changed the digest"
    );
}

#[test]
fn ignore_mode_and_ignore_owner_leave_those_out() {
    let (_s, store) = store();
    let dir = context();
    let root = dir.path();
    let relaxed = Selection {
        ignore_mode: true,
        ignore_owner: true,
        ..all()
    };
    let strict_before = sum(&store, root, &all()).digest;
    let relaxed_before = sum(&store, root, &relaxed).digest;
    assert_ne!(strict_before, relaxed_before);
    fs::set_permissions(root.join("Dockerfile"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::lchown(root.join("src"), Some(42), Some(42)).unwrap();
    assert_ne!(sum(&store, root, &all()).digest, strict_before);
    assert_eq!(sum(&store, root, &relaxed).digest, relaxed_before);
    // Content still counts.
    fs::write(root.join("Dockerfile"), "FROM busybox\n").unwrap();
    assert_ne!(sum(&store, root, &relaxed).digest, relaxed_before);
}

#[test]
fn dockerignore_exceptions_and_copy_excludes_shape_the_selection() {
    let (_s, store) = store();
    let dir = context();
    let root = dir.path();
    write(root, "build/out.o", "obj");
    let selection = Selection {
        excludes: vec!["docs".into(), "!docs/README.md".into(), "build".into()],
        extra_excludes: vec!["src/lib".into()],
        ..all()
    };
    let first = sum(&store, root, &selection);
    assert_eq!(
        paths(&first),
        [
            "Dockerfile",
            "docs",
            "docs/README.md",
            "main-link",
            "src",
            "src/main.rs"
        ]
    );
    // Changes to what is left out do not matter...
    fs::write(root.join("docs/guide.md"), "changed").unwrap();
    write(root, "build/more.o", "obj");
    fs::write(root.join("src/lib/util.rs"), "changed").unwrap();
    assert_eq!(sum(&store, root, &selection).digest, first.digest);
    // ...changes to what is kept do.
    fs::write(root.join("docs/README.md"), "changed").unwrap();
    assert_ne!(sum(&store, root, &selection).digest, first.digest);
}

#[test]
fn sources_select_matches_and_follow_symlinked_sources() {
    let (_s, store) = store();
    let dir = context();
    let root = dir.path();
    let selection = Selection {
        include: vec!["docs/*.md".into(), "main-link".into(), "nothing-*".into()],
        extra_excludes: vec!["docs/guide.md".into()],
        ..all()
    };
    let first = sum(&store, root, &selection);
    assert_eq!(
        paths(&first),
        ["docs", "docs/README.md", "main-link", "src", "src/main.rs"]
    );
    fs::write(root.join("Dockerfile"), "not selected").unwrap();
    assert_eq!(sum(&store, root, &selection).digest, first.digest);
    // The copy reads through the link, so its target's content counts.
    fs::write(root.join("src/main.rs"), "changed").unwrap();
    assert_ne!(sum(&store, root, &selection).digest, first.digest);

    let missing = Selection {
        include: vec!["no/such/file".into()],
        ..all()
    };
    assert!(sum(&store, root, &missing).entries.is_empty());
}

#[test]
fn a_second_checksum_rereads_only_the_changed_file_and_forgets_deleted_ones() {
    let (_s, store) = store();
    let dir = context();
    let root = dir.path();
    std::thread::sleep(SETTLE);
    let first = sum(&store, root, &all());
    assert_eq!((first.files_hashed, first.files_reused), (5, 0));
    let again = sum(&store, root, &all());
    assert_eq!((again.files_hashed, again.files_reused), (0, 5));
    assert_eq!(again.digest, first.digest);

    fs::write(root.join("src/lib/util.rs"), "pub fn other() {}\n").unwrap();
    let changed = sum(&store, root, &all());
    assert_eq!((changed.files_hashed, changed.files_reused), (1, 4));
    assert_ne!(changed.digest, first.digest);

    let canonical = fs::canonicalize(root).unwrap();
    assert_eq!(store.file_digests(&canonical).unwrap().len(), 4);
    fs::remove_file(root.join("docs/guide.md")).unwrap();
    sum(&store, root, &all());
    let remembered = store.file_digests(&canonical).unwrap();
    assert!(remembered.iter().all(|r| r.path != b"docs/guide.md"));
}

#[test]
fn digests_remembered_for_one_context_are_never_used_for_another() {
    let (_s, store) = store();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), "f", "aaaa");
    write(b.path(), "f", "bbbb");
    set_mtime(&a.path().join("f"), 60);
    set_mtime(&b.path().join("f"), 60);
    let (ma, mb) = (
        fs::metadata(a.path().join("f")).unwrap(),
        fs::metadata(b.path().join("f")).unwrap(),
    );
    assert_eq!(
        (ma.len(), ma.modified().unwrap()),
        (mb.len(), mb.modified().unwrap())
    );
    std::thread::sleep(SETTLE);
    let first = sum(&store, a.path(), &all());
    assert_eq!(sum(&store, a.path(), &all()).files_reused, 1);
    let second = sum(&store, b.path(), &all());
    assert_eq!((second.files_hashed, second.files_reused), (1, 0));
    assert_ne!(first.digest, second.digest);
    assert_ne!(first.entries[0].content, second.entries[0].content);
}

#[test]
fn concurrent_checksums_of_one_root_agree() {
    let (store_dir, store) = store();
    let other = Store::open(store_dir.path()).unwrap();
    let dir = context();
    for i in 0..200 {
        write(
            dir.path(),
            &format!("many/{}/{i}.txt", i % 7),
            &"x".repeat(i),
        );
    }
    let expected = sum(&store, dir.path(), &all()).digest;
    std::thread::scope(|scope| {
        let runs: Vec<_> = [&store, &store, &other]
            .into_iter()
            .map(|s| scope.spawn(|| checksum(s, dir.path(), &all()).unwrap().digest))
            .collect();
        for run in runs {
            assert_eq!(run.join().unwrap(), expected);
        }
    });
}

#[test]
fn errors_name_the_path() {
    let (_s, store) = store();
    let dir = context();
    let missing = dir.path().join("absent");
    let err = checksum(&store, &missing, &all()).unwrap_err();
    assert!(matches!(err, ChecksumError::Io { .. }));
    assert!(err.to_string().contains("absent"), "{err}");
    let file = dir.path().join("Dockerfile");
    let err = checksum(&store, &file, &all()).unwrap_err();
    assert!(err.to_string().contains("Dockerfile"), "{err}");
    let bad = Selection {
        include: vec!["src/[".into()],
        ..all()
    };
    let err = checksum(&store, dir.path(), &bad).unwrap_err();
    assert!(err.to_string().contains("src/["), "{err}");
}
