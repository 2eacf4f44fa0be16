use super::*;
use crate::dockerfile::{Dockerfile, FrontendError};
use std::time::Duration;

fn one(src: &str) -> Instruction {
    let df = Dockerfile::parse("Dockerfile", &format!("FROM base\n{src}\n")).unwrap();
    df.stages[0].instructions[0].clone()
}

fn fail(src: &str) -> FrontendError {
    Dockerfile::parse("Dockerfile", &format!("FROM base\n{src}\n")).unwrap_err()
}

#[test]
fn run_flags_are_typed() {
    let i = one(
        "RUN --mount=type=cache,target=/root/.cargo --mount=type=secret,id=tok --network=none --security=insecure cargo build",
    );
    let InstructionKind::Run(r) = i.kind else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[1].kind, MountType::Secret);
    assert_eq!(
        (r.network, r.security),
        (NetworkMode::None, SecurityMode::Insecure)
    );
    assert_eq!(r.command, CommandLine::Shell("cargo build".into()));
    let InstructionKind::Run(r) = one(r#"RUN ["echo", "hi"]"#).kind else {
        panic!()
    };
    assert_eq!(
        r.command,
        CommandLine::Exec(vec!["echo".into(), "hi".into()])
    );
}

#[test]
fn invalid_flags_and_values_fail_on_their_line_with_a_caret() {
    let cases = [
        ("COPY --foo=bar a b", "unknown flag --foo for COPY", "--foo"),
        ("ADD --from=x a b", "unknown flag --from for ADD", "--from"),
        (
            "RUN --mount=type=nfs,target=/x true",
            "unsupported mount type",
            "type=nfs",
        ),
        (
            "RUN --mount=type=cache,target=/x,colour=red true",
            "unexpected key 'colour'",
            "type=cache",
        ),
        (
            "RUN --network=bridge true",
            "unsupported network mode",
            "--network=bridge",
        ),
        (
            "RUN --security=open true",
            "unsupported security mode",
            "--security=open",
        ),
        ("COPY --chmod=99x a b", "invalid chmod", "--chmod=99x"),
        (
            "ADD --checksum=md5:1 http://x/y /y",
            "unsupported digest algorithm",
            "md5:1",
        ),
        (
            "HEALTHCHECK --interval=5 CMD true",
            "invalid duration",
            "--interval=5",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD true",
            "--retries cannot be negative",
            "--retries=-1",
        ),
        (
            "HEALTHCHECK --timeout=1us CMD true",
            "cannot be less than 1ms",
            "--timeout=1us",
        ),
        (
            "HEALTHCHECK CONNECT x",
            "Unknown type \"CONNECT\"",
            "CONNECT",
        ),
        (
            "SHELL /bin/sh -c",
            "SHELL requires the arguments to be in JSON form",
            "SHELL",
        ),
        ("STOPSIGNAL SIGNOPE", "invalid signal", "SIGNOPE"),
        ("EXPOSE 80/tcpx", "invalid proto", "80/tcpx"),
        ("ENV --x a=b", "unknown flag --x for ENV", "--x"),
        ("COPY onlyone", "requires at least two arguments", "COPY"),
        (
            "WORKDIR",
            "WORKDIR requires exactly one argument",
            "WORKDIR",
        ),
        (
            "ONBUILD FROM x",
            "FROM isn't allowed as an ONBUILD trigger",
            "FROM",
        ),
        ("RUNN echo", "unknown instruction: RUNN", "RUNN"),
        (
            "COPY --link=maybe a b",
            "expecting boolean value",
            "--link=maybe",
        ),
    ];
    for (line, message, needle) in cases {
        let e = fail(line);
        assert_eq!(e.line, 2, "{line}: {e}");
        assert!(e.message.contains(message), "{line}: got {e}");
        let (col, len) = e.column.unwrap();
        let pointed: String = line
            .chars()
            .skip(col as usize - 1)
            .take(len as usize)
            .collect();
        assert!(
            pointed.starts_with(needle),
            "{line}: caret under {pointed:?}"
        );
    }
    assert_eq!(fail("RUNN echo").hint.as_deref(), Some("did you mean RUN?"));
}

