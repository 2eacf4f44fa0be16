//! `kiln build` end to end through the real binary: RUN in runc on overlayfs, and the
//! outputs read back with tar, skopeo and umoci.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{Env, Layout, contains, exists, read, run_ok, text};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn local_out(dir: &Path) -> String {
    format!("type=local,dest={}", dir.display())
}

fn oci_out(file: &Path) -> String {
    format!("type=oci,dest={}", file.display())
}

/// A test store and a build context `ctx` written from (path, contents) pairs, or `None`
/// when this machine cannot run the tests.
fn env_with_context(files: &[(&str, &str)]) -> Option<(Env, PathBuf)> {
    let env = Env::new()?;
    let ctx = env.context("ctx", files);
    Some((env, ctx))
}

/// `kiln build --output OUTPUT EXTRA... CTX`, asserting success; returns the progress.
fn build_to(env: &Env, output: &str, extra: &[&str], ctx: &Path) -> String {
    let mut args = vec!["--output", output];
    args.extend_from_slice(extra);
    args.push(p(ctx));
    env.build_ok(&args)
}

/// Builds `ctx` to an OCI archive and returns its unpacked layout.
fn build_oci(env: &Env, ctx: &Path, name: &str, extra: &[&str]) -> Layout {
    let archive = env.path(&format!("{name}.tar"));
    build_to(env, &oci_out(&archive), extra, ctx);
    Layout::from_archive(&archive, &env.path(&format!("{name}-layout")))
}

/// `skopeo inspect ARGS` parsed.
fn skopeo_inspect(args: &[&str]) -> Value {
    let mut full = vec!["inspect"];
    full.extend_from_slice(args);
    serde_json::from_str(&run_ok("skopeo", &full)).unwrap()
}

/// `kiln ARGS` on the test store with `name=value` added to its environment; asserts
/// success.
fn kiln_ok_with_var(env: &Env, args: &[&str], (name, value): (&str, &str)) -> Output {
    let out = Command::new(support::KILN)
        .arg("--root")
        .arg(&env.store)
        .args(args)
        .env(name, value)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[test]
fn multi_stage_fan_in_and_target_pruning() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "FROM busybox AS base\n\
         RUN echo base > /base\n\
         FROM base AS left\n\
         RUN echo left > /left\n\
         FROM base AS right\n\
         RUN echo right > /right\n\
         FROM busybox AS unused\n\
         RUN echo UNUSED-STAGE-RAN > /unused\n\
         FROM busybox AS join\n\
         COPY --from=left /left /l\n\
         COPY --from=right /right /r\n\
         COPY --from=right /base /b\n\
         RUN cat /l /r /b > /joined\n\
         FROM join AS final\n\
         RUN echo FINAL-STAGE-RAN > /final\n",
    )]) else {
        return;
    };
    let out = env.path("out");
    let progress = env.build_ok(&["--target", "join", "--output", &local_out(&out), p(&ctx)]);
    assert_eq!(read(&out, "joined"), "left\nright\nbase\n");
    assert!(!exists(&out, "final"), "the stage after --target ran");
    assert!(!exists(&out, "base") && !exists(&out, "unused"));
    assert!(
        !progress.contains("UNUSED-STAGE-RAN") && !progress.contains("FINAL-STAGE-RAN"),
        "a stage --target does not need appeared in the progress:\n{progress}"
    );
    // `base` is shared by both branches: its RUN is one step, run once.
    assert_eq!(
        progress.matches("RUN echo base > /base").count(),
        1,
        "{progress}"
    );

    // Without --target the last stage is built, and it sees what join made.
    let out2 = env.path("out2");
    let progress = env.build_ok(&["--output", &local_out(&out2), p(&ctx)]);
    assert!(!progress.contains("UNUSED-STAGE-RAN"), "{progress}");
    assert_eq!(read(&out2, "final"), "FINAL-STAGE-RAN\n");
    assert_eq!(read(&out2, "joined"), "left\nright\nbase\n");
    assert!(!exists(&out2, "unused"));
}

#[test]
fn whiteouts_opaque_dirs_hard_links_and_symlinks() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN mkdir -p /d/sub /keep && echo old > /d/old && echo o2 > /d/sub/o2 \
             && echo gone > /gone && echo k > /keep/k \
             && echo data > /h1 && ln /h1 /h2 \
             && ln -s ../h1 /keep/rel && ln -s /h1 /abs && ln -s /nowhere /dangling\n\
         RUN rm /gone /keep/k && rm -rf /d && mkdir /d && echo new > /d/new\n",
    )]) else {
        return;
    };
    let out = env.path("out");
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    let check = |root: &Path, what: &str| {
        assert!(!exists(root, "gone"), "{what}: deleted file is back");
        assert!(!exists(root, "keep/k"), "{what}: deleted file is back");
        assert!(exists(root, "keep"), "{what}: parent dir lost");
        assert!(
            !exists(root, "d/old") && !exists(root, "d/sub"),
            "{what}: replaced dir kept old entries"
        );
        assert_eq!(read(root, "d/new"), "new\n", "{what}");
        let h1 = fs::metadata(root.join("h1")).unwrap();
        let h2 = fs::metadata(root.join("h2")).unwrap();
        assert_eq!(h1.ino(), h2.ino(), "{what}: hard link broken");
        assert_eq!(
            fs::read_link(root.join("keep/rel")).unwrap(),
            Path::new("../h1"),
            "{what}"
        );
        assert_eq!(
            fs::read_link(root.join("abs")).unwrap(),
            Path::new("/h1"),
            "{what}"
        );
        assert_eq!(
            fs::read_link(root.join("dangling")).unwrap(),
            Path::new("/nowhere"),
            "{what}"
        );
        for entry in fs::read_dir(root).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".wh."), "{what}: whiteout leaked: {name}");
        }
    };
    check(&out, "local export");

    // The same through layers: umoci applies the whiteouts kiln wrote.
    let archive = env.path("img.tar");
    env.build_ok(&["--output", &oci_out(&archive), p(&ctx)]);
    let bundle = support::umoci_unpack(&env, &archive);
    check(&bundle.join("rootfs"), "umoci unpack");
}

