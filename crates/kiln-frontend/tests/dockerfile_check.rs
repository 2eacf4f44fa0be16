//! Build checks (`--check`) and error rendering.

use kiln_frontend::dockerfile::check::{CheckConfig, check};
use kiln_frontend::dockerfile::{Dockerfile, ResolveOptions};

fn rules(src: &str) -> Vec<(&'static str, usize, String)> {
    check("Dockerfile", src, &ResolveOptions::default())
        .unwrap()
        .warnings
        .into_iter()
        .map(|w| (w.rule, w.line, w.detail))
        .collect()
}

fn fired(src: &str) -> Vec<&'static str> {
    rules(src).into_iter().map(|(r, _, _)| r).collect()
}

#[test]
fn each_rule_fires_on_its_pattern() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "FROM alpine AS Build\n",
            "StageNameCasing",
            "Stage name 'Build' should be lowercase",
        ),
        (
            "FROM alpine as build\n",
            "FromAsCasing",
            "'as' and 'FROM' keywords' casing do not match",
        ),
        (
            "FROM alpine\nCMD echo hi\n",
            "JSONArgsRecommended",
            "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
        ),
        (
            "FROM alpine\nMAINTAINER me\n",
            "MaintainerDeprecated",
            "Maintainer instruction is deprecated in favor of using label",
        ),
        (
            "FROM alpine:$TAG\n",
            "UndefinedArgInFrom",
            "FROM argument 'TAG' is not declared",
        ),
        (
            "FROM alpine\nrun echo\n",
            "ConsistentInstructionCasing",
            "Command 'run' should match the case of the command majority (uppercase)",
        ),
        (
            "FROM alpine AS scratch\n",
            "ReservedStageName",
            "Stage name should not use the same name as reserved stage \"scratch\"",
        ),
        (
            "FROM alpine\nWORKDIR app\n",
            "WorkdirRelativePath",
            "Relative workdir \"app\" can have unexpected results if the base image changes",
        ),
        (
            "FROM alpine\nENV A b\n",
            "LegacyKeyValueFormat",
            "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
        ),
        (
            "FROM scratch\nCOPY $NOPE /x\n",
            "UndefinedVar",
            "Usage of undefined variable '$NOPE'",
        ),
        (
            "FROM alpine\nCMD [\"a\"]\nCMD [\"b\"]\n",
            "MultipleInstructionsDisallowed",
            "Multiple CMD instructions should not be used in the same stage because only the last one will be used",
        ),
        (
            "FROM alpine\nARG DB_PASSWORD\n",
            "SecretsUsedInArgOrEnv",
            "Do not use ARG or ENV instructions for sensitive data (ARG \"DB_PASSWORD\")",
        ),
        (
            "FROM --platform=$TARGETPLATFORM alpine\n",
            "RedundantTargetPlatform",
            "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
        ),
        (
            "FROM alpine\nEXPOSE 80/TCP\n",
            "ExposeProtoCasing",
            "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
        ),
        (
            "FROM alpine\nRUN a \\\n\n  b\n",
            "NoEmptyContinuation",
            "Empty continuation line",
        ),
        (
            "ARG IMG\nFROM $IMG\n",
            "InvalidDefaultArgInFrom",
            "Default value for ARG $IMG results in empty or invalid base image name",
        ),
    ];
    for (src, rule, detail) in cases {
        let found = rules(src);
        assert!(
            found.iter().any(|(r, _, d)| r == rule && d == detail),
            "{rule} not reported for {src:?}: {found:?}"
        );
    }
}

#[test]
fn clean_files_and_exempt_patterns_do_not_warn() {
    assert!(
        fired("FROM alpine AS build\nWORKDIR /app\nWORKDIR sub\nENV A=b\nCMD [\"x\"]\n").is_empty()
    );
    assert!(fired("ARG TAG=3\nFROM alpine:$TAG\n").is_empty());
    assert!(
        fired("FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n").is_empty(),
        "custom SHELL makes shell form intended"
    );
    assert!(fired("FROM alpine\nARG PUBLIC_KEY\n").is_empty());
    // An image's own ENV is unknown here, so undefined variables are only reported from scratch.
    assert!(fired("FROM alpine\nENV PATH=/x:$PATH\n").is_empty());
}

#[test]
fn check_directive_skips_rules_and_turns_warnings_into_failure() {
    let src = "# check=skip=JSONArgsRecommended,StageNameCasing\nFROM alpine AS Build\nCMD echo\nMAINTAINER me\n";
    assert_eq!(fired(src), ["MaintainerDeprecated"]);
    let src = "# check=skip=all\nFROM alpine AS Build\nCMD echo\n";
    assert!(fired(src).is_empty());
    let src = "# check=error=true\nFROM alpine\nCMD echo\n";
    assert!(
        check("Dockerfile", src, &ResolveOptions::default())
            .unwrap()
            .failed
    );
    let src = "# check=error=true\nFROM alpine\nCMD [\"echo\"]\n";
    assert!(
        !check("Dockerfile", src, &ResolveOptions::default())
            .unwrap()
            .failed
    );
    assert_eq!(
        CheckConfig::parse("skip=A, B ;error=TRUE"),
        CheckConfig {
            skip: vec!["A".into(), "B".into()],
            skip_all: false,
            error: true
        }
    );
}

