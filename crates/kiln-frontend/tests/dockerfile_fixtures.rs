//! Realistic multi-stage Dockerfiles: targets, outline and check.

use kiln_frontend::dockerfile::outline::{self, Outline};
use kiln_frontend::dockerfile::{Dockerfile, Platform, ResolveOptions, check};

fn load(name: &str) -> (Dockerfile, String) {
    let path = format!(
        "{}/tests/fixtures/{name}.Dockerfile",
        env!("CARGO_MANIFEST_DIR")
    );
    let src = std::fs::read_to_string(&path).unwrap();
    (Dockerfile::parse("Dockerfile", &src).unwrap(), src)
}

fn opts(target: Option<&str>) -> ResolveOptions {
    ResolveOptions {
        target: target.map(str::to_string),
        target_platform: Platform::parse("linux/arm64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..Default::default()
    }
}

fn arg_rows(o: &Outline) -> Vec<(String, String, String)> {
    o.args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone(), a.description.clone()))
        .collect()
}

fn row(n: &str, v: &str, d: &str) -> (String, String, String) {
    (n.into(), v.into(), d.into())
}

#[test]
fn rust_cargo_chef_targets_outline_and_order() {
    let (df, src) = load("rust-cargo-chef");
    let list = outline::targets(&df);
    let names: Vec<&str> = list.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chef", "planner", "builder", "runtime"]);
    assert!(list.targets[3].default && !list.targets[0].default);
    assert_eq!(list.targets[0].base, "rust:${RUST_VERSION}-slim");
    assert_eq!(
        list.targets[1].description,
        "computes the dependency recipe"
    );
    assert_eq!(
        outline::render_targets(&list),
        "TARGET            DESCRIPTION\nchef              has cargo-chef installed on the Rust toolchain\nplanner           computes the dependency recipe\nbuilder           compiles dependencies, then the application\nruntime (default) is the minimal image that ships\n"
    );
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(
        json["targets"][3]["location"],
        serde_json::json!({"ranges": [{"start": {"line": 31}, "end": {"line": 31}}]})
    );
    assert_eq!(json["targets"][3]["default"], true);
    assert!(json["targets"][0].get("default").is_none());

    let o = outline::outline(&df, &opts(None)).unwrap();
    assert_eq!(o.name, "runtime");
    assert_eq!(
        arg_rows(&o),
        [
            row(
                "RUST_VERSION",
                "1.83",
                "toolchain used for every build stage"
            ),
            row("APP_NAME", "kiln-demo", "")
        ]
    );
    let ids: Vec<&str> = o.cache.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["/usr/local/cargo/registry", "target-kiln-demo"]);
    assert!(outline::render_outline(&o).starts_with("TARGET:      runtime\nDESCRIPTION: is the minimal image that ships\n\nBUILD ARG      VALUE       DESCRIPTION\nRUST_VERSION   1.83        toolchain used for every build stage\n"));

    let mut o2 = opts(Some("planner"));
    o2.build_args.insert("RUST_VERSION".into(), "1.90".into());
    let b = df.resolve(&o2).unwrap();
    assert_eq!(b.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(
        b.stages[0].base,
        kiln_frontend::dockerfile::StageBase::Image("rust:1.90-slim".into())
    );
    let b = df.resolve(&opts(None)).unwrap();
    assert_eq!(
        b.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );

    let report = check::check("Dockerfile", &src, &opts(None)).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn node_outline_lists_required_secret_and_skips_checks_from_directive() {
    let (df, src) = load("node");
    let o = outline::outline(&df, &opts(Some("final"))).unwrap();
    assert_eq!(
        arg_rows(&o),
        [row("NODE_VERSION", "20", "major version of Node.js")]
    );
    assert_eq!(o.secrets.len(), 1);
    assert_eq!(
        (o.secrets[0].name.as_str(), o.secrets[0].required),
        ("npmrc", true)
    );
    assert!(outline::render_outline(&o).contains("SECRET   REQUIRED\nnpmrc    true\n"));
    // test is not needed by final, build is not either.
    let b = df.resolve(&opts(Some("final"))).unwrap();
    assert_eq!(
        b.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 1, 2, 4]
    );
    let b = df.resolve(&opts(Some("test"))).unwrap();
    assert_eq!(
        b.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(
        df.directives.check.as_ref().unwrap().value,
        "skip=SecretsUsedInArgOrEnv"
    );
    assert!(
        check::check("Dockerfile", &src, &opts(None))
            .unwrap()
            .warnings
            .is_empty()
    );
}

#[test]
fn go_cross_compile_uses_platform_args() {
    let (df, _) = load("go");
    let b = df.resolve(&opts(None)).unwrap();
    let build = b.stage(1).unwrap();
    assert_eq!(build.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        b.stage(0).unwrap().base,
        kiln_frontend::dockerfile::StageBase::Image("tonistiigi/xx:1.4.0".into())
    );
    let o = outline::outline(&df, &opts(None)).unwrap();
    assert_eq!(o.name, "");
    assert_eq!(
        arg_rows(&o),
        [
            row("GO_VERSION", "1.22", "Go toolchain version"),
            row("XX_VERSION", "1.4.0", "cross-compilation helper version"),
            row("CGO_ENABLED", "0", "set to 1 to link against libc")
        ]
    );
    assert_eq!(o.ssh.len(), 1);
    assert_eq!(o.ssh[0].name, "github");
    let list = outline::targets(&df);
    assert!(outline::render_targets(&list).ends_with("(default) \n"));
    // binary only needs build and xx.
    let b = df.resolve(&opts(Some("binary"))).unwrap();
    assert_eq!(
        b.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn python_heredoc_copy_and_check_warning() {
    let (df, src) = load("python");
    let app = &df.stages[2];
    let heredoc = app.instructions.iter().find_map(|i| match &i.kind {
        kiln_frontend::dockerfile::InstructionKind::Copy(c) => {
            c.sources.iter().find_map(|s| match s {
                kiln_frontend::dockerfile::instructions::CopySource::Heredoc(h) => {
                    Some(h.content.clone())
                }
                _ => None,
            })
        }
        _ => None,
    });
    assert_eq!(
        heredoc.as_deref(),
        Some("bind = \"0.0.0.0:8000\"\nworkers = 2\n")
    );
    let report = check::check("Dockerfile", &src, &opts(None)).unwrap();
    let rules: Vec<&str> = report.warnings.iter().map(|w| w.rule).collect();
    assert_eq!(rules, ["JSONArgsRecommended"]);
    assert_eq!(report.warnings[0].line, 35);
    assert!(!report.failed);
}

#[test]
fn windows_backtick_escape_keeps_backslash_paths() {
    let (df, _) = load("windows-backtick");
    assert_eq!(df.escape, '`');
    let sdk = &df.stages[0];
    let texts: Vec<String> = sdk
        .instructions
        .iter()
        .map(|i| format!("{:?}", i.kind))
        .collect();
    assert!(texts[1].contains(r#"Workdir("C:\\src")"#), "{}", texts[1]);
    let run = sdk.instructions.iter().find(|i| i.name() == "RUN").unwrap();
    assert_eq!((run.start_line, run.end_line), (11, 12));
    let b = df.resolve(&opts(None)).unwrap();
    let copy = &b.stage(1).unwrap().instructions[1];
    assert_eq!(
        copy.copy_from,
        Some(kiln_frontend::dockerfile::SourceRef::Stage(0))
    );
    let o = outline::outline(&df, &opts(None)).unwrap();
    assert_eq!(
        arg_rows(&o),
        [row("WINDOWS_VERSION", "ltsc2022", "servercore tag")]
    );
}

#[test]
fn outline_follows_arg_dependencies_and_ignores_unneeded_stages() {
    let src = "# REGISTRY where images come from\nARG REGISTRY=docker.io\nARG IMAGE=$REGISTRY/library/alpine\nARG UNUSED=1\n# TAG alpine tag\nARG TAG=3.20\nFROM $IMAGE:$TAG AS base\nFROM alpine:$UNUSED AS other\nFROM base\n# MODE build mode\nARG MODE=release\nRUN --mount=type=secret,id=tok true\n";
    let df = Dockerfile::parse("Dockerfile", src).unwrap();
    let o = outline::outline(&df, &opts(None)).unwrap();
    assert_eq!(
        arg_rows(&o),
        [
            row("REGISTRY", "docker.io", "where images come from"),
            row("IMAGE", "docker.io/library/alpine", ""),
            row("TAG", "3.20", "alpine tag"),
            row("MODE", "release", "build mode"),
        ]
    );
    assert_eq!(o.secrets.len(), 1);
    assert!(!o.secrets[0].required);
    let json = serde_json::to_string(&o.args[0]).unwrap();
    assert_eq!(
        json,
        r#"{"name":"REGISTRY","description":"where images come from","value":"docker.io","location":{"ranges":[{"start":{"line":2},"end":{"line":2}}]}}"#
    );
    let mut with_arg = opts(Some("other"));
    with_arg.build_args.insert("UNUSED".into(), "2".into());
    let o = outline::outline(&df, &with_arg).unwrap();
    assert_eq!(arg_rows(&o), [row("UNUSED", "2", "")]);
}