#[test]
fn copy_and_add_flags() {
    let InstructionKind::Copy(c) = one("COPY --from=build --chown=app:app --chmod=u+x,g-w --link --parents --exclude=*.md --exclude=tmp a b /dst/").kind else { panic!() };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert!(matches!(c.chmod_mode, Some(Chmod::Symbolic(ref v)) if v.len() == 2));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, ["*.md", "tmp"]);
    assert_eq!(c.dest, "/dst/");
    let sum = format!("sha256:{}", "0".repeat(64));
    let InstructionKind::Add(a) = one(&format!(
        "ADD --checksum={sum} --keep-git-dir=true --unpack=false https://x/y.tgz /y"
    ))
    .kind
    else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some(sum.as_str()));
    assert_eq!((a.keep_git_dir, a.unpack), (Some(true), Some(false)));
}

#[test]
fn heredoc_sources_of_copy_and_run_scripts() {
    let df = Dockerfile::parse(
        "Dockerfile",
        "FROM a\nCOPY <<-EOF /etc/conf\n\tkey=1\n\tEOF\nRUN <<'SCRIPT'\necho $HOME\nSCRIPT\n",
    )
    .unwrap();
    let InstructionKind::Copy(c) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    let CopySource::Heredoc(h) = &c.sources[0] else {
        panic!()
    };
    assert_eq!(
        (h.name.as_str(), h.content.as_str(), h.expand),
        ("EOF", "key=1\n", true)
    );
    let InstructionKind::Run(r) = &df.stages[0].instructions[1].kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo $HOME\n");
    assert!(!r.heredocs[0].expand);
    assert_eq!(r.command, CommandLine::Shell("<<'SCRIPT'".into()));
    let e = Dockerfile::parse("Dockerfile", "FROM a\nCOPY a <<EOF\nx\nEOF\n").unwrap_err();
    assert!(e.message.contains("heredoc as a destination"), "{e}");
}

#[test]
fn healthcheck_forms() {
    let InstructionKind::Healthcheck(h) = one("HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=0s --retries=3 CMD curl -f http://localhost/").kind else { panic!() };
    assert_eq!(
        h,
        Healthcheck::Cmd {
            test: CommandLine::Shell("curl -f http://localhost/".into()),
            interval: Some(Duration::from_secs(90)),
            timeout: Some(Duration::from_millis(1500)),
            start_period: None,
            start_interval: None,
            retries: Some(3),
        }
    );
    assert_eq!(
        one("HEALTHCHECK none").kind,
        InstructionKind::Healthcheck(Healthcheck::None)
    );
    assert!(
        fail("HEALTHCHECK NONE x")
            .message
            .contains("takes no arguments")
    );
    assert!(fail("HEALTHCHECK CMD").message.contains("missing command"));
}

#[test]
fn env_label_arg_forms() {
    let InstructionKind::Env(e) = one("ENV a=1 b=\"two words\"").kind else {
        panic!()
    };
    assert_eq!(e[1].value, "\"two words\"");
    assert!(!e[0].legacy);
    let InstructionKind::Env(e) = one("ENV PATH /usr/bin:$PATH").kind else {
        panic!()
    };
    assert!(e[0].legacy && e[0].value == "/usr/bin:$PATH");
    assert!(fail("ENV =x").message.contains("names can not be blank"));
    assert!(
        fail("ENV PATH")
            .message
            .contains("ENV must have two arguments")
    );
    let df = Dockerfile::parse(
        "Dockerfile",
        "FROM a\n# VERSION the release to build\nARG VERSION=1.2 OTHER\n",
    )
    .unwrap();
    let InstructionKind::Arg(a) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(a[0].description, "the release to build");
    assert_eq!((a[1].name.as_str(), a[1].default.clone()), ("OTHER", None));
}

