//! Cache-miss explanations: the first input that differs from the nearest earlier record
//! of the same step, in the order a user thinks of them: files, build args and env, the
//! base image, the instruction, the parent step.

use kiln_store::Store;

use super::KeyInputs;
use crate::checksum::{EntrySum, Selection};

pub(crate) fn describe_entry(entry: &EntrySum, selection: &Selection) -> String {
    let mode = if selection.ignore_mode {
        String::from("-")
    } else {
        format!("{:o}", entry.mode)
    };
    format!(
        "{:?} {mode} {} {}",
        entry.kind,
        entry.content.as_deref().unwrap_or("-"),
        entry.link_target.as_deref().unwrap_or("")
    )
}

pub(crate) fn reason(store: &Store, step: &str, key: &str, now: &KeyInputs) -> String {
    if step.is_empty() {
        return "no earlier result".to_string();
    }
    let previous = match store.cache_latest_for_step(step, key) {
        Ok(Some(record)) => record,
        _ => return "no earlier build of this step".to_string(),
    };
    let Ok(before) = serde_json::from_str::<KeyInputs>(&previous.inputs) else {
        return "no comparable earlier build of this step".to_string();
    };
    compare(&before, now)
}

pub(crate) fn compare(before: &KeyInputs, now: &KeyInputs) -> String {
    if before.reads != now.reads {
        return files(before, now);
    }
    if let Some(text) = env_change(before, now) {
        return text;
    }
    let digest = |k: &KeyInputs| k.op.get("digest").cloned();
    if digest(before) != digest(now) {
        return format!(
            "base image changed: {} -> {}",
            digest(before).map(|d| d.to_string()).unwrap_or_default(),
            digest(now).map(|d| d.to_string()).unwrap_or_default()
        );
    }
    if before.op != now.op {
        let args = |k: &KeyInputs| k.op.get("args").cloned();
        if args(before) != args(now) {
            return format!(
                "command changed: {} -> {}",
                args(before).map(|a| a.to_string()).unwrap_or_default(),
                args(now).map(|a| a.to_string()).unwrap_or_default()
            );
        }
        return "the instruction changed".to_string();
    }
    if before.inputs.first() != now.inputs.first() {
        return "the step it builds on changed".to_string();
    }
    if before.inputs != now.inputs {
        return "a stage or image it reads from changed".to_string();
    }
    "inputs changed".to_string()
}

fn files(before: &KeyInputs, now: &KeyInputs) -> String {
    if before.files.is_empty() || now.files.is_empty() {
        return "files read from the context changed".to_string();
    }
    let name = |k: &str| k.split_once(':').map_or(k, |(_, p)| p).to_string();
    for (path, was) in &before.files {
        match now.files.get(path) {
            None => return format!("file {} was removed", name(path)),
            Some(is) if is != was => {
                let (was_mode, is_mode) = (was.split(' ').nth(1), is.split(' ').nth(1));
                if was_mode != is_mode {
                    return format!(
                        "file {} changed mode ({} -> {})",
                        name(path),
                        was_mode.unwrap_or("-"),
                        is_mode.unwrap_or("-")
                    );
                }
                return format!("file {} changed", name(path));
            }
            _ => {}
        }
    }
    if let Some(path) = now.files.keys().find(|p| !before.files.contains_key(*p)) {
        return format!("file {} was added", name(path));
    }
    "files read from the context changed".to_string()
}

fn env_change(before: &KeyInputs, now: &KeyInputs) -> Option<String> {
    let env = |k: &KeyInputs| -> Vec<(String, String)> {
        k.op.get("env")
            .and_then(|e| e.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str())
                    .map(|kv| match kv.split_once('=') {
                        Some((a, b)) => (a.to_string(), b.to_string()),
                        None => (kv.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (was, is) = (env(before), env(now));
    for (name, value) in &is {
        match was.iter().find(|(n, _)| n == name) {
            Some((_, old)) if old != value => {
                return Some(format!(
                    "build arg or env {name} changed: {old:?} -> {value:?}"
                ));
            }
            None => return Some(format!("build arg or env {name} is new: {value:?}")),
            _ => {}
        }
    }
    was.iter()
        .find(|(n, _)| !is.iter().any(|(m, _)| m == n))
        .map(|(name, _)| format!("build arg or env {name} was removed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(env: &[&str], args: &[&str]) -> serde_json::Value {
        serde_json::json!({ "kind": "exec", "args": args, "env": env })
    }

    #[test]
    fn names_the_first_difference_users_care_about() {
        let base = KeyInputs {
            op: exec(&["A=1"], &["make"]),
            inputs: vec!["p".into()],
            ..Default::default()
        };
        let mut arg = base.clone();
        arg.op = exec(&["A=2"], &["make"]);
        assert_eq!(
            compare(&base, &arg),
            "build arg or env A changed: \"1\" -> \"2\""
        );
        let mut cmd = base.clone();
        cmd.op = exec(&["A=1"], &["make", "all"]);
        assert!(compare(&base, &cmd).starts_with("command changed"));
        let mut parent = base.clone();
        parent.inputs = vec!["q".into()];
        assert_eq!(compare(&base, &parent), "the step it builds on changed");

        let mut before = base.clone();
        before.reads = vec!["r1".into()];
        before
            .files
            .insert("1:src/a.rs".into(), "File 644 sha256:aa ".into());
        let mut after = before.clone();
        after.reads = vec!["r2".into()];
        after
            .files
            .insert("1:src/a.rs".into(), "File 664 sha256:aa ".into());
        assert_eq!(
            compare(&before, &after),
            "file src/a.rs changed mode (644 -> 664)"
        );
        after
            .files
            .insert("1:src/a.rs".into(), "File 644 sha256:bb ".into());
        assert_eq!(compare(&before, &after), "file src/a.rs changed");
        after.files.clear();
        after
            .files
            .insert("1:src/b.rs".into(), "File 644 sha256:bb ".into());
        assert_eq!(compare(&before, &after), "file src/a.rs was removed");
    }
}
