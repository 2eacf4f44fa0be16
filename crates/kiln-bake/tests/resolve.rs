//! End-to-end resolution scenarios through the public API.

use std::collections::BTreeMap;

use kiln_bake::{BakeFile, BakeRequest, Resolved, print};

fn file(name: &str, content: &str) -> BakeFile {
    BakeFile {
        name: name.into(),
        content: content.into(),
    }
}

fn resolve(files: Vec<BakeFile>, targets: &[&str], overrides: &[&str]) -> Resolved {
    let req = BakeRequest {
        files,
        targets: targets.iter().map(|s| s.to_string()).collect(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        ..BakeRequest::default()
    };
    kiln_bake::resolve(&req).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn inherits_apply_in_order_and_the_child_wins() {
    let r = resolve(
        vec![file(
            "docker-bake.hcl",
            r#"
target "a" {
  args = { X = "a", Y = "a" }
  tags = ["a"]
}
target "b" {
  args = { X = "b" }
  platforms = ["linux/arm64"]
}
target "c" {
  inherits = ["a", "b"]
  args = { Z = "c" }
}
"#,
        )],
        &["c"],
        &[],
    );
    let c = &r.targets["c"];
    let args = c.args.as_ref().unwrap();
    assert_eq!(args["X"].as_deref(), Some("b"));
    assert_eq!(args["Y"].as_deref(), Some("a"));
    assert_eq!(args["Z"].as_deref(), Some("c"));
    assert_eq!(c.tags.as_deref(), Some(&["a".to_string()][..]));
    assert_eq!(
        c.platforms.as_deref(),
        Some(&["linux/arm64".to_string()][..])
    );
    assert!(c.inherits.is_empty());
}

#[test]
fn matrix_targets_form_a_group_and_can_be_referenced() {
    let r = resolve(
        vec![file(
            "docker-bake.hcl",
            r#"
target "app" {
  name = "app-${tgt}-${replace(ver, ".", "-")}"
  matrix = {
    tgt = ["dev", "prod"]
    ver = ["1.0", "2.0"]
  }
  target = tgt
  args = { VERSION = ver }
}
target "pin" {
  tags = ["pinned-${target.app-prod-2-0.args.VERSION}"]
}
"#,
        )],
        &["app", "pin"],
        &[],
    );
    assert_eq!(r.groups["app"].targets.len(), 4);
    assert_eq!(r.targets["app-dev-1-0"].target.as_deref(), Some("dev"));
    assert_eq!(r.targets["pin"].tags.as_ref().unwrap()[0], "pinned-2.0");
}

#[test]
fn set_overrides_support_globs_append_and_push() {
    let r = resolve(
        vec![file(
            "docker-bake.hcl",
            r#"
target "web" { platforms = ["linux/amd64"] }
target "worker" { output = ["type=local,dest=out"] }
"#,
        )],
        &["web", "worker"],
        &[
            "w*.tags=repo:dev",
            "web.platform+=linux/arm64",
            "*.push=true",
        ],
    );
    let web = &r.targets["web"];
    assert_eq!(web.tags.as_deref(), Some(&["repo:dev".to_string()][..]));
    assert_eq!(web.platforms.as_ref().unwrap().len(), 2);
    assert_eq!(web.output.as_ref().unwrap()[0]["push"], "true");
    // Local outputs are never turned into pushes.
    assert_eq!(
        r.targets["worker"].output.as_ref().unwrap()[0]["type"],
        "local"
    );
}

#[test]
fn json_and_override_files_merge_after_hcl() {
    let r = resolve(
        vec![
            file(
                "docker-bake.hcl",
                "variable \"TAG\" { default = \"1\" }\ntarget \"app\" { tags = [\"app:${TAG}\"] }\n",
            ),
            file(
                "docker-bake.override.json",
                r#"{"TAG": "2", "target": {"app": {"dockerfile": "Dockerfile.${TAG}"}}}"#,
            ),
        ],
        &["app"],
        &[],
    );
    let app = &r.targets["app"];
    assert_eq!(app.tags.as_ref().unwrap()[0], "app:2");
    assert_eq!(app.dockerfile.as_deref(), Some("Dockerfile.2"));
}

#[test]
fn linked_targets_are_pulled_in_as_cache_only() {
    let r = resolve(
        vec![file(
            "docker-bake.hcl",
            r#"
target "base" { dockerfile = "base.Dockerfile" }
target "app" { contexts = { base = "target:base" } }
"#,
        )],
        &["app"],
        &[],
    );
    let base = &r.targets["base"];
    assert_eq!(base.output.as_ref().unwrap()[0]["type"], "cacheonly");
    assert_eq!(r.groups["default"].targets, vec!["app".to_string()]);
}

#[test]
fn variables_take_cli_vars_over_env_over_defaults() {
    let content = "variable \"N\" {\n  type = number\n  default = 1\n}\ntarget \"t\" { args = { N = N + 1 } }\n";
    let mut req = BakeRequest {
        files: vec![file("docker-bake.hcl", content)],
        targets: vec!["t".into()],
        env: BTreeMap::from([("N".to_string(), "10".to_string())]),
        ..BakeRequest::default()
    };
    let get = |req: &BakeRequest| {
        kiln_bake::resolve(req).unwrap().targets["t"]
            .args
            .as_ref()
            .unwrap()["N"]
            .clone()
    };
    assert_eq!(get(&req).as_deref(), Some("11"));
    req.vars.insert("N".into(), "20".into());
    assert_eq!(get(&req).as_deref(), Some("21"));
    req.vars.clear();
    req.env
        .insert("BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP".into(), "1".into());
    assert_eq!(get(&req).as_deref(), Some("2"));
}

#[test]
fn compose_reads_dotenv_and_x_bake() {
    let dir = std::env::temp_dir().join(format!("kiln-bake-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), "# comment\nVERSION=\"1.2\"\n").unwrap();
    let req = BakeRequest {
        files: vec![file(
            "compose.yaml",
            "services:\n  api:\n    build:\n      context: ./api\n      args:\n        V: ${VERSION}\n      x-bake:\n        platforms: linux/arm64\n",
        )],
        cwd: dir.clone(),
        ..BakeRequest::default()
    };
    let r = kiln_bake::resolve(&req).unwrap();
    let api = &r.targets["api"];
    assert_eq!(api.context.as_deref(), Some("api"));
    assert_eq!(api.args.as_ref().unwrap()["V"].as_deref(), Some("1.2"));
    assert_eq!(
        api.platforms.as_deref(),
        Some(&["linux/arm64".to_string()][..])
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn print_escapes_template_markers() {
    let r = resolve(
        vec![file(
            "docker-bake.hcl",
            "target \"default\" {\n  args = { A = \"$${HOME}\" }\n}\n",
        )],
        &[],
        &[],
    );
    let json = print::print_json(&r);
    assert_eq!(json["target"]["default"]["args"]["A"], "$${HOME}");
    assert_eq!(json["group"]["default"]["targets"][0], "default");
}

#[test]
fn default_files_are_found_in_merge_order() {
    let dir = std::env::temp_dir().join(format!("kiln-bake-defaults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-bake.override.hcl"), "target \"x\" {}\n").unwrap();
    std::fs::write(dir.join("docker-bake.hcl"), "target \"x\" {}\n").unwrap();
    std::fs::write(dir.join("compose.yaml"), "services: {}\n").unwrap();
    let files = kiln_bake::read_files(&[], &dir, &mut std::io::empty()).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "compose.yaml",
            "docker-bake.hcl",
            "docker-bake.override.hcl"
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_targets_and_bad_overrides_are_errors() {
    let files = vec![file("docker-bake.hcl", "target \"a\" {}\n")];
    let req = |targets: &[&str], overrides: &[&str]| BakeRequest {
        files: files.clone(),
        targets: targets.iter().map(|s| s.to_string()).collect(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        ..BakeRequest::default()
    };
    let err = kiln_bake::resolve(&req(&["nope"], &[])).unwrap_err();
    assert_eq!(err.to_string(), "failed to find target nope");
    let err = kiln_bake::resolve(&req(&["a"], &["a.bogus=1"])).unwrap_err();
    assert_eq!(err.to_string(), "unknown key: bogus");
    let err = kiln_bake::resolve(&req(&["a"], &["a.no-cache=maybe"])).unwrap_err();
    assert!(err.to_string().contains("boolean"), "{err}");
}