#[test]
fn from_forms_and_stage_names() {
    let df = Dockerfile::parse(
        "Dockerfile",
        "FROM --platform=linux/arm64 golang:1.22 as Builder\n",
    )
    .unwrap();
    let f = df.stages[0].from_instr().unwrap();
    assert_eq!(f.stage_name.as_deref(), Some("builder"));
    assert_eq!(f.stage_name_as_written.as_deref(), Some("Builder"));
    assert_eq!(f.platform.as_deref(), Some("linux/arm64"));
    for bad in [
        "FROM a AS 1st",
        "FROM a AS b c",
        "FROM a b",
        "FROM a AS my/stage",
    ] {
        assert!(Dockerfile::parse("Dockerfile", bad).is_err(), "{bad}");
    }
    let e = Dockerfile::parse("Dockerfile", "FROM a AS x\nFROM b AS X\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("duplicate stage name"));
    assert!(e.hint.unwrap().contains("line 1"));
    let e = Dockerfile::parse("Dockerfile", "ARG A\nRUN x\nFROM a\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "no build stage in current context")
    );
}

#[test]
fn onbuild_keeps_expression_and_types_trigger() {
    let InstructionKind::Onbuild(o) = one("ONBUILD COPY --chown=1 . /app").kind else {
        panic!()
    };
    assert_eq!(o.expression, "COPY --chown=1 . /app");
    assert!(matches!(o.trigger.kind, InstructionKind::Copy(_)));
    assert!(
        fail("ONBUILD ONBUILD RUN x")
            .message
            .contains("Chaining ONBUILD")
    );
}

#[test]
fn volume_user_expose_stopsignal_shell() {
    assert_eq!(
        one(r#"VOLUME ["/a", "/b"]"#).kind,
        InstructionKind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("USER app:app").kind,
        InstructionKind::User("app:app".into())
    );
    assert_eq!(
        one("EXPOSE 80 53/udp").kind,
        InstructionKind::Expose(vec!["80".into(), "53/udp".into()])
    );
    assert_eq!(
        one("STOPSIGNAL SIGQUIT").kind,
        InstructionKind::StopSignal("SIGQUIT".into())
    );
    assert_eq!(
        one(r#"SHELL ["pwsh", "-c"]"#).kind,
        InstructionKind::Shell(vec!["pwsh".into(), "-c".into()])
    );
    assert!(fail("CMD [\"a\", 1]").message.contains("array of strings"));
}

#[test]
fn every_instruction_kind_serializes_to_json() {
    let src = "ARG A=1\nFROM --platform=linux/amd64 img AS s\nRUN --mount=type=cache,target=/c x\nCMD [\"a\"]\nENTRYPOINT b\nLABEL k=v\nMAINTAINER me\nEXPOSE 80\nENV E=1\nADD a /b\nCOPY --chmod=u+x <<EOF /c\nbody\nEOF\nVOLUME /v\nUSER u\nWORKDIR /w\nARG B\nONBUILD RUN y\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=1s CMD z\nHEALTHCHECK NONE\nSHELL [\"sh\", \"-c\"]\n";
    let df = Dockerfile::parse("Dockerfile", src).unwrap();
    let all: Vec<&Instruction> = df
        .global_args
        .iter()
        .chain(std::iter::once(&df.stages[0].from))
        .chain(df.stages[0].instructions.iter())
        .collect();
    assert_eq!(all.len(), 20);
    for instr in all {
        let json = serde_json::to_value(instr).unwrap_or_else(|e| panic!("{}: {e}", instr.name()));
        assert_eq!(
            json["kind"]["instruction"],
            instr.name().to_ascii_lowercase()
        );
    }
    let build = df.resolve(&Default::default()).unwrap();
    assert!(serde_json::to_string(&build).is_ok());
}
