//! Runs the buildx bake conformance vectors from `shared/conformance/bake`
//! against the same resolution code `kiln bake --print` uses.
//!
//! A custom harness (`harness = false`) so the counts are always printed;
//! the process fails on any failing step that is not in `SKIP`.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use support::{CaseResult, check_step};

/// Cases (or `case/step`) not passing yet, each with the reason.
const SKIP: &[(&str, &str)] = &[];

fn conformance_dir() -> PathBuf {
    match std::env::var("KILN_SHARED_DIR") {
        Ok(dir) => Path::new(&dir).join("conformance/bake"),
        Err(_) => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/conformance/bake"
        )),
    }
}

fn load_cases(dir: &Path) -> Vec<Json> {
    let mut cases = Vec::new();
    for file in ["cases.json", "cases-extra.json"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let parsed: Json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", path.display()));
        cases.extend(parsed.as_array().cloned().unwrap_or_default());
    }
    cases
}

fn skip_reason(id: &str, step: &str) -> Option<&'static str> {
    SKIP.iter()
        .find(|(k, _)| *k == id || *k == format!("{id}/{step}"))
        .map(|(_, r)| *r)
}

fn main() {
    std::process::exit(if bake_conformance() { 0 } else { 1 });
}

/// Returns whether every step passed or was skipped with a reason.
fn bake_conformance() -> bool {
    for (id, reason) in SKIP {
        assert!(!reason.trim().is_empty(), "skip entry {id} needs a reason");
    }
    let cases = load_cases(&conformance_dir());
    assert!(!cases.is_empty(), "no conformance cases found");
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let (mut cases_passed, mut cases_total) = (0, 0);
    let mut failures = Vec::new();
    let mut now_passing = Vec::new();
    for case in &cases {
        cases_total += 1;
        let id = case["id"].as_str().unwrap_or("?");
        let api = case["api"].as_str().unwrap_or("");
        let mut case_ok = true;
        for (i, step) in case["steps"].as_array().into_iter().flatten().enumerate() {
            let step_name = step["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| i.to_string());
            let result = std::panic::catch_unwind(|| check_step(api, step));
            let result = result.unwrap_or_else(|_| CaseResult::Fail("panicked".into()));
            match (result, skip_reason(id, &step_name)) {
                (CaseResult::Pass, None) => passed += 1,
                (CaseResult::Pass, Some(_)) => {
                    passed += 1;
                    now_passing.push(format!("{id}/{step_name}"));
                }
                (CaseResult::Fail(msg), Some(reason)) => {
                    skipped += 1;
                    case_ok = false;
                    let _ = (msg, reason);
                }
                (CaseResult::Fail(msg), None) => {
                    failed += 1;
                    case_ok = false;
                    failures.push(format!("{id} [{step_name}] ({api}): {msg}"));
                }
            }
        }
        if case_ok {
            cases_passed += 1;
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    for p in &now_passing {
        eprintln!("NOTE skipped step passes now, remove it from SKIP: {p}");
    }
    println!("bake conformance: {cases_passed}/{cases_total} cases fully passing");
    println!("conformance: {passed} passed, {failed} failed, {skipped} skipped");
    if !failures.is_empty() {
        eprintln!("{} conformance step(s) failed", failures.len());
    }
    failures.is_empty()
}
