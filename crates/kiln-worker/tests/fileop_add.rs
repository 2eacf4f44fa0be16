//! ADD's archive unpacking and the mkdir/mkfile/rm actions of
//! `kiln_worker::fileop::apply`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use kiln_graph::{CopyAction, FileAction, Ownership};
use kiln_worker::fileop::FileOpError;

mod fileop_support;
use fileop_support::{Fixture, copy_action};

fn add(source: &str, dest: &str) -> CopyAction {
    copy_action(&[source], dest, true)
}

/// A tar stream holding `dir/`, `dir/hello.txt` (0640, mtime 12345), a symlink to it
/// and a hard link to it.
fn tar_bytes() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o750);
    dir.set_size(0);
    dir.set_mtime(777);
    builder
        .append_data(&mut dir, "dir/", std::io::empty())
        .unwrap();
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o640);
    file.set_size(5);
    file.set_mtime(12345);
    file.set_uid(321);
    file.set_gid(654);
    builder
        .append_data(&mut file, "dir/hello.txt", &b"hello"[..])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, "dir/link", "hello.txt")
        .unwrap();
    let mut hard = tar::Header::new_ustar();
    hard.set_entry_type(tar::EntryType::Link);
    hard.set_size(0);
    builder
        .append_link(&mut hard, "dir/hard", "dir/hello.txt")
        .unwrap();
    builder.into_inner().unwrap()
}

fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    match kind {
        "tar" => data.to_vec(),
        "gz" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        }
        "bz2" => {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        }
        "xz" => {
            let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 1).unwrap(),
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn compressed_and_plain_archives_are_unpacked() {
    let fx = Fixture::new();
    for kind in ["tar", "gz", "bz2", "xz", "zst"] {
        // Names say nothing: detection is by content.
        let name = format!("archive-{kind}.bin");
        fs::write(fx.context.join(&name), compress(kind, &tar_bytes())).unwrap();
        let dest = format!("/unpacked/{kind}");
        fx.apply(FileAction::Copy(add(&name, &dest))).unwrap();
        let hello = fx.host(&format!("{dest}/dir/hello.txt"));
        assert_eq!(fs::read(&hello).unwrap(), b"hello", "{kind}");
        let meta = fs::metadata(&hello).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640, "{kind}");
        assert_eq!(meta.mtime(), 12345, "{kind}");
        let dir_meta = fs::metadata(fx.host(&format!("{dest}/dir"))).unwrap();
        assert_eq!(
            (dir_meta.mode() & 0o7777, dir_meta.mtime()),
            (0o750, 777),
            "{kind}"
        );
        let link = fx.host(&format!("{dest}/dir/link"));
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("hello.txt"));
        let hard = fs::metadata(fx.host(&format!("{dest}/dir/hard"))).unwrap();
        assert_eq!(hard.ino(), meta.ino(), "{kind}: hard link");
        if kiln_worker::have_root() {
            assert_eq!((meta.uid(), meta.gid()), (321, 654), "{kind}");
        }
    }
}