#[test]
fn copy_and_add_flags_paths_and_sources() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "# syntax=docker/dockerfile:1\n\
             FROM busybox\n\
             WORKDIR /w\n\
             COPY --chown=app:staff src/a.txt /owned\n\
             COPY --chmod=0755 script.sh /exec.sh\n\
             COPY --chmod=u+x,go-w ro.txt /sym.txt\n\
             COPY src /contents\n\
             COPY src/a.txt /newdir/\n\
             COPY src/a.txt /renamed\n\
             COPY src/a.txt rel/\n\
             COPY src/*.txt /glob/\n\
             COPY --exclude=*.log src/ /excl/\n\
             COPY --parents nested/*/*.conf /par/\n\
             COPY --link src/a.txt /linked/\n\
             COPY <<EOF /here.txt\n\
             hello heredoc\n\
             EOF\n\
             ADD pkg.tar.gz /unpacked/\n\
             RUN stat -c '%u:%g' /owned > /meta-owned && stat -c '%a' /exec.sh > /meta-exec \
                 && stat -c '%a' /sym.txt > /meta-sym\n",
        ),
        ("src/a.txt", "a"),
        ("src/sub/b.txt", "b"),
        ("src/c.log", "c"),
        ("script.sh", "#!/bin/sh\necho s\n"),
        ("ro.txt", "r"),
        ("nested/x/f.conf", "f"),
        ("nested/z/g.conf", "g"),
        ("nested/z/skip.txt", "s"),
        ("pkg/inside/hello", "hello from tar"),
    ]) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(ctx.join("script.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(ctx.join("ro.txt"), fs::Permissions::from_mode(0o666)).unwrap();
    run_ok(
        "tar",
        &[
            "-C",
            p(&ctx.join("pkg")),
            "-czf",
            p(&ctx.join("pkg.tar.gz")),
            "inside",
        ],
    );
    fs::remove_dir_all(ctx.join("pkg")).unwrap();

    let out = env.path("out");
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    assert_eq!(read(&out, "meta-owned"), "1000:50\n", "--chown=app:staff");
    assert_eq!(read(&out, "meta-exec"), "755\n", "--chmod=0755");
    assert_eq!(read(&out, "meta-sym"), "744\n", "--chmod=u+x,go-w on 0666");
    // A directory source copies its contents, not itself.
    assert_eq!(read(&out, "contents/a.txt"), "a");
    assert_eq!(read(&out, "contents/sub/b.txt"), "b");
    assert!(exists(&out, "contents/c.log") && !exists(&out, "contents/src"));
    // Trailing slash: into a directory; none: the file itself.
    assert_eq!(read(&out, "newdir/a.txt"), "a");
    assert_eq!(read(&out, "renamed"), "a");
    // Relative destination resolves against WORKDIR.
    assert_eq!(read(&out, "w/rel/a.txt"), "a");
    assert!(exists(&out, "glob/a.txt"));
    assert!(
        !exists(&out, "glob/c.log") && !exists(&out, "glob/sub") && !exists(&out, "glob/b.txt")
    );
    assert!(exists(&out, "excl/a.txt") && exists(&out, "excl/sub/b.txt"));
    assert!(!exists(&out, "excl/c.log"), "--exclude=*.log copied c.log");
    assert_eq!(read(&out, "par/nested/x/f.conf"), "f", "--parents");
    assert_eq!(read(&out, "par/nested/z/g.conf"), "g", "--parents");
    assert!(!exists(&out, "par/nested/z/skip.txt") && !exists(&out, "par/f.conf"));
    assert_eq!(read(&out, "linked/a.txt"), "a", "--link");
    assert_eq!(read(&out, "here.txt"), "hello heredoc\n");
    assert_eq!(read(&out, "unpacked/inside/hello"), "hello from tar");
    assert!(!exists(&out, "unpacked/pkg.tar.gz"), "ADD kept the archive");
}

#[test]
fn dockerignore_and_dockerfile_specific_ignore_precedence() {
    let Some((env, ctx)) = env_with_context(&[
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        ("custom.Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        (".dockerignore", "*.secret\nsub/**/*.gen\n"),
        ("custom.Dockerfile.dockerignore", "*.tmp\n"),
        ("a.secret", "s"),
        ("b.tmp", "t"),
        ("c.txt", "c"),
        ("sub/deep/x.gen", "g"),
    ]) else {
        return;
    };
    let out = env.path("default");
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    assert!(!exists(&out, "ctx/a.secret"), ".dockerignore not applied");
    assert!(
        !exists(&out, "ctx/sub/deep/x.gen"),
        ".dockerignore ** not applied"
    );
    assert!(exists(&out, "ctx/b.tmp") && exists(&out, "ctx/c.txt"));

    let out = env.path("custom");
    let file = ctx.join("custom.Dockerfile");
    env.build_ok(&["-f", p(&file), "--output", &local_out(&out), p(&ctx)]);
    assert!(
        !exists(&out, "ctx/b.tmp"),
        "<Dockerfile>.dockerignore not applied"
    );
    assert!(
        exists(&out, "ctx/a.secret") && exists(&out, "ctx/sub/deep/x.gen"),
        "<Dockerfile>.dockerignore must replace .dockerignore, not add to it"
    );
}

#[test]
fn arg_scoping_build_arg_overrides_and_env_precedence() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "ARG VERSION=1.0\n\
         ARG ONLY_GLOBAL=g\n\
         ARG BASE=busybox\n\
         FROM ${BASE} AS first\n\
         ARG VERSION\n\
         ARG STAGE_ARG=default\n\
         ENV FROM_ENV=env-value\n\
         ARG FROM_ENV=arg-value\n\
         ARG DERIVED=x\n\
         ENV COMBINED=pre-${DERIVED}\n\
         RUN echo \"v=$VERSION g=${ONLY_GLOBAL:-unset} s=$STAGE_ARG e=$FROM_ENV c=$COMBINED\" > /args\n\
         FROM ${BASE}\n\
         COPY --from=first /args /args\n\
         RUN echo \"second v=${VERSION:-unset} s=${STAGE_ARG:-unset}\" > /args2\n",
    )]) else {
        return;
    };
    let out = env.path("defaults");
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    assert_eq!(
        read(&out, "args"),
        "v=1.0 g=unset s=default e=env-value c=pre-x\n"
    );
    assert_eq!(read(&out, "args2"), "second v=unset s=unset\n");

    let out = env.path("overridden");
    env.build_ok(&[
        "--build-arg",
        "VERSION=2.0",
        "--build-arg",
        "STAGE_ARG=cli",
        "--build-arg",
        "FROM_ENV=cli",
        "--build-arg",
        "DERIVED=y",
        "--build-arg",
        "ONLY_GLOBAL=cli-global",
        "--output",
        &local_out(&out),
        p(&ctx),
    ]);
    assert_eq!(
        read(&out, "args"),
        "v=2.0 g=unset s=cli e=env-value c=pre-y\n",
        "--build-arg must override ARG defaults but never an ENV of the same name"
    );
    assert_eq!(read(&out, "args2"), "second v=unset s=unset\n");

    // ARGs do not end up in the image's environment; ENVs do.
    let layout = build_oci(&env, &ctx, "first", &["--target", "first"]);
    let config = layout.config();
    let envs: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(envs.contains(&"FROM_ENV=env-value"), "{envs:?}");
    assert!(envs.contains(&"COMBINED=pre-x"), "{envs:?}");
    assert!(
        !envs
            .iter()
            .any(|e| e.starts_with("VERSION=") || e.starts_with("STAGE_ARG=")),
        "ARG leaked into Env: {envs:?}"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_only() {
    let Some(env) = Env::new() else { return };
    let parent = env.context(
        "parent",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo triggered > /t\nRUN echo parent > /p\n",
        )],
    );
    let parent_layout = build_oci(&env, &parent, "parent", &["-t", "a"]);
    let parent_config = parent_layout.config();
    assert_eq!(
        parent_config["config"]["OnBuild"],
        serde_json::json!(["RUN echo triggered > /t"])
    );
    let listing = text(&env.kiln(&["images"]).stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.split_whitespace().next() == Some("a")),
        "{listing}"
    );

    let child = env.context(
        "child",
        &[("Dockerfile", "FROM a\nRUN cat /t /p > /seen\n")],
    );
    let out = env.path("child-out");
    env.build_ok(&["--output", &local_out(&out), p(&child)]);
    assert_eq!(read(&out, "t"), "triggered\n");
    assert_eq!(read(&out, "seen"), "triggered\nparent\n");

    let child_config = build_oci(&env, &child, "child", &[]).config();
    let onbuild = &child_config["config"]["OnBuild"];
    assert!(
        onbuild.is_null() || onbuild.as_array().is_some_and(|a| a.is_empty()),
        "triggers must not be inherited by the child: {onbuild}"
    );
}

