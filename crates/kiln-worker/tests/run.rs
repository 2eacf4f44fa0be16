//! RUN steps in real runc containers on real overlay mounts (needs root; skips otherwise).

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{Fixture, can_run_containers, fixture};
use kiln_worker::{Error, NetworkMode, ProcessSpec, Stream};

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let name = OsStr::new(name);
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: valid C strings and a live buffer of the given size.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

#[test]
fn run_step_changes_land_in_upper_dir_and_stack() {
    if !can_run_containers("run_step_changes_land_in_upper_dir_and_stack") {
        return;
    }
    let f = fixture();
    let (res, lines, active) = f.run_sh(
        &f.base,
        "echo hi > /a; rm /etc/group; mkdir -p /d && touch /d/x; echo done",
        |_| {},
    );
    assert_eq!(res.exit_code, 0, "{lines:?}");
    assert_eq!(Fixture::stdout(&lines), ["done"]);
    let upper = active.upper_dir();
    let step1 = f.snapshotter.commit(active, "RUN step 1").unwrap();
    let dir = f.snapshotter.fs_dir(&step1.id).unwrap();
    assert!(
        !upper.exists(),
        "upper dir should have moved into the snapshot"
    );
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "hi\n");
    let wh = fs::symlink_metadata(dir.join("etc/group")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "/etc/group should be a whiteout"
    );
    assert!(dir.join("d/x").is_file());
    for stub in ["proc", "dev", "sys", "etc/hosts", "etc/resolv.conf"] {
        assert!(
            !dir.join(stub).exists(),
            "runc mount stub {stub} leaked into the layer"
        );
    }
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "d", "etc"]);
    assert_eq!(step1.parent.as_deref(), Some(f.base.as_str()));
    assert_eq!(step1.size, 3);

    // Second step on the first: sees its changes; replacing a lower dir makes it opaque.
    let (res, lines, active) = f.run_sh(
        &step1.id,
        "cat /a; test -e /etc/group && echo group-back; ls /d; rm -rf /d && mkdir /d && touch /d/y",
        |p| p.network = NetworkMode::None,
    );
    assert_eq!(res.exit_code, 0, "{lines:?}");
    assert_eq!(Fixture::stdout(&lines), ["hi", "x"]);
    let step2 = f.snapshotter.commit(active, "RUN step 2").unwrap();
    let dir2 = f.snapshotter.fs_dir(&step2.id).unwrap();
    assert_eq!(
        xattr(&dir2.join("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(dir2.join("d/y").exists() && !dir2.join("d/x").exists());
    let chain: Vec<_> = f
        .store
        .snapshot_chain(&step2.id)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(chain, [step2.id.clone(), step1.id.clone(), f.base.clone()]);

    // The flattened view agrees with what the container saw.
    let flat = f.store.tmp_dir().join("flat-check");
    f.snapshotter.materialize_chain(&step2.id, &flat).unwrap();
    assert!(
        flat.join("d/y").exists() && !flat.join("d/x").exists() && !flat.join("etc/group").exists()
    );
    assert!(flat.join("bin/busybox").exists() && flat.join("a").exists());
    fs::remove_dir_all(&flat).unwrap();
    assert!(f.mounts_in_store().is_empty());
    assert!(f.tmp_entries().is_empty(), "{:?}", f.tmp_entries());
}

#[test]
fn exit_codes_output_streams_and_failures() {
    if !can_run_containers("exit_codes_output_streams_and_failures") {
        return;
    }
    let f = fixture();
    let (res, lines, active) = f.run_sh(
        &f.base,
        "echo out; echo err >&2; printf 'no newline'; exit 3",
        |_| {},
    );
    assert_eq!(res.exit_code, 3);
    assert!(lines.contains(&(Stream::Stdout, "out".into())));
    assert!(lines.contains(&(Stream::Stderr, "err".into())));
    assert!(lines.contains(&(Stream::Stdout, "no newline".into())));
    assert_eq!(res.tail.len(), 3);
    f.snapshotter.abort(active).unwrap();

    // A command that does not exist: runc reports the failure and exits non-zero.
    let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
    let mut lines = Vec::new();
    let res = f
        .executor
        .run(
            active.rootfs(),
            &ProcessSpec::new(["/bin/no-such-tool"]),
            &kiln_worker::CancelToken::new(),
            &mut |s, l| lines.push((s, l.to_owned())),
        )
        .unwrap();
    assert_ne!(res.exit_code, 0);
    assert!(
        res.tail.iter().any(|(_, l)| l.contains("no-such-tool")),
        "{:?}",
        res.tail
    );
    f.snapshotter.abort(active).unwrap();

    assert_eq!(f.runc_containers(), "");
    assert!(f.mounts_in_store().is_empty());
}

#[test]
fn user_groups_and_workdir() {
    if !can_run_containers("user_groups_and_workdir") {
        return;
    }
    let f = fixture();
    let (res, lines, active) = f.run_sh(
        &f.base,
        "id -u; id -g; id -G; pwd; echo $HOME; touch mine",
        |p| {
            p.user = "app".into();
            p.cwd = "/home/app/work".into();
        },
    );
    assert_eq!(res.exit_code, 0, "{lines:?}");
    assert_eq!(
        Fixture::stdout(&lines),
        ["1000", "1000", "1000 10", "/home/app/work", "/home/app"]
    );
    let work = fs::metadata(active.upper_dir().join("home/app/work")).unwrap();
    assert_eq!((work.uid(), work.gid()), (1000, 1000));
    assert_eq!(
        fs::metadata(active.upper_dir().join("home/app/work/mine"))
            .unwrap()
            .uid(),
        1000
    );
    f.snapshotter.abort(active).unwrap();

    let (res, lines, active) = f.run_sh(&f.base, "id -u; id -g", |p| p.user = "4321:77".into());
    assert_eq!(res.exit_code, 0);
    assert_eq!(Fixture::stdout(&lines), ["4321", "77"]);
    f.snapshotter.abort(active).unwrap();

    let active = f.snapshotter.prepare(Some(&f.base)).unwrap();
    let mut spec = ProcessSpec::new(["id"]);
    spec.user = "ghost".into();
    let err = f
        .executor
        .run(
            active.rootfs(),
            &spec,
            &kiln_worker::CancelToken::new(),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownUser { ref name } if name == "ghost"),
        "{err}"
    );
    f.snapshotter.abort(active).unwrap();
}

#[test]
fn network_modes() {
    if !can_run_containers("network_modes") {
        return;
    }
    let f = fixture();
    let ifaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    for mode in [NetworkMode::None, NetworkMode::Default] {
        let (res, lines, active) = f.run_sh(&f.base, ifaces, |p| p.network = mode);
        assert_eq!(res.exit_code, 0, "{lines:?}");
        assert_eq!(Fixture::stdout(&lines), ["lo"], "{mode:?}");
        f.snapshotter.abort(active).unwrap();
    }
    let host_ifaces = fs::read_to_string("/proc/net/dev").unwrap().lines().count() - 2;
    let (res, lines, active) = f.run_sh(&f.base, ifaces, |p| {
        p.network = NetworkMode::Host;
        *p = p.clone().with_network_files();
    });
    assert_eq!(res.exit_code, 0);
    assert_eq!(Fixture::stdout(&lines).len(), host_ifaces);
    // The hosts/resolv.conf stubs runc had to create are gone again.
    assert!(!active.upper_dir().join("etc/hosts").exists());
    f.snapshotter.abort(active).unwrap();
}

#[test]
fn extra_mounts_bind_tmpfs_and_files() {
    if !can_run_containers("extra_mounts_bind_tmpfs_and_files") {
        return;
    }
    let f = fixture();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("in.txt"), "from host\n").unwrap();
    let src_path = src.path().to_path_buf();
    let (res, lines, active) = f.run_sh(
        &f.base,
        "cat /src/in.txt; touch /src/nope 2>/dev/null || echo ro; echo t > /scratch/t && cat /scratch/t; cat /etc/motd; grep -c tmpfs /proc/mounts >/dev/null && df -k /scratch | tail -1 | awk '{print $2}'",
        |p| {
            p.mounts.push(kiln_worker::ExtraMount::Bind { source: src_path.clone(), destination: "/src".into(), readonly: true });
            p.mounts.push(kiln_worker::ExtraMount::Tmpfs { destination: "/scratch".into(), size_bytes: Some(4 << 20) });
            p.mounts.push(kiln_worker::ExtraMount::File { destination: "/etc/motd".into(), contents: b"welcome\n".to_vec(), readonly: true });
        },
    );
    assert_eq!(res.exit_code, 0, "{lines:?}");
    assert_eq!(
        Fixture::stdout(&lines),
        ["from host", "ro", "t", "welcome", "4096"]
    );
    let upper = active.upper_dir();
    for stub in ["src", "scratch", "etc/motd"] {
        assert!(!upper.join(stub).exists(), "{stub} stub leaked");
    }
    f.snapshotter.abort(active).unwrap();
}