#[test]
fn unpack_chown_applies_to_every_member() {
    if !kiln_worker::have_root() {
        eprintln!("skipping unpack_chown_applies_to_every_member: needs root");
        return;
    }
    let fx = Fixture::new();
    fs::write(fx.context.join("a.tgz"), compress("gz", &tar_bytes())).unwrap();
    let mut action = add("a.tgz", "/opt/");
    action.owner = Some(Ownership {
        user: "5".into(),
        group: Some("6".into()),
    });
    fx.apply(FileAction::Copy(action)).unwrap();
    for path in ["/opt/dir", "/opt/dir/hello.txt"] {
        let meta = fs::metadata(fx.host(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (5, 6), "{path}");
    }
}

#[test]
fn non_archives_and_copy_keep_files_as_they_are() {
    let fx = Fixture::new();
    fs::write(fx.context.join("fake.tar"), b"not an archive at all").unwrap();
    fx.apply(FileAction::Copy(add("fake.tar", "/dst/")))
        .unwrap();
    assert_eq!(
        fs::read(fx.host("/dst/fake.tar")).unwrap(),
        b"not an archive at all"
    );
    // Compressed data that is not a tar is not an archive either.
    fs::write(fx.context.join("data.gz"), compress("gz", b"plain text")).unwrap();
    fx.apply(FileAction::Copy(add("data.gz", "/dst/"))).unwrap();
    assert!(fs::metadata(fx.host("/dst/data.gz")).unwrap().is_file());
    // COPY (no unpack) copies a real archive verbatim.
    let bytes = compress("gz", &tar_bytes());
    fs::write(fx.context.join("real.tar.gz"), &bytes).unwrap();
    let mut copy = add("real.tar.gz", "/copied/");
    copy.unpack = false;
    fx.apply(FileAction::Copy(copy)).unwrap();
    assert_eq!(fs::read(fx.host("/copied/real.tar.gz")).unwrap(), bytes);
}

#[test]
fn archive_members_cannot_escape() {
    let fx = Fixture::new();
    // A symlink member pointing far up, then a file written through it.
    let mut builder = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, "up", "../../../../../../tmp")
        .unwrap();
    let name = format!("kiln-add-escape-{}", std::process::id());
    let mut file = tar::Header::new_gnu();
    file.set_size(1);
    file.set_mode(0o644);
    builder
        .append_data(&mut file, format!("up/{name}"), &b"x"[..])
        .unwrap();
    fs::write(fx.context.join("evil.tar"), builder.into_inner().unwrap()).unwrap();
    fx.apply(FileAction::Copy(add("evil.tar", "/x/"))).unwrap();
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "archive wrote to the host"
    );
    assert!(fx.host(&format!("/tmp/{name}")).exists());

    // A `..` member name is refused.
    let mut raw = tar::Header::new_gnu();
    raw.set_size(1);
    raw.set_mode(0o644);
    raw.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../../bad");
    raw.set_cksum();
    let mut bytes = raw.as_bytes().to_vec();
    bytes.extend_from_slice(b"x");
    bytes.resize(512 * 4, 0);
    fs::write(fx.context.join("dotdot.tar"), bytes).unwrap();
    let err = fx
        .apply(FileAction::Copy(add("dotdot.tar", "/y/")))
        .unwrap_err();
    assert!(matches!(err, FileOpError::Archive { .. }), "{err}");
}

#[test]
fn mkdir_mkfile_rm_through_apply() {
    let fx = Fixture::new();
    fs::create_dir(fx.host("/real")).unwrap();
    std::os::unix::fs::symlink("/real", fx.host("/link")).unwrap();
    let owner = kiln_worker::have_root().then(|| Ownership {
        user: "11".into(),
        group: Some("12".into()),
    });
    fx.apply(FileAction::Mkdir {
        path: "/link/a/b".into(),
        mode: 0o710,
        parents: true,
        owner: owner.clone(),
    })
    .unwrap();
    let meta = fs::metadata(fx.host("/real/a/b")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o710);
    fx.apply(FileAction::Mkfile {
        path: "/link/a/b/f".into(),
        mode: 0o600,
        data: b"payload".to_vec(),
        owner: owner.clone(),
    })
    .unwrap();
    let file = fs::metadata(fx.host("/real/a/b/f")).unwrap();
    assert_eq!(fs::read(fx.host("/real/a/b/f")).unwrap(), b"payload");
    assert_eq!(file.permissions().mode() & 0o7777, 0o600);
    if owner.is_some() {
        assert_eq!(
            (meta.uid(), meta.gid(), file.uid(), file.gid()),
            (11, 12, 11, 12)
        );
    }
    fx.apply(FileAction::Rm {
        path: "/link/a".into(),
        allow_not_found: false,
    })
    .unwrap();
    assert!(!fx.host("/real/a").exists());
    assert!(matches!(
        fx.apply(FileAction::Rm {
            path: "/link/a".into(),
            allow_not_found: false,
        }),
        Err(FileOpError::NotFound { .. })
    ));
    fx.apply(FileAction::Rm {
        path: "/link/a".into(),
        allow_not_found: true,
    })
    .unwrap();
}