#[test]
fn run_mounts_cache_bind_tmpfs_and_secrets() {
    let Some(env) = Env::new() else { return };
    const FILE_SECRET: &str = "filesecret-Qm8vX2pL";
    const ENV_SECRET: &str = "envsecret-Zr4tY7wK";
    // Cache: the first build writes, the second (a different RUN) reads it back.
    let c1 = env.context(
        "cache1",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/cache echo first-build > /cache/stamp\n",
        )],
    );
    env.build_ok(&["--output", &local_out(&env.path("c1")), p(&c1)]);
    let c2 = env.context(
        "cache2",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/cache cat /cache/stamp > /seen\n",
        )],
    );
    let c2out = env.path("c2");
    env.build_ok(&["--output", &local_out(&c2out), p(&c2)]);
    assert_eq!(
        read(&c2out, "seen"),
        "first-build\n",
        "cache mount did not persist"
    );
    assert!(
        !exists(&c2out, "cache/stamp"),
        "cache contents leaked into the image"
    );

    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox AS src\n\
             RUN echo fromstage > /payload\n\
             FROM busybox\n\
             RUN --mount=type=bind,from=src,source=/payload,target=/mnt/p cat /mnt/p > /bound\n\
             RUN --mount=type=bind,from=src,target=/mnt/s sh -c 'if touch /mnt/s/w 2>/dev/null; then echo writable; else echo readonly; fi' > /rw\n\
             RUN --mount=type=bind,source=ctxfile.txt,target=/c.txt cat /c.txt > /fromctx\n\
             RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && grep \" /scratch \" /proc/mounts | grep -q tmpfs && echo tmpfs' > /tmpfs\n\
             RUN --mount=type=secret,id=tok rev /run/secrets/tok > /secret-rev\n\
             RUN --mount=type=secret,id=envtok,env=SECRET_VAR sh -c 'printf %s \"$SECRET_VAR\" | rev' > /envsecret-rev\n\
             RUN --mount=type=secret,id=envtok,target=/etc/envtok rev /etc/envtok > /envsecret-file-rev\n",
            ),
            ("ctxfile.txt", "from context\n"),
        ],
    );
    let secret_file = env.path("secret-src");
    fs::write(&secret_file, FILE_SECRET).unwrap();
    let out = env.path("out");
    let archive = env.path("img.tar");
    let meta = env.path("meta.json");
    let src = format!("id=tok,src={}", secret_file.display());
    let run = |extra: &[&str]| {
        let mut full: Vec<&str> = vec!["build", "--progress=plain", "--secret", &src];
        full.extend_from_slice(&["--secret", "id=envtok,env=KILN_TEST_SECRET"]);
        full.extend_from_slice(extra);
        full.push(p(&ctx));
        let output = kiln_ok_with_var(&env, &full, ("KILN_TEST_SECRET", ENV_SECRET));
        format!("{}{}", text(&output.stdout), text(&output.stderr))
    };
    let mut progress = run(&["--output", &local_out(&out)]);
    assert_eq!(read(&out, "bound"), "fromstage\n");
    assert_eq!(
        read(&out, "rw"),
        "readonly\n",
        "a bind mount must be read-only by default"
    );
    assert!(!exists(&out, "payload") && !exists(&out, "mnt/s/w"));
    assert_eq!(read(&out, "fromctx"), "from context\n");
    assert_eq!(read(&out, "tmpfs"), "tmpfs\n");
    assert!(
        !exists(&out, "scratch/t"),
        "tmpfs contents leaked into the image"
    );
    let rev = |s: &str| s.chars().rev().collect::<String>();
    assert_eq!(read(&out, "secret-rev").trim_end(), rev(FILE_SECRET));
    assert_eq!(read(&out, "envsecret-rev").trim_end(), rev(ENV_SECRET));
    assert_eq!(read(&out, "envsecret-file-rev").trim_end(), rev(ENV_SECRET));
    assert!(!exists(&out, "run/secrets/tok") && !exists(&out, "etc/envtok"));

    progress.push_str(&run(&[
        "--metadata-file",
        p(&meta),
        "--output",
        &oci_out(&archive),
    ]));
    let layout = Layout::from_archive(&archive, &env.path("layout"));
    for secret in [FILE_SECRET, ENV_SECRET] {
        assert!(!progress.contains(secret), "secret in progress output");
        let metadata = fs::read(&meta).unwrap();
        assert!(
            !contains(&metadata, secret.as_bytes()),
            "secret in metadata file"
        );
        for (name, blob) in layout.all_blobs_decompressed() {
            assert!(!contains(&blob, secret.as_bytes()), "secret in blob {name}");
        }
    }
    let config = layout.config().to_string();
    assert!(!config.contains(FILE_SECRET) && !config.contains(ENV_SECRET));
    support::assert_store_tmp_clean(&env.store);
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn image_config_from_instructions_and_flags() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "FROM busybox AS withcmd\n\
         CMD [\"base-cmd\"]\n\
         FROM withcmd AS entry\n\
         ENTRYPOINT [\"/bin/echo\", \"hi\"]\n\
         FROM withcmd AS entrycmd\n\
         ENTRYPOINT echo from-shell\n\
         CMD [\"a\", \"b\"]\n\
         FROM busybox AS full\n\
         ENV A=1 B=\"two words\"\n\
         LABEL org.test.a=x \"org.test.b\"=\"y z\"\n\
         EXPOSE 8080 53/udp\n\
         VOLUME [\"/data\"]\n\
         RUN echo one > /one\n\
         WORKDIR /srv\n\
         RUN echo two > two\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         USER app:staff\n\
         STOPSIGNAL SIGQUIT\n\
         HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD [\"true\"]\n\
         CMD echo shell form\n",
    )]) else {
        return;
    };
    let layout = build_oci(&env, &ctx, "full", &["--label", "cli.label=from-flag"]);
    let manifest = layout.manifest();
    let config = layout.config();
    let c = &config["config"];
    let envs = strings(&c["Env"]);
    assert!(
        envs.contains(&"A=1") && envs.contains(&"B=two words"),
        "{envs:?}"
    );
    assert_eq!(c["Labels"]["org.test.a"], "x");
    assert_eq!(c["Labels"]["org.test.b"], "y z");
    assert_eq!(c["Labels"]["cli.label"], "from-flag");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["User"], "app:staff");
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(strings(&c["Shell"]), ["/bin/sh", "-ec"]);
    assert_eq!(strings(&c["Cmd"]), ["/bin/sh", "-ec", "echo shell form"]);
    assert_eq!(strings(&c["Healthcheck"]["Test"]), ["CMD", "true"]);
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Timeout"], 2_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 3);

    let layers = manifest["layers"].as_array().unwrap().len();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap().len();
    assert_eq!(diff_ids, layers, "rootfs.diff_ids vs manifest layers");
    let history = config["history"].as_array().unwrap();
    let empties = history
        .iter()
        .filter(|h| h["empty_layer"].as_bool() == Some(true))
        .count();
    assert_eq!(
        history.len() - empties,
        layers,
        "non-empty history entries vs layers"
    );
    // base layer, RUN one, RUN two, and WORKDIR /srv if it makes a layer for the new dir
    assert!((3..=4).contains(&layers), "{layers} layers");
    // the base image's one entry plus one per instruction of the stage after FROM
    assert_eq!(history.len(), 1 + 12, "{history:#?}");

    let entry = build_oci(&env, &ctx, "entry", &["--target", "entry"]).config();
    assert_eq!(strings(&entry["config"]["Entrypoint"]), ["/bin/echo", "hi"]);
    let cmd = &entry["config"]["Cmd"];
    assert!(
        cmd.is_null() || cmd.as_array().is_some_and(|a| a.is_empty()),
        "ENTRYPOINT must clear the inherited CMD: {cmd}"
    );
    let entrycmd = build_oci(&env, &ctx, "entrycmd", &["--target", "entrycmd"]).config();
    assert_eq!(
        strings(&entrycmd["config"]["Entrypoint"]),
        ["/bin/sh", "-c", "echo from-shell"]
    );
    assert_eq!(strings(&entrycmd["config"]["Cmd"]), ["a", "b"]);
}