#[test]
fn run_step_commits_success_and_discards_failure() {
    if !can_run_containers("run_step_commits_success_and_discards_failure") {
        return;
    }
    let f = fixture();
    let cancel = kiln_worker::CancelToken::new();
    let ok = kiln_worker::run_step(
        &f.snapshotter,
        &f.executor,
        Some(&f.base),
        &ProcessSpec::new([
            "sh",
            "-c",
            "grep -q localhost /etc/hosts && echo made > /made",
        ]),
        "RUN make",
        &cancel,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(ok.run.exit_code, 0, "{:?}", ok.run.tail);
    let snap = ok.snapshot.unwrap();
    assert_eq!(snap.label, "RUN make");
    let dir = f.snapshotter.fs_dir(&snap.id).unwrap();
    assert!(dir.join("made").exists());
    // runc's /etc/hosts stub forced a copy-up of /etc; the stub is gone and the empty,
    // unchanged /etc is dropped at commit, so the layer records no change there.
    assert!(
        !dir.join("etc").exists(),
        "hosts/resolv.conf stubs leaked into the layer"
    );

    let failed = kiln_worker::run_step(
        &f.snapshotter,
        &f.executor,
        Some(&snap.id),
        &ProcessSpec::new(["sh", "-c", "touch /x; exit 7"]),
        "RUN fail",
        &cancel,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(failed.run.exit_code, 7);
    assert!(failed.snapshot.is_none());
    assert_eq!(f.store.list_snapshots().unwrap().len(), 2);
    assert!(f.mounts_in_store().is_empty());
    assert!(f.tmp_entries().is_empty(), "{:?}", f.tmp_entries());
}

#[test]
fn parallel_steps_do_not_interfere() {
    if !can_run_containers("parallel_steps_do_not_interfere") {
        return;
    }
    let f = fixture();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let f = &f;
                s.spawn(move || {
                    let script = format!("echo {i} > /who; sleep 0.2; cat /who");
                    kiln_worker::run_step(
                        &f.snapshotter,
                        &f.executor,
                        Some(&f.base),
                        &ProcessSpec::new(["sh", "-c", &script]),
                        &format!("RUN {i}"),
                        &kiln_worker::CancelToken::new(),
                        &mut |_, _| {},
                    )
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in results.iter().enumerate() {
        assert_eq!(out.run.exit_code, 0);
        assert_eq!(out.run.tail, [(Stream::Stdout, i.to_string())]);
        let snap = out.snapshot.as_ref().unwrap();
        assert_eq!(
            fs::read_to_string(f.snapshotter.fs_dir(&snap.id).unwrap().join("who")).unwrap(),
            format!("{i}\n")
        );
    }
    assert_eq!(f.runc_containers(), "");
    assert!(f.mounts_in_store().is_empty());
}
