use super::*;

fn df(src: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", src).unwrap()
}

fn opts() -> ResolveOptions {
    ResolveOptions {
        target_platform: Platform::parse("linux/arm64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..Default::default()
    }
}

fn with_args(pairs: &[(&str, &str)]) -> ResolveOptions {
    let mut o = opts();
    o.build_args = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    o
}

fn arg_value(stage: &ResolvedStage, name: &str) -> Option<String> {
    stage
        .instructions
        .iter()
        .find_map(|ri| match &ri.instruction.kind {
            InstructionKind::Arg(d) => d.iter().find(|a| a.name == name).map(|a| a.default.clone()),
            _ => None,
        })?
}

fn env_value(stage: &ResolvedStage, name: &str) -> Option<String> {
    stage
        .final_env
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn global_arg_feeds_from_but_is_invisible_in_stage_unless_redeclared() {
    let d = df("ARG V=1.0\nFROM alpine:$V\nENV A=${V:-unset}\nARG V\nENV B=$V\n");
    let b = d.resolve(&opts()).unwrap();
    let s = &b.stages[0];
    assert_eq!(s.base, StageBase::Image("alpine:1.0".into()));
    assert_eq!(s.from_used_vars.iter().collect::<Vec<_>>(), ["V"]);
    assert_eq!(env_value(s, "A").as_deref(), Some("unset"));
    assert_eq!(env_value(s, "B").as_deref(), Some("1.0"));
    let b = d.resolve(&with_args(&[("V", "2.0")])).unwrap();
    assert_eq!(b.stages[0].base, StageBase::Image("alpine:2.0".into()));
    assert_eq!(env_value(&b.stages[0], "B").as_deref(), Some("2.0"));
}

#[test]
fn stage_arg_default_build_arg_override_and_env_interplay() {
    // ENV after ARG wins; an ARG with a value after ENV replaces it (BuildKit keeps both
    // in one build environment); an ARG without value leaves the ENV alone.
    let d =
        df("FROM a\nARG X=def\nENV Y=$X\nENV X=fromenv\nARG X\nENV W=$X\nARG X=late\nENV Z=$X\n");
    let s = d.resolve(&opts()).unwrap().stages.remove(0);
    assert_eq!(env_value(&s, "Y").as_deref(), Some("def"));
    assert_eq!(env_value(&s, "W").as_deref(), Some("fromenv"));
    assert_eq!(env_value(&s, "Z").as_deref(), Some("late"));
    let image_x: Vec<&str> = s
        .image_env
        .iter()
        .filter(|(k, _)| k == "X")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(image_x, ["fromenv"]);
    let s = d
        .resolve(&with_args(&[("X", "cli")]))
        .unwrap()
        .stages
        .remove(0);
    assert_eq!(env_value(&s, "Y").as_deref(), Some("cli"));
    assert_eq!(arg_value(&s, "X").as_deref(), Some("cli"));
}

#[test]
fn env_substitution_sees_values_from_before_the_instruction() {
    let d = df("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
    let s = d.resolve(&opts()).unwrap().stages.remove(0);
    assert_eq!(env_value(&s, "def").as_deref(), Some("hello"));
    assert_eq!(env_value(&s, "ghi").as_deref(), Some("bye"));
    let env2 = &s.instructions[1];
    assert!(env2.used_vars.contains("abc"));
}

#[test]
fn predefined_platform_args_are_global_and_need_declaration_in_stage() {
    let d = df(
        "FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH\nENV A=$TARGETARCH B=$BUILDARCH\n",
    );
    let b = d.resolve(&opts()).unwrap();
    let s = &b.stages[0];
    assert_eq!(s.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(env_value(s, "A").as_deref(), Some("arm64"));
    assert_eq!(env_value(s, "B").as_deref(), Some(""));
}

#[test]
fn proxy_args_reach_run_without_declaration_and_are_not_reported_unused() {
    let d = df("FROM a\nRUN echo\n");
    let b = d
        .resolve(&with_args(&[("HTTP_PROXY", "http://p"), ("UNUSED", "1")]))
        .unwrap();
    assert_eq!(
        b.stages[0].proxy_env,
        vec![("HTTP_PROXY".to_string(), "http://p".to_string())]
    );
    assert_eq!(b.unused_build_args, vec!["UNUSED".to_string()]);
}

const MULTI: &str = "FROM alpine AS base\nRUN a\nFROM base AS deps\nRUN b\nFROM golang AS tools\nRUN c\nFROM base AS final\nCOPY --from=deps /x /x\nRUN --mount=type=bind,from=1,target=/d true\nFROM scratch AS unrelated\n";

#[test]
fn target_prunes_unreachable_stages_and_orders_dependencies_first() {
    let d = df(MULTI);
    let mut o = opts();
    o.target = Some("FINAL".into());
    let b = d.resolve(&o).unwrap();
    let order: Vec<usize> = b.stages.iter().map(|s| s.index).collect();
    assert_eq!(order, [0, 1, 3]);
    assert_eq!(b.target, 3);
    let fin = b.stage(3).unwrap();
    assert_eq!(fin.deps, [0, 1]);
    assert_eq!(fin.instructions[0].copy_from, Some(SourceRef::Stage(1)));
    assert_eq!(
        fin.instructions[1].mount_from,
        vec![Some(SourceRef::Stage(1))]
    );
    let b = d.resolve(&opts()).unwrap();
    assert_eq!(b.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [4]);
    assert_eq!(b.stages[0].base, StageBase::Scratch);
    o.all_stages = true;
    assert_eq!(d.resolve(&o).unwrap().stages.len(), 5);
}

#[test]
fn unknown_target_and_bad_references_are_errors_naming_lines() {
    let d = df(MULTI);
    let mut o = opts();
    o.target = Some("nope".into());
    let e = d.resolve(&o).unwrap_err();
    assert!(
        e.message
            .contains("target stage \"nope\" could not be found")
    );
    assert_eq!(
        e.to_string().lines().next(),
        Some("Dockerfile: target stage \"nope\" could not be found")
    );
    assert!(
        e.hint
            .unwrap()
            .contains("base, deps, tools, final, unrelated")
    );

    let e = df("FROM a AS one\nCOPY --from=7 /a /b\n")
        .resolve(&opts())
        .unwrap_err();
    assert_eq!((e.line, e.message.as_str()), (2, "invalid stage index 7"));

    let e = df("FROM a AS one\nCOPY --from=one /a /b\n")
        .resolve(&opts())
        .unwrap_err();
    assert!(
        e.message
            .contains("circular dependency detected on stage: one"),
        "{e}"
    );

    let e = df("FROM later AS one\nFROM a AS later\n")
        .resolve(&opts())
        .unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("later stage"), "{e}");

    let e = df("FROM a AS x\nCOPY --from=y /a /b\nFROM a AS y\nCOPY --from=x /a /b\n")
        .resolve(&opts())
        .unwrap_err();
    assert!(e.message.contains("circular dependency"), "{e}");

    let e = df("ARG IMG\nFROM $IMG\n").resolve(&opts()).unwrap_err();
    assert!(e.message.contains("should not be blank"), "{e}");
}

#[test]
fn copy_from_a_later_stage_or_an_image_is_allowed() {
    let d = df("FROM a AS one\nCOPY --from=two /a /b\nCOPY --from=nginx:1 /c /d\nFROM b AS two\n");
    let mut o = opts();
    o.target = Some("one".into());
    let b = d.resolve(&o).unwrap();
    assert_eq!(b.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [1, 0]);
    assert_eq!(
        b.stages[1].instructions[1].copy_from,
        Some(SourceRef::Image("nginx:1".into()))
    );
}

#[test]
fn base_stage_env_and_args_are_inherited_and_args_can_be_redeclared() {
    let d = df(
        "FROM a AS base\nARG A=1\nENV E=2\nFROM base\nENV X=${A:-none}-$E\nARG A=5 E=9\nENV Y=$A-$E\n",
    );
    let b = d.resolve(&opts()).unwrap();
    assert_eq!(env_value(&b.stages[1], "X").as_deref(), Some("1-2"));
    assert_eq!(env_value(&b.stages[1], "Y").as_deref(), Some("5-9"));
}

#[test]
fn image_env_from_the_caller_is_visible() {
    let d = df("FROM alpine\nENV PATH=/app:$PATH\n");
    let mut o = opts();
    o.image_env
        .insert("alpine".into(), vec![("PATH".into(), "/usr/bin".into())]);
    let b = d.resolve(&o).unwrap();
    assert_eq!(
        env_value(&b.stages[0], "PATH").as_deref(),
        Some("/app:/usr/bin")
    );
}

#[test]
fn expansion_applies_to_copy_flags_and_mounts_but_not_run_or_from_flag() {
    let d = df(
        "FROM a AS src\nFROM b\nARG U=1000 M=0755 DIR=/cache\nCOPY --from=src --chown=$U --chmod=$M a$U /d/\nRUN --mount=type=cache,target=$DIR echo $U\n",
    );
    let b = d.resolve(&opts()).unwrap();
    let s = b.stages.last().unwrap();
    let InstructionKind::Copy(c) = &s.instructions[1].instruction.kind else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("1000"));
    assert_eq!(
        c.chmod_mode,
        Some(crate::dockerfile::instructions::Chmod::Octal(0o755))
    );
    assert_eq!(
        c.sources,
        vec![crate::dockerfile::instructions::CopySource::Path(
            "a1000".into()
        )]
    );
    let InstructionKind::Run(r) = &s.instructions[2].instruction.kind else {
        panic!()
    };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/cache"));
    assert_eq!(
        r.command,
        crate::dockerfile::instructions::CommandLine::Shell("echo $U".into())
    );
    assert!(s.instructions[2].used_vars.contains("DIR"));
}

#[test]
fn expose_expands_into_several_ports_and_validates() {
    let d = df("FROM a\nARG P=\"80 443/udp\"\nEXPOSE $P\n");
    let b = d.resolve(&opts()).unwrap();
    let InstructionKind::Expose(p) = &b.stages[0].instructions[1].instruction.kind else {
        panic!()
    };
    assert_eq!(p, &["80", "443/udp"]);
    let e = df("FROM a\nARG P=http\nEXPOSE $P\n")
        .resolve(&opts())
        .unwrap_err();
    assert_eq!(e.line, 3);
}

#[test]
fn target_stage_arg_is_predefined() {
    let d = df("FROM a AS Build\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\n");
    let b = d.resolve(&opts()).unwrap();
    assert_eq!(env_value(&b.stages[0], "T").as_deref(), Some("build"));
}

#[test]
fn copy_heredoc_bodies_expand_unless_the_delimiter_is_quoted() {
    let d = df("FROM a\nARG V=1.2\nCOPY <<EOF <<'RAW' /dst/\nv=$V \"q\"\nEOF\nv=$V\nRAW\n");
    let b = d.resolve(&opts()).unwrap();
    let InstructionKind::Copy(c) = &b.stages[0].instructions[1].instruction.kind else {
        panic!()
    };
    let bodies: Vec<&str> = c
        .sources
        .iter()
        .map(|s| match s {
            crate::dockerfile::instructions::CopySource::Heredoc(h) => h.content.as_str(),
            crate::dockerfile::instructions::CopySource::Path(p) => p.as_str(),
        })
        .collect();
    assert_eq!(bodies, ["v=1.2 \"q\"\n", "v=$V\n"]);
    assert!(b.stages[0].instructions[1].used_vars.contains("V"));
}

#[test]
fn env_before_replays_env_and_arg_up_to_an_instruction() {
    let d = df("FROM a AS base\nENV P=1\nFROM base\nARG V=2\nRUN one\nENV P=3 Q=$V\nRUN two\n");
    let b = d.resolve(&opts()).unwrap();
    let s = &b.stages[1];
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(s.env_before(0), vec![pair("P", "1")]);
    assert_eq!(s.env_before(1), vec![pair("P", "1"), pair("V", "2")]);
    assert_eq!(
        s.env_before(3),
        vec![pair("P", "3"), pair("V", "2"), pair("Q", "2")]
    );
}

#[test]
fn a_very_long_chain_of_stages_resolves_without_deep_recursion() {
    let mut src = String::from("FROM scratch AS s0\n");
    for i in 1..20_000 {
        src.push_str(&format!(
            "FROM scratch AS s{i}\nCOPY --from=s{} /a /a\n",
            i - 1
        ));
    }
    let b = df(&src).resolve(&opts()).unwrap();
    assert_eq!(b.stages.len(), 20_000);
    assert_eq!(b.stages.first().map(|s| s.index), Some(0));
}