#[test]
fn failing_run_and_bad_dockerfile_are_reported() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo first\n\
         RUN echo line-one && echo line-two && echo to-stderr >&2 && exit 7\n",
    )]) else {
        return;
    };
    let out = env.build(&["--output", &local_out(&env.path("out")), p(&ctx)]);
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("3/3] RUN echo line-one"),
        "step not named:\n{err}"
    );
    assert!(err.contains("exit code: 7"), "exit code missing:\n{err}");
    assert!(
        err.contains("line-two") && err.contains("to-stderr"),
        "last output missing:\n{err}"
    );
    assert!(
        !env.path("out").join("bin").exists(),
        "a failed build exported"
    );

    let bad = env.context(
        "bad",
        &[("Dockerfile", "FROM busybox\nRUN echo ok\nCOPPY a b\n")],
    );
    let out = env.build(&[p(&bad)]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:3"), "line not named:\n{err}");
    assert!(err.contains('^'), "no caret:\n{err}");
    assert!(err.contains("COPPY"), "offending text not shown:\n{err}");

    // A semantic error found after parsing names its line too.
    let bad = env.context(
        "bad2",
        &[
            ("Dockerfile", "FROM busybox\nCOPY a b /dest\n"),
            ("a", "a"),
            ("b", "b"),
        ],
    );
    let out = env.build(&[p(&bad)]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:2"), "line not named:\n{err}");
    assert!(err.contains("COPY a b /dest"), "line not shown:\n{err}");
}

#[test]
fn outputs_are_read_by_skopeo_and_umoci() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built > /built\nCMD [\"cat\", \"/hello.txt\"]\n",
        ),
        ("hello.txt", "hello\n"),
    ]) else {
        return;
    };
    let epoch = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    // OCI archive, with iidfile and metadata file.
    let archive = env.path("img.tar");
    let iid = env.path("iid");
    let meta = env.path("meta.json");
    let mut args = epoch.to_vec();
    args.extend_from_slice(&["--iidfile", p(&iid), "--metadata-file", p(&meta)]);
    args.extend_from_slice(&["-t", "built:v1"]);
    build_to(&env, &oci_out(&archive), &args, &ctx);
    let layout = Layout::from_archive(&archive, &env.path("layout"));
    let inspect = skopeo_inspect(&[&format!("oci-archive:{}", archive.display())]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    let iid_text = fs::read_to_string(&iid).unwrap();
    assert_eq!(
        iid_text.trim(),
        layout.config_digest(),
        "--iidfile is the config digest"
    );
    let metadata: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        metadata["containerimage.digest"].as_str(),
        Some(layout.manifest_digest().as_str()),
        "{metadata}"
    );
    let oci_dir = env.path("skopeo-oci");
    run_ok(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", archive.display()),
            &format!("oci:{}:t", oci_dir.display()),
        ],
    );
    let bundle = env.path("bundle");
    run_ok(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:t", oci_dir.display()),
            p(&bundle),
        ],
    );
    assert_eq!(read(&bundle.join("rootfs"), "hello.txt"), "hello\n");
    assert_eq!(read(&bundle.join("rootfs"), "built"), "built\n");
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // OCI layout directory.
    let dir = env.path("ocidir");
    let out = format!("type=oci,dest={},tar=false", dir.display());
    build_to(&env, &out, &epoch, &ctx);
    let inspect = skopeo_inspect(&[&format!("oci:{}", dir.display())]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        Layout { dir: dir.clone() }.config_digest(),
        layout.config_digest(),
        "same build, same config, whatever the output"
    );

    // Docker archive.
    let docker = env.path("docker.tar");
    let out = format!("type=docker,dest={}", docker.display());
    let mut args = vec!["-t", "dock:1"];
    args.extend_from_slice(&epoch);
    build_to(&env, &out, &args, &ctx);
    let inspect = skopeo_inspect(&[&format!("docker-archive:{}", docker.display())]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    assert!(
        strings(&inspect["Env"])
            .iter()
            .any(|e| e.starts_with("PATH=")),
        "{inspect}"
    );

    // Local directory and rootfs tar.
    let local = env.path("local");
    env.build_ok(&["--output", &local_out(&local), p(&ctx)]);
    assert_eq!(read(&local, "hello.txt"), "hello\n");
    assert_eq!(read(&local, "built"), "built\n");
    let tarball = env.path("rootfs-out.tar");
    env.build_ok(&[
        "--output",
        &format!("type=tar,dest={}", tarball.display()),
        p(&ctx),
    ]);
    let listing = run_ok("tar", &["-tf", p(&tarball)]);
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/'))
        .collect();
    for want in ["hello.txt", "built", "bin/busybox"] {
        assert!(names.contains(&want), "{want} not in rootfs tar: {names:?}");
    }

    // -t: listed by `kiln images`, saved, read by skopeo.
    let images = text(&env.kiln(&["images"]).stdout);
    assert!(
        images.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 2 && f[0].ends_with("built") && f[1] == "v1"
        }),
        "{images}"
    );
    let saved = env.path("saved.tar");
    let out = env.kiln(&["save", "-o", p(&saved), "built:v1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspect = skopeo_inspect(&["--raw", &format!("docker-archive:{}", saved.display())]);
    assert_eq!(inspect["config"]["digest"].as_str(), Some(iid_text.trim()));

    // zstd compression.
    let zarchive = env.path("zstd.tar");
    let out = format!("type=oci,dest={},compression=zstd", zarchive.display());
    env.build_ok(&["--output", &out, p(&ctx)]);
    let zl = Layout::from_archive(&zarchive, &env.path("zstd-layout"));
    let manifest = zl.manifest();
    let layers = manifest["layers"].as_array().unwrap();
    let last = layers.last().unwrap();
    assert_eq!(
        last["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let raw = zl.blob(last["digest"].as_str().unwrap());
    assert!(raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "not zstd data");
    assert!(contains(&support::decompress(&raw), b"built\n"));
    run_ok(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", zarchive.display())],
    );
    support::assert_store_tmp_clean(&env.store);
}

#[test]
fn source_date_epoch_gives_identical_digests_across_stores_and_mtimes() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /app/\nRUN echo made > /app/made && mkdir -p /var/x\nLABEL v=1\n",
        ),
        ("a.txt", "a\n"),
        ("dir/b.txt", "b\n"),
    ]) else {
        return;
    };
    let digest = |store: &Path, name: &str| -> String {
        let archive = env.path(&format!("{name}.tar"));
        let out = support::kiln_at(
            store,
            &[
                "build",
                "--progress=plain",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                "--output",
                &oci_out(&archive),
                p(&ctx),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        Layout::from_archive(&archive, &env.path(&format!("{name}-layout"))).manifest_digest()
    };
    let first = digest(&env.store, "first");
    // New mtimes in the context, and a second store so nothing comes from a cache.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for f in ["a.txt", "dir/b.txt"] {
        let bytes = fs::read(ctx.join(f)).unwrap();
        fs::write(ctx.join(f), bytes).unwrap();
    }
    // Timestamps after the epoch are clamped to it (older ones are kept, as BuildKit does).
    run_ok("touch", &["-d", "2025-06-01", p(&ctx.join("dir"))]);
    let store2 = env.path("store2");
    env.import_busybox(&store2, "busybox:latest");
    let second = digest(&store2, "second");
    assert_eq!(first, second, "SOURCE_DATE_EPOCH builds differ");
    let third = digest(&env.store, "third");
    assert_eq!(first, third);
}

