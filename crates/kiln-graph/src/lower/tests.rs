use std::collections::BTreeMap;

use kiln_frontend::dockerfile::{Dockerfile, ResolveOptions};

use super::*;
use crate::{ExecOp, FileAction, MountKind, Op};

/// Images a test knows about: `busybox` with an inherited CMD and PATH.
struct TestImages;

impl ImageResolver for TestImages {
    fn resolve_image(&self, reference: &str, platform: &str) -> Result<ResolvedImage, String> {
        let mut image = ImageState::for_platform(platform);
        if reference == "parent" {
            image.config.env = vec!["GREETING=hi".into()];
            image.config.on_build = vec![
                "RUN echo $GREETING > /triggered".into(),
                "ENV FROM_TRIGGER=1".into(),
            ];
            return Ok(ResolvedImage {
                reference: "parent".into(),
                digest: "sha256:bb".into(),
                image,
            });
        }
        if reference != "busybox" {
            return Err(format!("image {reference:?} not found"));
        }
        image.config.env = vec!["PATH=/bin".to_string()];
        image.config.cmd = Some(vec!["sh".to_string()]);
        Ok(ResolvedImage {
            reference: "docker.io/library/busybox:latest".into(),
            digest: "sha256:aa".into(),
            image,
        })
    }
}

#[derive(Debug)]
struct Built {
    graph: Graph,
    result: LoweredStage,
}

fn build_with(
    src: &str,
    target: Option<&str>,
    args: &[(&str, &str)],
    contexts: BTreeMap<String, NamedContext>,
) -> Result<Built, LowerError> {
    let df = Dockerfile::parse("Dockerfile", src).expect("parse");
    let build_args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = ResolveOptions {
        target: target.map(str::to_string),
        build_args: build_args.clone(),
        ..Default::default()
    };
    let build = df.resolve(&opts).expect("resolve");
    let mut graph = Graph::new();
    let request = LowerRequest {
        build: &build,
        build_args: &build_args,
        named_contexts: &contexts,
        resolver: &TestImages,
        platform: "linux/amd64".into(),
        context_name: "/ctx".into(),
        context_excludes: vec!["*.log".into()],
    };
    let result = lower(&mut graph, &request)?;
    Ok(Built { graph, result })
}

fn build(src: &str) -> Built {
    build_with(src, None, &[], BTreeMap::new()).expect("lower")
}

fn exec_of(b: &Built, id: NodeId) -> &ExecOp {
    match &b.graph.node(id).unwrap().op {
        Op::Exec(e) => e,
        other => panic!("not an exec: {other:?}"),
    }
}

#[test]
fn fan_out_shares_the_base_and_runs_each_test_once() {
    let mut src = String::from("FROM busybox AS base\nRUN echo base > /base\n");
    for i in 0..16 {
        src.push_str(&format!("FROM base AS t{i}\nRUN echo {i} > /r\n"));
    }
    src.push_str("FROM busybox AS collect\n");
    for i in 0..16 {
        src.push_str(&format!("COPY --from=t{i} /r /results/{i}\n"));
    }
    let b = build(&src);
    let execs = b
        .graph
        .nodes()
        .filter(|(_, n)| matches!(n.op, Op::Exec(_)))
        .count();
    assert_eq!(execs, 17, "one base RUN and sixteen test RUNs");
    let images = b
        .graph
        .nodes()
        .filter(|(_, n)| matches!(n.op, Op::Image(_)))
        .count();
    assert_eq!(images, 1, "busybox is one node however many stages use it");
    assert_eq!(
        b.result
            .image
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .count(),
        16
    );
}

