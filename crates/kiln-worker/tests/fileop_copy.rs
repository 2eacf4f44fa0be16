//! COPY semantics of `kiln_worker::fileop::apply` on real directories: which sources,
//! where they land, what metadata they keep, and that nothing escapes the root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use kiln_graph::{ChmodSpec, CopyAction, Ownership};
use kiln_worker::fileop::FileOpError;

mod fileop_support;
use fileop_support::{Fixture, copy_action};

/// A COPY as the Dockerfile frontend emits it.
fn copy(sources: &[&str], dest: &str) -> CopyAction {
    copy_action(sources, dest, false)
}

fn is_root(test: &str) -> bool {
    let root = kiln_worker::have_root();
    if !root {
        eprintln!("skipping {test}: needs root to set file owners");
    }
    root
}

#[test]
fn directory_source_copies_its_contents() {
    let fx = Fixture::new();
    fx.file("src/a.txt", "a");
    fx.file("src/sub/b.txt", "b");
    fx.run(copy(&["src"], "/app")).unwrap();
    assert_eq!(fx.read("/app/a.txt"), "a");
    assert_eq!(fx.read("/app/sub/b.txt"), "b");
    assert!(!fx.exists("/app/src"));
    // Missing destination directories are created 0755.
    assert_eq!(fx.meta("/app").mode() & 0o7777, 0o755);
    // `.` copies the whole context.
    fx.run(copy(&["."], "/all/")).unwrap();
    assert_eq!(fx.read("/all/src/sub/b.txt"), "b");
}

#[test]
fn file_destinations_follow_the_trailing_slash() {
    let fx = Fixture::new();
    fx.file("f.txt", "data");
    fx.run(copy(&["f.txt"], "/into/")).unwrap();
    assert_eq!(fx.read("/into/f.txt"), "data");
    fx.run(copy(&["f.txt"], "/renamed")).unwrap();
    assert_eq!(fx.read("/renamed"), "data");
    assert!(fx.meta("/renamed").is_file());
    // An existing directory is entered even without a slash.
    fs::create_dir(fx.rootfs.join("existing")).unwrap();
    fx.run(copy(&["f.txt"], "/existing")).unwrap();
    assert_eq!(fx.read("/existing/f.txt"), "data");
    // Deep missing parents are created.
    fx.run(copy(&["f.txt"], "/a/b/c/new.txt")).unwrap();
    assert_eq!(fx.read("/a/b/c/new.txt"), "data");
    // Without create_dest_path the parent must exist.
    let mut strict = copy(&["f.txt"], "/missing/x");
    strict.create_dest_path = false;
    assert!(matches!(
        fx.run(strict),
        Err(FileOpError::MissingParent { .. })
    ));
}

#[test]
fn wildcards_match_several_sources() {
    let fx = Fixture::new();
    fx.file("one.txt", "1");
    fx.file("two.txt", "2");
    fx.file("three.md", "3");
    fx.file("dir/x.txt", "x");
    fx.run(copy(&["*.txt", "t?ree.[ma]d"], "/out/")).unwrap();
    assert_eq!(fx.read("/out/one.txt"), "1");
    assert_eq!(fx.read("/out/two.txt"), "2");
    assert_eq!(fx.read("/out/three.md"), "3");
    assert!(!fx.exists("/out/x.txt"), "`*` must not cross directories");
    let err = fx.run(copy(&["*.txt"], "/single")).unwrap_err();
    assert!(
        matches!(err, FileOpError::DestNotDirectory { count: 2, .. }),
        "{err}"
    );
}

#[test]
fn unmatched_sources_are_errors_naming_the_pattern() {
    let fx = Fixture::new();
    fx.file("a.txt", "a");
    let err = fx.run(copy(&["*.none"], "/out/")).unwrap_err();
    assert!(err.to_string().contains("*.none"), "{err}");
    let err = fx.run(copy(&["missing.txt"], "/out/")).unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
    let mut lenient = copy(&["*.none"], "/out/");
    lenient.allow_empty_wildcard = true;
    fx.run(lenient).unwrap();
    assert!(!fx.exists("/out"));
}