#[test]
fn default_path_is_visible_to_expansion() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "FROM busybox\nENV PATH=$PATH:/opt/bin\nRUN echo \"$PATH\" > /path\n",
    )]) else {
        return;
    };
    let layout = build_oci(&env, &ctx, "img", &[]);
    let config = layout.config();
    let envs = strings(&config["config"]["Env"]);
    let want = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin";
    assert!(envs.contains(&want), "{envs:?}");
    let out = env.path("out");
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    assert_eq!(read(&out, "path"), format!("{}\n", &want["PATH=".len()..]));
}

#[test]
fn run_layer_holds_only_what_the_run_changed() {
    let Some((env, ctx)) = env_with_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo x > /only\nRUN mkdir -p /opt/d && echo y > /opt/d/f\n",
    )]) else {
        return;
    };
    let layout = build_oci(&env, &ctx, "img", &[]);
    let manifest = layout.manifest();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let names = |i: usize| -> Vec<String> {
        let mut n: Vec<String> =
            support::layer_entries(&layout.blob(layers[i]["digest"].as_str().unwrap()))
                .into_iter()
                .map(|(p, _)| p)
                .collect();
        n.sort();
        n
    };
    // The stubs runc needs (/etc/hosts, /etc/resolv.conf, /dev, /proc...) are no change.
    assert_eq!(names(1), ["only"]);
    assert_eq!(names(2), ["opt", "opt/d", "opt/d/f"]);
    support::assert_store_tmp_clean(&env.store);
}