#[test]
fn run_sees_declared_args_and_env_wins_over_arg() {
    let b = build_with(
        "FROM busybox\nARG A=1\nARG B\nENV B=from-env\nRUN echo $A $B\n",
        None,
        &[("B", "from-arg"), ("HTTP_PROXY", "http://proxy")],
        BTreeMap::new(),
    )
    .unwrap();
    let run = exec_of(&b, b.result.fs);
    assert!(run.env.contains(&"A=1".to_string()), "{:?}", run.env);
    assert!(run.env.contains(&"B=from-env".to_string()));
    assert!(run.env.contains(&"HTTP_PROXY=http://proxy".to_string()));
    assert!(!run.env.contains(&"B=from-arg".to_string()));
    assert_eq!(run.args, vec!["/bin/sh", "-c", "echo $A $B"]);
    let last = b.result.image.history.last().unwrap();
    assert_eq!(
        last.created_by,
        "RUN |2 A=1 B=from-arg /bin/sh -c echo $A $B # buildkit"
    );
    assert!(
        !last.created_by.contains("proxy"),
        "proxy args stay out of history"
    );
    assert!(
        !b.result
            .image
            .config
            .env
            .iter()
            .any(|e| e.starts_with("A=")),
        "ARGs are not image env"
    );
}

#[test]
fn entrypoint_clears_inherited_cmd_only() {
    let b = build("FROM busybox\nENTRYPOINT [\"/app\"]\n");
    assert_eq!(b.result.image.config.cmd, None);
    let b = build("FROM busybox\nCMD [\"x\"]\nENTRYPOINT /app\n");
    assert_eq!(b.result.image.config.cmd, Some(vec!["x".to_string()]));
    assert_eq!(
        b.result.image.config.entrypoint,
        Some(vec!["/bin/sh".into(), "-c".into(), "/app".into()])
    );
}