#[test]
fn sources_escaping_the_input_are_clamped_to_its_root() {
    let fx = Fixture::new();
    fx.file("a.txt", "inside");
    fs::write(fx.context.parent().unwrap().join("a.txt"), "outside").unwrap();
    fx.run(copy(&["../../a.txt"], "/got")).unwrap();
    assert_eq!(fx.read("/got"), "inside");
    symlink("../../a.txt", fx.context.join("up")).unwrap();
    fx.run(copy(&["up"], "/via-link")).unwrap();
    assert_eq!(fx.read("/via-link"), "inside");
}

#[test]
fn destination_symlinks_resolve_inside_the_root() {
    let fx = Fixture::new();
    fx.file("f.txt", "data");
    fx.file("dir/g.txt", "g");
    fs::create_dir(fx.rootfs.join("real")).unwrap();
    symlink("/real", fx.rootfs.join("link")).unwrap();
    fx.run(copy(&["f.txt"], "/link/")).unwrap();
    fx.run(copy(&["dir"], "/link/sub")).unwrap();
    assert_eq!(fx.read("/real/f.txt"), "data");
    assert_eq!(fx.read("/real/sub/g.txt"), "g");
    assert!(fx.meta("/link").file_type().is_symlink());
}

#[test]
fn malicious_destination_symlinks_never_escape() {
    let fx = Fixture::new();
    fx.file("f.txt", "data");
    fx.file("dir/g.txt", "g");
    let outside = fx.context.parent().unwrap().join("tmp");
    let name = format!("kiln-fileop-escape-{}", std::process::id());
    symlink(format!("../../../../tmp/{name}"), fx.rootfs.join("evil")).unwrap();
    symlink("/../../tmp", fx.rootfs.join("evil-dir")).unwrap();
    fx.run(copy(&["f.txt"], "/evil")).unwrap();
    fx.run(copy(&["dir"], "/evil-dir/sub")).unwrap();
    fx.run(copy(&["f.txt"], "/evil-dir/../../../escaped.txt"))
        .unwrap();
    assert_eq!(fx.read(&format!("/tmp/{name}")), "data");
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "wrote to the host's /tmp"
    );
    assert_eq!(fx.read("/tmp/sub/g.txt"), "g");
    assert_eq!(fx.read("/escaped.txt"), "data");
    assert!(!outside.exists(), "wrote outside the root");
    // A symlink where a copied directory goes is refused, not followed.
    fx.file("tree/sub/h.txt", "h");
    fs::create_dir(fx.rootfs.join("app")).unwrap();
    symlink("/../../..", fx.rootfs.join("app/sub")).unwrap();
    let err = fx.run(copy(&["tree"], "/app")).unwrap_err();
    assert!(matches!(err, FileOpError::NotADirectory { .. }), "{err}");
}

#[test]
fn chown_names_resolve_in_the_destination_passwd() {
    if !is_root("chown_names_resolve_in_the_destination_passwd") {
        return;
    }
    let fx = Fixture::new();
    fs::write(
        fx.rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        fx.rootfs.join("etc/group"),
        "root:x:0:\napp:x:1234:\nstaff:x:50:\n",
    )
    .unwrap();
    fx.file("src/a.txt", "a");
    fx.file("src/sub/b.txt", "b");
    let mut action = copy(&["src"], "/new/app");
    action.owner = Some(Ownership {
        user: "app".into(),
        group: Some("app".into()),
    });
    fx.run(action).unwrap();
    for path in [
        "/new",
        "/new/app",
        "/new/app/a.txt",
        "/new/app/sub",
        "/new/app/sub/b.txt",
    ] {
        let meta = fx.meta(path);
        assert_eq!((meta.uid(), meta.gid()), (1234, 1234), "{path}");
    }
    let mut by_group = copy(&["src/a.txt"], "/g.txt");
    by_group.owner = Some(Ownership {
        user: "7".into(),
        group: Some("staff".into()),
    });
    fx.run(by_group).unwrap();
    assert_eq!((fx.meta("/g.txt").uid(), fx.meta("/g.txt").gid()), (7, 50));
    let mut unknown = copy(&["src/a.txt"], "/u.txt");
    unknown.owner = Some(Ownership {
        user: "ghost".into(),
        group: None,
    });
    assert!(matches!(fx.run(unknown), Err(FileOpError::Owner { .. })));
    // Without --chown, owners are preserved.
    std::os::unix::fs::chown(fx.context.join("src/a.txt"), Some(42), Some(43)).unwrap();
    fx.run(copy(&["src/a.txt"], "/kept.txt")).unwrap();
    assert_eq!(
        (fx.meta("/kept.txt").uid(), fx.meta("/kept.txt").gid()),
        (42, 43)
    );
}