#[test]
fn build_arg_from_env_cache_hits_no_cache_tags_and_named_contexts() {
    let Some(env) = Env::new() else { return };
    let extra = env.context("extra", &[("from-extra.txt", "extra\n")]);
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox AS Base\n\
             ARG FROMENV\n\
             RUN echo \"fromenv=$FROMENV\" > /fe\n\
             COPY --from=extra from-extra.txt /e.txt\n\
             COPY --from=img /bin/busybox /copied-busybox\n\
             FROM scratch AS bare\n\
             COPY --from=base /fe /fe\n\
             COPY c.txt /\n",
            ),
            ("c.txt", "c\n"),
        ],
    );
    let build = |extra_args: &[&str]| {
        let mut args = vec![
            "build",
            "--progress=plain",
            "--build-arg",
            "FROMENV",
            "--build-context",
        ];
        let named = format!("extra={}", extra.display());
        args.push(&named);
        args.extend_from_slice(&["--build-context", "img=docker-image://busybox:latest"]);
        args.extend_from_slice(extra_args);
        args.push(p(&ctx));
        text(&kiln_ok_with_var(&env, &args, ("FROMENV", "hello-env")).stderr)
    };
    let out = env.path("out");
    let first = build(&["--output", &local_out(&out)]);
    assert!(!first.contains("CACHED"), "{first}");
    assert_eq!(read(&out, "fe"), "fromenv=hello-env\n");
    assert_eq!(read(&out, "c.txt"), "c\n");
    let all: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        all.len(),
        2,
        "FROM scratch holds only what was copied: {all:?}"
    );

    let base = env.path("base");
    let again = build(&[
        "--target",
        "BASE",
        "-t",
        "one",
        "-t",
        "two:x",
        "--output",
        &local_out(&base),
    ]);
    assert!(
        again.contains("CACHED"),
        "an unchanged build ran again:\n{again}"
    );
    assert!(!again.contains("cache miss"), "{again}");
    assert_eq!(read(&base, "e.txt"), "extra\n");
    assert!(base.join("copied-busybox").is_file());
    let images = text(&env.kiln(&["images"]).stdout);
    for (repo, tag) in [("one", "latest"), ("two", "x")] {
        assert!(
            images.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 2 && f[0].ends_with(repo) && f[1] == tag
            }),
            "{repo}:{tag} missing:\n{images}"
        );
    }

    let fresh = build(&["--no-cache", "--output", &local_out(&env.path("nc"))]);
    assert!(
        !fresh.contains("CACHED"),
        "--no-cache used the cache:\n{fresh}"
    );
    assert!(fresh.contains("RUN echo \"fromenv=$FROMENV\""), "{fresh}");
    support::assert_store_tmp_clean(&env.store);
}

#[test]
fn inherited_config_ownership_cache_options_and_network_none() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "FROM busybox AS base\n\
             LABEL keep=base over=base\n\
             CMD [\"base-cmd\"]\n\
             STOPSIGNAL SIGUSR1\n\
             ARG PORT=9000\n\
             EXPOSE ${PORT}\n\
             ENV LEGACY value with spaces\n\
             FROM base\n\
             LABEL over=child\n\
             COPY --chown=app c.txt /c-app\n\
             COPY --chown=1000:50 c.txt /c-num\n\
             RUN --mount=type=cache,target=/cc,uid=1000,gid=50,mode=0700 stat -c '%u:%g %a' /cc > /cc-meta\n\
             RUN --network=none ls /sys/class/net > /nets\n\
             RUN stat -c '%u:%g' /c-app /c-num > /own\n",
        ),
        ("c.txt", "c\n"),
    ]) else {
        return;
    };
    let layout = build_oci(&env, &ctx, "img", &["--label", "over=flag"]);
    let config = layout.config();
    let c = &config["config"];
    assert_eq!(
        strings(&c["Cmd"]),
        ["base-cmd"],
        "CMD is inherited from a stage"
    );
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"9000/tcp": {}}));
    assert!(strings(&c["Env"]).contains(&"LEGACY=value with spaces"));
    assert_eq!(
        c["Labels"],
        serde_json::json!({"keep": "base", "over": "flag"})
    );

    let out = env.path("out");
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    assert_eq!(
        read(&out, "own"),
        "1000:1000\n1000:50\n",
        "--chown=user takes the user's group"
    );
    assert_eq!(read(&out, "cc-meta"), "1000:50 700\n");
    assert_eq!(
        read(&out, "nets"),
        "lo\n",
        "--network=none has only loopback"
    );
}

