//! Runs BuildKit's shell-lexer vectors (`shared/conformance/shell-lexer/`) against
//! `kiln_frontend::shell`. Every non-Windows case must pass; a missing vector file
//! fails the test.

use std::path::PathBuf;

use kiln_frontend::shell::Lexer;

fn shared_dir() -> PathBuf {
    match std::env::var_os("KILN_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

fn read_vectors(name: &str) -> String {
    let path = shared_dir().join("conformance/shell-lexer").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "conformance vectors {} are required (set KILN_SHARED_DIR to the shared folder): {e}",
            path.display()
        )
    })
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_var_vectors() {
    let text = read_vectors("envVarTest");
    let env = pairs(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let lexer = Lexer::new('\\');
    let (mut ran, mut skipped_windows) = (0usize, 0usize);
    let mut failures = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        if raw_line.starts_with('#') || raw_line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw_line.trim().split('|').collect();
        let [platform, input, expected] = fields.as_slice() else {
            panic!("envVarTest line {line_no}: expected 3 fields: {raw_line:?}");
        };
        let (input, expected) = (input.trim(), expected.trim());
        match platform.trim() {
            "W" => {
                skipped_windows += 1;
                continue;
            }
            "A" | "U" => {}
            other => panic!("envVarTest line {line_no}: unknown platform {other:?}"),
        }
        ran += 1;
        let got = lexer.expand_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(expansion), expected) => expected != "error" && expansion.value == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "line {line_no}: {input:?} expected {expected:?}, got {got:?}"
            ));
        }
    }
    println!("envVarTest: {ran} cases ran, {skipped_windows} Windows-only cases skipped");
    assert!(
        failures.is_empty(),
        "{} of {ran} envVarTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran > 200,
        "only {ran} envVarTest cases found; the file looks truncated"
    );
}

#[test]
fn words_vectors() {
    let text = read_vectors("wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = 0usize;
    let mut failures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(definition) = line.strip_prefix("ENV ") {
            let definition = definition.trim_start_matches(' ');
            let (key, value) = definition.split_once('=').unwrap_or((definition, ""));
            env.push((key.to_string(), value.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let [input, expected] = fields.as_slice() else {
            panic!("wordsTest line {line_no}: expected exactly one '|': {line:?}");
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        ran += 1;
        let got = lexer.expand_words(input, &env);
        let ok = match &got {
            Ok(words) => words == &expected,
            Err(_) => expected == ["error"],
        };
        if !ok {
            failures.push(format!(
                "line {line_no}: {input:?} expected {expected:?}, got {got:?}"
            ));
        }
    }
    println!("wordsTest: {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} wordsTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran > 20,
        "only {ran} wordsTest cases found; the file looks truncated"
    );
}