#[test]
fn chmod_applies_to_copied_files_and_directories() {
    let fx = Fixture::new();
    fx.file("src/run.sh", "#!/bin/sh");
    fx.file("src/sub/data", "d");
    fs::set_permissions(
        fx.context.join("src/run.sh"),
        fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    fs::set_permissions(
        fx.context.join("src/sub/data"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    fs::set_permissions(
        fx.context.join("src/sub"),
        fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    let mut symbolic = copy(&["src"], "/sym");
    symbolic.chmod = Some(ChmodSpec::Symbolic("u+x,go-w".into()));
    fx.run(symbolic).unwrap();
    assert_eq!(fx.meta("/sym/run.sh").mode() & 0o7777, 0o744);
    assert_eq!(fx.meta("/sym/sub/data").mode() & 0o7777, 0o744);
    assert_eq!(fx.meta("/sym/sub").mode() & 0o7777, 0o755);
    let mut octal = copy(&["src"], "/oct");
    octal.chmod = Some(ChmodSpec::Octal(0o640));
    fx.run(octal).unwrap();
    assert_eq!(fx.meta("/oct/run.sh").mode() & 0o7777, 0o640);
    assert_eq!(fx.meta("/oct/sub").mode() & 0o7777, 0o640);
    // Without --chmod the source mode is kept.
    fx.run(copy(&["src/run.sh"], "/plain")).unwrap();
    assert_eq!(fx.meta("/plain").mode() & 0o7777, 0o664);
}

#[test]
fn parents_keep_source_paths_with_and_without_pivot() {
    let fx = Fixture::new();
    fx.file("x/a.txt", "xa");
    fx.file("y/a.txt", "ya");
    fx.file("x/y/deep.txt", "deep");
    fs::set_permissions(fx.context.join("x"), fs::Permissions::from_mode(0o701)).unwrap();
    let mut action = copy(&["x/a.txt", "y/a.txt"], "/parents/");
    action.parents = true;
    fx.run(action).unwrap();
    assert_eq!(fx.read("/parents/x/a.txt"), "xa");
    assert_eq!(fx.read("/parents/y/a.txt"), "ya");
    // Recreated parents take their source directory's mode.
    assert_eq!(fx.meta("/parents/x").mode() & 0o7777, 0o701);
    let mut pivot = copy(&["./x/./y/*.txt"], "/pivot/");
    pivot.parents = true;
    fx.run(pivot).unwrap();
    assert_eq!(fx.read("/pivot/y/deep.txt"), "deep");
    assert!(!fx.exists("/pivot/x"));
    let mut dir = copy(&["x/y"], "/dir");
    dir.parents = true;
    fx.run(dir).unwrap();
    assert_eq!(fx.read("/dir/x/y/deep.txt"), "deep");
}

#[test]
fn exclude_patterns_prune_the_copy() {
    let fx = Fixture::new();
    fx.file("docs/README.md", "r");
    fx.file("docs/guide.txt", "g");
    fx.file("docs/sub/more.md", "m");
    fx.file("home.md", "h");
    fx.file("home.txt", "t");
    let mut action = copy(&["docs"], "/d");
    action.exclude = vec!["*.md".into(), "sub/*.md".into()];
    fx.run(action).unwrap();
    assert_eq!(fx.read("/d/guide.txt"), "g");
    assert!(!fx.exists("/d/README.md"));
    assert!(!fx.exists("/d/sub/more.md"));
    let mut wildcard = copy(&["hom*"], "/w/");
    wildcard.exclude = vec!["*.md".into()];
    fx.run(wildcard).unwrap();
    assert_eq!(fx.read("/w/home.txt"), "t");
    assert!(!fx.exists("/w/home.md"));
}

#[test]
fn dockerignore_excludes_are_invisible() {
    let mut fx = Fixture::new();
    fx.file("app/main.rs", "m");
    fx.file("app/secret.key", "s");
    fx.file("target/debug/big", "b");
    fx.file("target/keep.txt", "k");
    fx.file("top.log", "l");
    fx.ignore = vec![
        "**/*.key".into(),
        "target".into(),
        "!target/keep.txt".into(),
        "*.log".into(),
    ];
    fx.run(copy(&["."], "/ctx/")).unwrap();
    assert_eq!(fx.read("/ctx/app/main.rs"), "m");
    assert!(!fx.exists("/ctx/app/secret.key"));
    assert!(!fx.exists("/ctx/top.log"));
    assert!(!fx.exists("/ctx/target/debug"));
    assert_eq!(fx.read("/ctx/target/keep.txt"), "k");
    // A named directory that is ignored still brings back what `!` re-includes.
    fx.run(copy(&["target"], "/t")).unwrap();
    assert_eq!(fx.read("/t/keep.txt"), "k");
    assert!(!fx.exists("/t/debug"));
    assert!(matches!(
        fx.run(copy(&["top.log"], "/x")),
        Err(FileOpError::SourceNotFound { .. })
    ));
    assert!(matches!(
        fx.run(copy(&["*.log"], "/x/")),
        Err(FileOpError::SourceNotFound { .. })
    ));
}

#[test]
fn links_times_and_attributes_are_preserved() {
    let fx = Fixture::new();
    fx.file("src/file", "content");
    fs::hard_link(fx.context.join("src/file"), fx.context.join("src/hard")).unwrap();
    symlink("file", fx.context.join("src/soft")).unwrap();
    symlink("/nowhere", fx.context.join("src/dangling")).unwrap();
    symlink("src/file", fx.context.join("top-link")).unwrap();
    let times = fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000));
    fs::File::options()
        .write(true)
        .open(fx.context.join("src/file"))
        .unwrap()
        .set_times(times)
        .unwrap();
    let xattr_set = set_user_xattr(&fx.context.join("src/file"));

    fx.run(copy(&["src"], "/out")).unwrap();
    let file = fx.meta("/out/file");
    let hard = fx.meta("/out/hard");
    assert_eq!(file.ino(), hard.ino(), "hard link not preserved");
    assert_eq!(file.mtime(), 1_000_000);
    assert_eq!(
        fs::read_link(fx.rootfs.join("out/soft")).unwrap(),
        Path::new("file")
    );
    assert_eq!(
        fs::read_link(fx.rootfs.join("out/dangling")).unwrap(),
        Path::new("/nowhere")
    );
    if xattr_set {
        let value = get_user_xattr(&fx.rootfs.join("out/file"));
        assert_eq!(value.as_deref(), Some(&b"yes"[..]));
    } else {
        eprintln!("user xattrs unsupported here: not checking them");
    }
    // A symlink named as the source is followed.
    fx.run(copy(&["top-link"], "/followed")).unwrap();
    assert!(fx.meta("/followed").is_file());
    assert_eq!(fx.read("/followed"), "content");
    let mut nofollow = copy(&["top-link"], "/kept-link");
    nofollow.follow_symlinks = false;
    fx.run(nofollow).unwrap();
    assert!(fx.meta("/kept-link").file_type().is_symlink());
}

fn set_user_xattr(path: &Path) -> bool {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and a live value buffer.
    unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            c"user.kiln".as_ptr(),
            b"yes".as_ptr().cast(),
            3,
            0,
        ) == 0
    }
}