#[test]
fn special_modes_long_names_and_symlink_sources_survive_layers() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "FROM busybox AS s\n\
             RUN echo f1 > /f1 && ln -s /f1 /link && mkdir /empty \
                 && echo s > /suid && chmod 4755 /suid && mkdir /sticky && chmod 1777 /sticky\n\
             RUN mkdir -p /long/LONGA/LONGB && echo deep > /long/LONGA/LONGB/LONGC.txt \
                 && echo u > /ünïcødé\n\
             FROM s\n\
             COPY --from=s /link /copied\n\
             COPY dir /dir/\n\
             COPY c.txt /c.txt\n\
             RUN rm /f1 && echo again > /f1\n",
        ),
        ("c.txt", "c\n"),
    ]) else {
        return;
    };
    let text_df = fs::read_to_string(ctx.join("Dockerfile"))
        .unwrap()
        .replace("LONGA", &"a".repeat(60))
        .replace("LONGB", &"b".repeat(70))
        .replace("LONGC", &"c".repeat(80));
    fs::write(ctx.join("Dockerfile"), text_df).unwrap();
    fs::create_dir_all(ctx.join("dir")).unwrap();
    std::os::unix::fs::symlink("../c.txt", ctx.join("dir/lnk")).unwrap();
    run_ok(
        "touch",
        &["-d", "2020-02-02 00:00:00", p(&ctx.join("c.txt"))],
    );

    let archive = env.path("img.tar");
    env.build_ok(&["--output", &oci_out(&archive), p(&ctx)]);
    let bundle = support::umoci_unpack(&env, &archive);
    let root = bundle.join("rootfs");
    let mode = |rel: &str| fs::symlink_metadata(root.join(rel)).unwrap().mode() & 0o7777;
    assert_eq!(mode("suid"), 0o4755);
    assert_eq!(mode("sticky"), 0o1777);
    assert!(root.join("empty").is_dir());
    assert_eq!(
        read(&root, "copied"),
        "f1\n",
        "a symlink source is followed"
    );
    assert!(
        !fs::symlink_metadata(root.join("copied"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_link(root.join("dir/lnk")).unwrap(),
        Path::new("../c.txt")
    );
    assert_eq!(read(&root, "f1"), "again\n");
    assert_eq!(read(&root, "ünïcødé"), "u\n");
    let long = format!(
        "long/{}/{}/{}.txt",
        "a".repeat(60),
        "b".repeat(70),
        "c".repeat(80)
    );
    assert_eq!(read(&root, &long), "deep\n");
    // COPY keeps the context file's mtime (no SOURCE_DATE_EPOCH here).
    let mtime = fs::metadata(root.join("c.txt")).unwrap().mtime();
    assert_eq!(mtime, fs::metadata(ctx.join("c.txt")).unwrap().mtime());
}

/// Whether the step was `CACHED`, or the whole build was answered by the short cut
/// (which only happens when nothing the build reads changed).
fn cached_or_short_cut(progress: &str, what: &str) -> bool {
    progress.contains("nothing changed since the last build of this request")
        || step_cached(progress, what)
}

/// Whether the step whose description contains `what` was `CACHED` in plain progress.
fn step_cached(progress: &str, what: &str) -> bool {
    let number = progress
        .lines()
        .find_map(|l| {
            let (n, rest) = l.strip_prefix('#')?.split_once(' ')?;
            (rest.starts_with('[') && rest.contains(what)).then(|| n.to_string())
        })
        .unwrap_or_else(|| panic!("no step {what:?} in:\n{progress}"));
    progress.lines().any(|l| l == format!("#{number} CACHED"))
}

#[test]
fn cache_follows_context_content_modes_dockerignore_and_build_args() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "FROM busybox AS one\n\
             COPY . /c/\n\
             RUN stat -c %a /c/f > /mode && cat /c/f > /content\n\
             FROM one\n\
             ARG LATE\n\
             RUN echo \"$LATE\" > /late\n",
        ),
        ("f", "v1\n"),
        ("ignored", "ig\n"),
        (".dockerignore", "ignored\n"),
    ]) else {
        return;
    };
    let out = env.path("out");
    let build = |late: &str| {
        env.build_ok(&[
            "--build-arg",
            &format!("LATE={late}"),
            "--output",
            &local_out(&out),
            p(&ctx),
        ])
    };
    let (copy, run, late) = ("COPY . /c/", "RUN stat", "RUN echo \"$LATE\"");
    let first = build("1");
    assert!(!cached_or_short_cut(&first, copy) && !cached_or_short_cut(&first, run));
    let again = build("1");
    assert!(
        cached_or_short_cut(&again, copy)
            && cached_or_short_cut(&again, run)
            && cached_or_short_cut(&again, late)
    );

    fs::write(ctx.join("ignored"), "changed\n").unwrap();
    let ignored = build("1");
    assert!(
        cached_or_short_cut(&ignored, copy),
        "a .dockerignore'd change invalidated COPY"
    );

    let other_arg = build("2");
    assert!(
        cached_or_short_cut(&other_arg, run),
        "an ARG of a later stage invalidated an earlier step"
    );
    assert!(
        !cached_or_short_cut(&other_arg, late),
        "a changed ARG value was not a cache miss"
    );
    assert_eq!(read(&out, "late"), "2\n");

    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(ctx.join("f"), fs::Permissions::from_mode(0o755)).unwrap();
    let mode = build("2");
    assert!(
        !cached_or_short_cut(&mode, copy),
        "a mode change kept the COPY cached"
    );
    assert_eq!(read(&out, "mode"), "755\n");

    fs::write(ctx.join("f"), "v2\n").unwrap();
    let content = build("2");
    assert!(
        !cached_or_short_cut(&content, copy),
        "a content change kept the COPY cached"
    );
    assert_eq!(read(&out, "content"), "v2\n");

    fs::write(ctx.join("new"), "n").unwrap();
    assert!(
        !cached_or_short_cut(&build("2"), copy),
        "a new file kept the COPY cached"
    );
    fs::remove_file(ctx.join("new")).unwrap();
    assert!(
        cached_or_short_cut(&build("2"), copy),
        "back to a known context: cache hit"
    );
}

#[test]

fn tar_and_oci_outputs_to_stdout_with_dest_dash() {
    let Some((env, ctx)) = env_with_context(&[("Dockerfile", "FROM busybox\nRUN echo x > /x\n")])
    else {
        return;
    };
    let cwd = env.path("cwd");
    fs::create_dir_all(&cwd).unwrap();
    for (kind, member) in [("tar", "x"), ("oci", "index.json")] {
        let out = Command::new(support::KILN)
            .current_dir(&cwd)
            .arg("--root")
            .arg(&env.store)
            .args(["build", "--progress=quiet", "--output"])
            .arg(format!("type={kind},dest=-"))
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            !cwd.join("-").exists(),
            "type={kind},dest=- wrote a file named '-'"
        );
        let names: Vec<String> = tar::Archive::new(out.stdout.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.trim_start_matches("./") == member),
            "type={kind},dest=-: stdout is not the archive: {names:?}"
        );
    }
}

#[test]
fn max_parallelism_bounds_concurrent_runs() {
    let Some(env) = Env::new() else { return };
    // Each RUN marks a shared cache dir while it runs and records what it saw there.
    let step = |name: &str| {
        format!(
            "FROM busybox AS {name}\n\
         RUN --mount=type=cache,target=/m,id=par,sharing=shared \
             sh -c 'touch /m/{name}; sleep 2; ls /m > /seen-{name}; rm /m/{name}'\n"
        )
    };
    let dockerfile = format!(
        "{}{}FROM busybox\nCOPY --from=a /seen-a /\nCOPY --from=b /seen-b /\n",
        step("a"),
        step("b")
    );
    let ctx = env.context("ctx", &[("Dockerfile", &dockerfile)]);
    let serial = env.path("serial");
    env.build_ok(&[
        "--max-parallelism",
        "1",
        "--output",
        &local_out(&serial),
        p(&ctx),
    ]);
    assert_eq!(read(&serial, "seen-a"), "a\n", "b ran while a did");
    assert_eq!(read(&serial, "seen-b"), "b\n", "a ran while b did");

    let parallel = env.path("parallel");
    env.build_ok(&["--no-cache", "--output", &local_out(&parallel), p(&ctx)]);
    let seen = read(&parallel, "seen-a") + &read(&parallel, "seen-b");
    assert!(
        seen.lines().count() > 2,
        "independent stages did not overlap: {seen:?}"
    );
}

