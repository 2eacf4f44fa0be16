//! Step runner and comparison modifiers of the bake conformance README.

mod compare;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_bake::{BakeError, BakeFile, BakeRequest, Config};
use serde_json::Value as Json;

pub use compare::match_fields;

pub enum CaseResult {
    Pass,
    Fail(String),
}

macro_rules! fail {
    ($($t:tt)*) => { return CaseResult::Fail(format!($($t)*)) };
}

pub fn string_map(v: &Json) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh working directory named `bake` (compose derives the project name from it).
fn work_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir()
        .join(format!("kiln-bake-conformance-{}-{n}", std::process::id()))
        .join("bake");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create work dir");
    dir
}

fn write_files(dir: &Path, files: &[BakeFile]) {
    for f in files {
        let path = dir.join(&f.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&path, &f.content).expect("write file");
    }
}

fn files_of(step: &Json) -> Vec<BakeFile> {
    step["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| BakeFile {
            name: f["name"].as_str().unwrap_or_default().to_string(),
            content: f["content"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

fn request(step: &Json, cwd: &Path) -> BakeRequest {
    let mut files = files_of(step);
    files.retain(|f| !f.name.ends_with("Dockerfile") && !f.name.contains("Dockerfile."));
    let mut env = string_map(&step["env"]);
    if step["parse_opts"]["file_relative_paths"].as_bool() == Some(true) {
        env.insert("BUILDX_BAKE_FILE_RELATIVE_PATHS".into(), "1".into());
    }
    BakeRequest {
        files,
        targets: strings(&step["targets"]),
        overrides: strings(&step["overrides"]),
        env,
        vars: string_map(&step["vars"]),
        cwd: cwd.to_path_buf(),
        defaults: string_map(&step["defaults"]),
        compose_env: None,
    }
}

/// Checks `error*` expectations; `Some` when the step's outcome is settled.
fn check_error<T>(expect: &Json, result: &Result<T, BakeError>) -> Option<CaseResult> {
    let want_error = expect.get("error").and_then(Json::as_bool);
    match (want_error, result) {
        (Some(true), Ok(_)) => Some(CaseResult::Fail("expected an error, got success".into())),
        (Some(true), Err(e)) => {
            let text = e.to_string();
            if let Some(eq) = expect.get("error_equals").and_then(Json::as_str)
                && text != eq
            {
                return Some(CaseResult::Fail(format!("error {text:?} != {eq:?}")));
            }
            for key in ["error_contains", "output_contains"] {
                if let Some(c) = expect.get(key).and_then(Json::as_str)
                    && !text.contains(c)
                {
                    return Some(CaseResult::Fail(format!(
                        "error {text:?} does not contain {c:?}"
                    )));
                }
            }
            if let Some(names) = expect.get("error_diagnostics_missing_variables|elements_match") {
                let mut want = strings(names);
                let mut got = e.missing_variables();
                want.sort();
                got.sort();
                if want != got {
                    return Some(CaseResult::Fail(format!(
                        "missing variables {got:?} != {want:?}"
                    )));
                }
            }
            Some(CaseResult::Pass)
        }
        (_, Err(e)) => Some(CaseResult::Fail(format!("unexpected error: {e}"))),
        (Some(false), Ok(_)) => Some(CaseResult::Pass),
        (None, Ok(_)) => None,
    }
}

pub fn check_step(api: &str, step: &Json) -> CaseResult {
    let expect = &step["expect"];
    let cwd = work_dir();
    match api {
        "ReadTargets" | "ReadTargets+TargetsToBuildOpt" => {
            let mut req = request(step, &cwd);
            if req.targets.is_empty() {
                req.targets = vec!["default".into()];
            }
            let result = kiln_bake::resolve(&req);
            if let Some(r) = check_error(expect, &result) {
                return r;
            }
            let resolved = result.expect("checked");
            check_read_targets(expect, &resolved, &cwd)
        }
        "ParseFile" | "ParseFiles" => {
            let req = request(step, &cwd);
            let result = kiln_bake::parse(&req);
            if let Some(r) = check_error(expect, &result) {
                return r;
            }
            check_config(expect, &result.expect("checked").config)
        }
        "ParseCompose" => {
            let mut req = request(step, &cwd);
            req.compose_env = Some(match &step["compose_env"] {
                Json::String(s) if s == "os.Environ()" => string_map(&step["env"]),
                other => string_map(other),
            });
            let result = kiln_bake::parse(&req);
            if let Some(r) = check_error(expect, &result) {
                return r;
            }
            check_config(expect, &result.expect("checked").config)
        }
        "cli: docker buildx bake" => {
            let files = files_of(step);
            write_files(&cwd, &files);
            let argv = strings(&step["argv"]);
            let result = run_cli(&argv, &cwd, string_map(&step["env"]));
            if let Some(r) = check_error(expect, &result) {
                return r;
            }
            check_cli(expect, &result.expect("checked"))
        }
        "hcl stdlib function" => {
            let call = step["call"].as_str().unwrap_or_default();
            let result = kiln_bake::eval_expression(call);
            if let Some(r) = check_error(expect, &result) {
                return r;
            }
            let got = result.expect("checked").to_json();
            if got != expect["value"] {
                fail!("{call} = {got}, want {}", expect["value"]);
            }
            CaseResult::Pass
        }
        other => CaseResult::Fail(format!("unknown api {other}")),
    }
}

/// The `kiln bake` flags the CLI vectors use, run through the library.
fn run_cli(
    argv: &[String],
    cwd: &Path,
    env: BTreeMap<String, String>,
) -> Result<String, BakeError> {
    let mut req = BakeRequest {
        cwd: cwd.to_path_buf(),
        env,
        ..BakeRequest::default()
    };
    let mut files = Vec::new();
    let mut list = None;
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--print" => {}
            "--set" => req.overrides.push(args.next().cloned().unwrap_or_default()),
            "--var" => {
                let v = args.next().cloned().unwrap_or_default();
                let (k, val) = v.split_once('=').unwrap_or((&v, ""));
                req.vars.insert(k.to_string(), val.to_string());
            }
            "-f" | "--file" => files.push(args.next().cloned().unwrap_or_default()),
            s if s.starts_with("--list=") => list = Some(s["--list=".len()..].to_string()),
            s => req.targets.push(s.to_string()),
        }
    }
    req.files = kiln_bake::read_files(&files, cwd, &mut std::io::empty())?;
    if let Some(kind) = list {
        let parsed = kiln_bake::parse(&req)?;
        return Ok(match kind.as_str() {
            "variables" | "type=variables" => kiln_bake::print::list_variables(&parsed.variables),
            _ => kiln_bake::print::list_targets(&parsed.config),
        });
    }
    let resolved = kiln_bake::resolve(&req)?;
    Ok(kiln_bake::print::print_text(&resolved))
}

fn check_cli(expect: &Json, stdout: &str) -> CaseResult {
    if let Some(want) = expect.get("print_json_eq") {
        let got: Json = serde_json::from_str(stdout).unwrap_or(Json::Null);
        if &got != want {
            fail!("printed {got}\nwant {want}");
        }
    }
    for s in strings(expect.get("stdout_contains").unwrap_or(&Json::Null)) {
        if !stdout.contains(&s) {
            fail!("stdout does not contain {s:?}: {stdout}");
        }
    }
    for s in strings(expect.get("stdout_not_contains").unwrap_or(&Json::Null)) {
        if stdout.contains(&s) {
            fail!("stdout contains {s:?}: {stdout}");
        }
    }
    if let Some(want) = expect.get("stdout_trimmed_equals").and_then(Json::as_str)
        && stdout.trim() != want
    {
        fail!("stdout {:?} != {want:?}", stdout.trim());
    }
    if let Some(want) = expect.get("print_targets").and_then(Json::as_object) {
        let got: Json = serde_json::from_str(stdout).unwrap_or(Json::Null);
        for (name, fields) in want {
            let printed = &got["target"][name];
            if printed.is_null() {
                fail!("target {name} not printed");
            }
            if let Err(e) = compare::match_printed(printed, fields) {
                fail!("target {name}: {e}");
            }
        }
    }
    CaseResult::Pass
}

fn check_read_targets(expect: &Json, r: &kiln_bake::Resolved, cwd: &Path) -> CaseResult {
    if let Some(n) = expect.get("target_count").and_then(Json::as_u64)
        && r.targets.len() as u64 != n
    {
        fail!(
            "target count {} != {n} ({:?})",
            r.targets.len(),
            r.targets.keys().collect::<Vec<_>>()
        );
    }
    if let Some(n) = expect.get("group_count").and_then(Json::as_u64)
        && r.groups.len() as u64 != n
    {
        fail!(
            "group count {} != {n} ({:?})",
            r.groups.len(),
            r.groups.keys().collect::<Vec<_>>()
        );
    }
    for (key, sorted) in [("groups", false), ("groups|sorted", true)] {
        if let Some(want) = expect.get(key).and_then(Json::as_object) {
            for (name, targets) in want {
                let Some(g) = r.groups.get(name) else {
                    fail!("group {name} missing")
                };
                let mut got = g.targets.clone();
                let mut want = strings(targets);
                if sorted {
                    got.sort();
                    want.sort();
                }
                if got != want {
                    fail!("group {name}: {got:?} != {want:?}");
                }
            }
        }
    }
    for (key, names) in [
        (
            "group_names|sorted",
            r.groups.keys().cloned().collect::<Vec<_>>(),
        ),
        ("target_names|sorted", r.targets.keys().cloned().collect()),
    ] {
        if let Some(want) = expect.get(key) {
            let mut want = strings(want);
            want.sort();
            if names != want {
                fail!("{key}: {names:?} != {want:?}");
            }
        }
    }
    if let Some(want) = expect.get("targets").and_then(Json::as_object) {
        for (name, fields) in want {
            let Some(t) = r.targets.get(name) else {
                fail!("target {name} missing")
            };
            if let Err(e) = match_fields(t, fields, Some(cwd)) {
                fail!("target {name}: {e}");
            }
        }
    }
    CaseResult::Pass
}

fn check_group(g: &kiln_bake::Group, want: &Json) -> Result<(), String> {
    for (k, v) in want.as_object().into_iter().flatten() {
        let mut got = g.targets.clone();
        let mut exp = strings(v);
        match k.as_str() {
            "index" | "name" => continue,
            "targets" => {}
            "targets|sorted" | "targets|elements_match" => {
                got.sort();
                exp.sort();
            }
            other => return Err(format!("unknown group field {other}")),
        }
        if got != exp {
            return Err(format!("group {} targets {got:?} != {exp:?}", g.name));
        }
    }
    Ok(())
}

fn check_config(expect: &Json, c: &Config) -> CaseResult {
    if let Some(n) = expect.get("config_target_count").and_then(Json::as_u64)
        && c.targets.len() as u64 != n
    {
        fail!(
            "config target count {} != {n} ({:?})",
            c.targets.len(),
            c.targets.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
    }
    if let Some(n) = expect.get("config_group_count").and_then(Json::as_u64)
        && c.groups.len() as u64 != n
    {
        fail!(
            "config group count {} != {n} ({:?})",
            c.groups.len(),
            c.groups
        );
    }
    for (key, mut names) in [
        (
            "config_target_names|elements_match",
            c.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        ),
        (
            "config_group_names|elements_match",
            c.groups.iter().map(|g| g.name.clone()).collect(),
        ),
    ] {
        if let Some(want) = expect.get(key) {
            let mut want = strings(want);
            want.sort();
            names.sort();
            if names != want {
                fail!("{key}: {names:?} != {want:?}");
            }
        }
    }
    for want in expect
        .get("config_targets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let i = want["index"].as_u64().unwrap_or(0) as usize;
        let Some(t) = c.targets.get(i) else {
            fail!("no config target at index {i}")
        };
        if let Some(name) = want["name"].as_str()
            && t.name != name
        {
            fail!("config target {i} is {:?}, want {name:?}", t.name);
        }
        if let Err(e) = match_fields(t, want, None) {
            fail!("config target {}: {e}", t.name);
        }
    }
    for (name, want) in expect
        .get("config_targets_by_name")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        let Some(t) = c.target(name) else {
            fail!("config target {name} missing")
        };
        if let Err(e) = match_fields(t, want, None) {
            fail!("config target {name}: {e}");
        }
    }
    for want in expect
        .get("config_groups")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let i = want["index"].as_u64().unwrap_or(0) as usize;
        let Some(g) = c.groups.get(i) else {
            fail!("no config group at index {i}")
        };
        if let Some(name) = want["name"].as_str()
            && g.name != name
        {
            fail!("config group {i} is {:?}, want {name:?}", g.name);
        }
        if let Err(e) = check_group(g, want) {
            fail!("{e}");
        }
    }
    for (name, want) in expect
        .get("config_groups_by_name")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        let Some(g) = c.group(name) else {
            fail!("config group {name} missing")
        };
        let got = g.targets.clone();
        if got != strings(want) {
            fail!("group {name}: {got:?} != {want}");
        }
    }
    CaseResult::Pass
}