#[test]
fn check_validates_stages_the_target_does_not_need() {
    let src = "FROM alpine AS unused\nARG P=http\nEXPOSE $P\nFROM alpine\nRUN true\n";
    assert!(
        Dockerfile::parse("Dockerfile", src)
            .unwrap()
            .resolve(&ResolveOptions::default())
            .is_ok()
    );
    let report = check("Dockerfile", src, &ResolveOptions::default()).unwrap();
    let err = report.error.as_ref().unwrap();
    assert_eq!(err.line, 3);
    assert!(err.message.contains("invalid containerPort"), "{err}");
    assert!(report.failed);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["buildError"]["location"]["ranges"][0]["start"]["line"],
        3
    );
    // A syntax error cannot be linted at all.
    assert!(
        check(
            "Dockerfile",
            "FROM a\nCOPY --nope a b\n",
            &ResolveOptions::default()
        )
        .is_err()
    );
}

#[test]
fn warnings_serialize_like_buildkit_lint_results() {
    let report = check(
        "Dockerfile",
        "FROM alpine\nMAINTAINER me\n",
        &ResolveOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["warnings"][0]["ruleName"], "MaintainerDeprecated");
    assert_eq!(
        json["warnings"][0]["url"],
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
    );
    assert_eq!(
        json["warnings"][0]["location"]["ranges"][0]["start"]["line"],
        2
    );
    assert_eq!(json["sources"][0], "RlJPTSBhbHBpbmUKTUFJTlRBSU5FUiBtZQo=");
}

#[test]
fn errors_render_file_line_source_caret_and_hint() {
    let err = Dockerfile::parse(
        "app/Dockerfile",
        "FROM alpine\nRUN true\nCOPY --foo=bar a b\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "app/Dockerfile:3: unknown flag --foo for COPY\n 3 | COPY --foo=bar a b\n   |      ^^^^^\nhint: COPY accepts --from, --chown, --chmod, --link, --parents, --exclude"
    );
    let err = Dockerfile::parse("Dockerfile", "FROM a\nRUN <<EOF\necho\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(
        err.to_string()
            .contains("unterminated heredoc EOF\n 2 | RUN <<EOF\n   |     ^^^^^"),
        "{err}"
    );
    let err = Dockerfile::parse("Dockerfile", "# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(
        (err.line, err.message.as_str()),
        (1, "invalid escape token 'x' does not match ` or \\")
    );
    let err = Dockerfile::parse("Dockerfile", "").unwrap_err();
    assert_eq!(err.to_string(), "Dockerfile:1: file with no instructions");
}

#[test]
fn undefined_vars_are_reported_when_the_base_image_env_is_known() {
    let src = "FROM alpine\nENV PATH=/x:$PATH\nRUN echo\nCOPY $MISSING /y\n";
    assert!(fired(src).is_empty(), "image ENV unknown: no report");
    let mut opts = ResolveOptions::default();
    opts.image_env
        .insert("alpine".into(), vec![("PATH".into(), "/bin".into())]);
    let report = check("Dockerfile", src, &opts).unwrap();
    let found: Vec<(&str, usize, &str)> = report
        .warnings
        .iter()
        .map(|w| (w.rule, w.line, w.detail.as_str()))
        .collect();
    assert_eq!(
        found,
        [("UndefinedVar", 4, "Usage of undefined variable '$MISSING'")]
    );
}

#[test]
fn check_text_rendering() {
    let src = "FROM alpine\nMAINTAINER me\n";
    let report = check("Dockerfile", src, &ResolveOptions::default()).unwrap();
    assert_eq!(
        kiln_frontend::dockerfile::check::render_check("Dockerfile", src, &report),
        "WARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\nMaintainer instruction is deprecated in favor of using label\nDockerfile:2\n    2 | >>> MAINTAINER me\n\nCheck complete, 1 warning has been found!\n"
    );
    let clean = check("Dockerfile", "FROM alpine\n", &ResolveOptions::default()).unwrap();
    assert_eq!(
        kiln_frontend::dockerfile::check::render_check("Dockerfile", "FROM alpine\n", &clean),
        "Check complete, no warnings found.\n"
    );
}

#[test]
fn undefined_names_suggest_close_matches() {
    let found = rules("ARG VERSION=1\nFROM alpine:$VERSON\n");
    assert!(
        found.iter().any(|(r, _, d)| *r == "UndefinedArgInFrom"
            && d == "FROM argument 'VERSON' is not declared (did you mean VERSION?)"),
        "{found:?}"
    );
    let found = rules("FROM scratch\nARG DIR=/x\nCOPY a $DIRR\n");
    assert!(
        found.iter().any(|(r, _, d)| *r == "UndefinedVar"
            && d == "Usage of undefined variable '$DIRR' (did you mean $DIR?)"),
        "{found:?}"
    );
}

#[test]
fn constant_platform_in_from_warns_unless_the_stage_is_named_for_it() {
    let found = rules("FROM --platform=linux/amd64 alpine\n");
    assert!(
        found
            .iter()
            .any(|(r, l, d)| *r == "FromPlatformFlagConstDisallowed"
                && *l == 1
                && d == "FROM --platform flag should not use constant value \"linux/amd64\""),
        "{found:?}"
    );
    assert!(fired("FROM --platform=linux/arm64 alpine AS build-arm64\n").is_empty());
    assert!(fired("FROM --platform=$BUILDPLATFORM alpine\n").is_empty());
}