/// An image `onb` whose triggers COPY from, and take an ARG of, the child's build.
fn onbuild_parent_and_child(env: &Env) -> PathBuf {
    let parent = env.context(
        "onb",
        &[(
            "Dockerfile",
            "FROM busybox\n\
         ONBUILD ARG GREETING=hi\n\
         ONBUILD COPY app.txt /app/\n\
         ONBUILD RUN echo \"$GREETING\" > /app/greet\n",
        )],
    );
    env.build_ok(&["-t", "onb", p(&parent)]);
    env.context(
        "onb-child",
        &[
            (
                "Dockerfile",
                "FROM onb AS first\n\
             RUN cat /app/app.txt /app/greet > /seen\n\
             FROM first\n\
             RUN ls /app > /again\n",
            ),
            ("app.txt", "child\n"),
        ],
    )
}

#[test]
fn onbuild_copy_and_arg_triggers_use_the_child_build() {
    let Some(env) = Env::new() else { return };
    let child = onbuild_parent_and_child(&env);
    let out = env.path("out");
    let progress = env.build_ok(&[
        "--build-arg",
        "GREETING=yo",
        "--output",
        &local_out(&out),
        p(&child),
    ]);
    assert_eq!(read(&out, "seen"), "child\nyo\n");
    // Triggers run once, in the stage built FROM the image, not again in its children.
    assert_eq!(read(&out, "again"), "app.txt\ngreet\n");
    assert_eq!(
        progress.matches("COPY app.txt /app/").count(),
        1,
        "{progress}"
    );
}

#[test]
fn step_numbers_never_exceed_the_step_count() {
    let Some(env) = Env::new() else { return };
    let child = onbuild_parent_and_child(&env);
    let progress = env.build_ok(&["--output", &local_out(&env.path("out")), p(&child)]);
    let mut labels = 0;
    for line in progress.lines() {
        let Some(open) = line.find(" [") else {
            continue;
        };
        let Some(close) = line[open..].find(']') else {
            continue;
        };
        let inner = &line[open + 2..open + close];
        let Some((_, frac)) = inner.rsplit_once(' ') else {
            continue;
        };
        let Some((n, m)) = frac.split_once('/') else {
            continue;
        };
        let (Ok(n), Ok(m)) = (n.parse::<usize>(), m.parse::<usize>()) else {
            continue;
        };
        labels += 1;
        assert!(n <= m, "step {n} of {m}: {line}");
    }
    assert!(labels >= 4, "{progress}");
}

/// An OCI layout directory holding an image with `/layered`, and a context using it.
fn oci_layout_context(env: &Env) -> (PathBuf, PathBuf) {
    let src = env.context(
        "layout-src",
        &[("Dockerfile", "FROM busybox\nRUN echo layered > /layered\n")],
    );
    let layout = env.path("layout");
    let out = format!("type=oci,dest={},tar=false", layout.display());
    env.build_ok(&["--output", &out, p(&src)]);
    let ctx = env.context(
        "uses-layout",
        &[(
            "Dockerfile",
            "FROM lay AS x\n\
         RUN cat /layered > /via-layout\n\
         FROM busybox\n\
         COPY --from=lay /layered /copied\n\
         COPY --from=x /via-layout /via-layout\n",
        )],
    );
    (layout, ctx)
}

#[test]
fn oci_layout_build_context_as_base_and_copy_source() {
    let Some(env) = Env::new() else { return };
    let (layout, ctx) = oci_layout_context(&env);
    let named = format!("lay=oci-layout://{}", layout.display());
    let out = env.path("out");
    env.build_ok(&[
        "--build-context",
        &named,
        "--output",
        &local_out(&out),
        p(&ctx),
    ]);
    assert_eq!(read(&out, "copied"), "layered\n");
    assert_eq!(read(&out, "via-layout"), "layered\n");
}

#[test]
fn oci_layout_build_context_leaves_no_temporary_files() {
    let Some(env) = Env::new() else { return };
    let (layout, ctx) = oci_layout_context(&env);
    support::assert_store_tmp_clean(&env.store);
    let named = format!("lay=oci-layout://{}", layout.display());
    env.build_ok(&[
        "--build-context",
        &named,
        "--output",
        &local_out(&env.path("out")),
        p(&ctx),
    ]);
    support::assert_store_tmp_clean(&env.store);
}

#[test]
fn context_special_files_rw_bind_and_workdir_owner() {
    let Some((env, ctx)) = env_with_context(&[
        (
            "Dockerfile",
            "FROM busybox\n\
             COPY . /c/\n\
             RUN --mount=type=bind,source=.,target=/b,rw=true \
                 sh -c 'echo w > /b/written && cat /b/written' > /rw\n\
             USER app\n\
             WORKDIR /appdir\n\
             RUN stat -c %U /appdir > /tmp/wdowner\n",
        ),
        ("a", "a\n"),
    ]) else {
        return;
    };
    let fifo = std::ffi::CString::new(p(&ctx.join("fifo"))).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("/etc/shadow", ctx.join("outside")).unwrap();
    let out = env.path("out");
    // A FIFO in the context must not block the build.
    env.build_ok(&["--output", &local_out(&out), p(&ctx)]);
    assert_eq!(read(&out, "c/a"), "a\n");
    assert_eq!(
        fs::read_link(out.join("c/outside")).unwrap(),
        Path::new("/etc/shadow"),
        "a context symlink is copied as a link, never followed out of the context"
    );
    assert_eq!(
        read(&out, "rw"),
        "w\n",
        "rw=true bind is writable in the step"
    );
    assert!(
        !ctx.join("written").exists(),
        "a rw bind wrote through to the context"
    );
    assert!(!exists(&out, "b/written") && !exists(&out, "written"));
    assert_eq!(
        read(&out, "tmp/wdowner"),
        "app\n",
        "WORKDIR is made for USER"
    );
}

#[test]
fn docker_archives_refuse_zstd_layers() {
    let Some((env, ctx)) = env_with_context(&[("Dockerfile", "FROM busybox\nRUN echo x > /x\n")])
    else {
        return;
    };
    let dest = env.path("z.tar");
    let output = format!("type=docker,dest={},compression=zstd", dest.display());
    let out = env.build(&["--output", &output, p(&ctx)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot carry zstd layers"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dest.exists());
}