#[test]
fn config_instructions_edit_the_image() {
    let b = build(
        "FROM scratch\nLABEL a=b\nEXPOSE 80 53/udp\nVOLUME /data\nUSER app\nWORKDIR /srv\nWORKDIR www\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/ash\", \"-c\"]\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN echo hi\n",
    );
    let c = &b.result.image.config;
    assert_eq!(c.labels["a"], "b");
    assert!(c.exposed_ports.contains("80/tcp") && c.exposed_ports.contains("53/udp"));
    assert!(c.volumes.contains("/data"));
    assert_eq!(c.user.as_deref(), Some("app"));
    assert_eq!(c.working_dir.as_deref(), Some("/srv/www"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(c.shell, Some(vec!["/bin/ash".into(), "-c".into()]));
    let health = c.healthcheck.as_ref().unwrap();
    assert_eq!(health.test, vec!["CMD-SHELL", "true"]);
    assert_eq!(health.interval, Some(5_000_000_000));
    assert_eq!(c.on_build, vec!["RUN echo hi"]);
    assert_eq!(
        c.env_value("PATH"),
        Some(DEFAULT_PATH),
        "scratch stages get the default PATH"
    );
    // WORKDIR is created owned by the current user.
    let Op::File(file) = &b.graph.node(b.result.fs).unwrap().op else {
        panic!("workdir is a file op")
    };
    assert!(
        matches!(&file.actions[0], FileAction::Mkdir { path, owner: Some(o), .. } if path == "/srv/www" && o.user == "app")
    );
}

#[test]
fn copy_link_merges_a_layer_built_on_scratch() {
    let b = build("FROM busybox\nCOPY --link --chmod=0755 a.sh /bin/\n");
    let merge = b.graph.node(b.result.fs).unwrap();
    assert!(matches!(merge.op, Op::Merge));
    let copied = b.graph.node(merge.inputs[1]).unwrap();
    assert!(matches!(
        b.graph.node(copied.inputs[0]).unwrap().op,
        Op::Scratch
    ));
    let layer = b.result.image.history.last().unwrap().layer;
    assert_eq!(layer, Some(merge.inputs[1]), "the layer is the copy alone");
}

#[test]
fn copy_from_context_reads_only_its_sources() {
    let b = build("FROM busybox\nWORKDIR /app\nCOPY --chown=app:app src/ ./\n");
    let copy = b.graph.node(b.result.fs).unwrap();
    let Op::File(file) = &copy.op else { panic!() };
    let FileAction::Copy(action) = &file.actions[0] else {
        panic!()
    };
    assert_eq!(action.dest, "/app/");
    assert_eq!(action.owner.as_ref().unwrap().group.as_deref(), Some("app"));
    let Op::Local(local) = &b.graph.node(copy.inputs[action.input]).unwrap().op else {
        panic!()
    };
    assert_eq!(local.include, vec!["src/"]);
    assert_eq!(local.exclude, vec!["*.log"]);
}

#[test]
fn named_context_replaces_a_stage_and_an_image() {
    let mut contexts = BTreeMap::new();
    contexts.insert("deps".to_string(), NamedContext::Local("/tmp/deps".into()));
    let b = build_with(
        "FROM busybox AS deps\nRUN exit 1\nFROM busybox\nCOPY --from=deps /x /x\n",
        None,
        &[],
        contexts,
    )
    .unwrap();
    assert!(
        !b.graph.nodes().any(|(_, n)| matches!(n.op, Op::Exec(_))),
        "the replaced stage is never lowered"
    );
    assert!(
        b.graph
            .nodes()
            .any(|(_, n)| matches!(&n.op, Op::Local(l) if l.name == "/tmp/deps"))
    );

    let err = build_with("FROM nosuch\n", None, &[], BTreeMap::new()).unwrap_err();
    assert_eq!(err.line(), Some(1));
}

#[test]
fn run_mounts_and_heredoc_scripts() {
    let b = build(
        "FROM busybox AS src\nFROM busybox\nRUN --mount=type=cache,target=/root/.cache --mount=type=bind,from=src,source=/etc,target=/mnt --mount=type=secret,id=tok --mount=type=tmpfs,target=/t true\nRUN <<EOF\n#!/bin/awk -f\nBEGIN { print 1 }\nEOF\n",
    );
    let script = exec_of(&b, b.result.fs);
    assert_eq!(script.args, vec!["/dev/pipes/EOF"]);
    let first = b.graph.node(b.result.fs).unwrap().inputs[0];
    let run = exec_of(&b, first);
    let kinds: Vec<&MountKind> = run.mounts.iter().map(|m| &m.kind).collect();
    assert!(matches!(kinds[0], MountKind::Cache { id, .. } if id == "/root/.cache"));
    assert!(
        matches!(kinds[1], MountKind::Bind { readwrite: false, source, .. } if source == "/etc")
    );
    assert!(matches!(kinds[2], MountKind::Secret { id, mode: 0o400, .. } if id == "tok"));
    assert_eq!(run.mounts[2].target, "/run/secrets/tok");
    assert!(matches!(kinds[3], MountKind::Tmpfs { .. }));
}

#[test]
fn heredoc_without_shebang_runs_in_the_shell() {
    let b = build("FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nRUN cat <<A > /x\nhello\nA\n");
    let last = exec_of(&b, b.result.fs);
    assert_eq!(last.args[2], "cat <<A > /x\nhello\nA");
    let first = exec_of(&b, b.graph.node(b.result.fs).unwrap().inputs[0]);
    assert_eq!(first.args, vec!["/bin/sh", "-c", "echo one\necho two\n"]);
}

#[test]
fn only_the_target_stages_are_lowered() {
    let b = build_with(
        "FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\n",
        Some("a"),
        &[],
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        b.graph
            .nodes()
            .filter(|(_, n)| matches!(n.op, Op::Exec(_)))
            .count(),
        1
    );
}

#[test]
fn onbuild_triggers_of_the_base_run_first_and_are_consumed() {
    let b = build("FROM parent\nRUN echo after\n");
    let after = exec_of(&b, b.result.fs);
    assert_eq!(after.args[2], "echo after");
    let trigger = exec_of(&b, b.graph.node(b.result.fs).unwrap().inputs[0]);
    assert_eq!(trigger.args[2], "echo $GREETING > /triggered");
    assert!(trigger.env.contains(&"GREETING=hi".to_string()));
    assert!(b.result.image.config.on_build.is_empty());
    // The trigger counts as a step of the stage.
    let descriptions = &b.graph.node(b.result.fs).unwrap().descriptions;
    assert!(
        descriptions[0].starts_with("[stage-0 3/3]"),
        "{descriptions:?}"
    );
    assert_eq!(b.result.image.config.env_value("FROM_TRIGGER"), Some("1"));
}