fn get_user_xattr(path: &Path) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = [0u8; 16];
    // SAFETY: valid C strings and a writable buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c"user.kiln".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

#[test]
fn existing_destination_entries_are_replaced_or_merged() {
    let fx = Fixture::new();
    fx.file("src/a.txt", "new");
    fs::create_dir_all(fx.rootfs.join("app/a.txt")).unwrap();
    assert!(matches!(
        fx.run(copy(&["src"], "/app")),
        Err(FileOpError::ReplaceDirectory { .. })
    ));
    fs::remove_dir(fx.rootfs.join("app/a.txt")).unwrap();
    fs::write(fx.rootfs.join("app/old.txt"), "old").unwrap();
    symlink("/etc", fx.rootfs.join("app/a.txt")).unwrap();
    fx.run(copy(&["src"], "/app")).unwrap();
    assert_eq!(fx.read("/app/a.txt"), "new");
    assert!(
        fx.meta("/app/a.txt").is_file(),
        "a symlink target must be replaced, not followed"
    );
    assert_eq!(fx.read("/app/old.txt"), "old");
}

#[test]
fn missing_input_is_an_error() {
    let fx = Fixture::new();
    let mut action = copy(&["a"], "/a");
    action.input = 3;
    assert!(matches!(
        fx.run(action),
        Err(FileOpError::MissingInput {
            index: 3,
            available: 1
        })
    ));
}
