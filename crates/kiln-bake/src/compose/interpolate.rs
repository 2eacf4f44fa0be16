//! Compose variable interpolation (`$VAR`, `${VAR:-default}`...).

use std::collections::BTreeMap;

use serde_yaml_ng::Value as Yaml;

/// Expands `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?message}` and `$$` as compose does.
pub fn interpolate(s: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!(
                        "invalid interpolation format for {s:?}: unterminated ${{"
                    ));
                }
                let inner: String = chars[i + 2..j].iter().collect();
                out.push_str(&expand_braced(&inner, env)?);
                i = j + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(env.get(&name).map(String::as_str).unwrap_or(""));
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn expand_braced(inner: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_len);
    let value = env.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let sub = |d: &str| interpolate(d, env);
    if rest.is_empty() {
        return Ok(value.cloned().unwrap_or_default());
    }
    if let Some(d) = rest.strip_prefix(":-") {
        return if set_nonempty {
            Ok(value.cloned().unwrap_or_default())
        } else {
            sub(d)
        };
    }
    if let Some(d) = rest.strip_prefix('-') {
        return if value.is_some() {
            Ok(value.cloned().unwrap_or_default())
        } else {
            sub(d)
        };
    }
    if let Some(d) = rest.strip_prefix(":+") {
        return if set_nonempty {
            sub(d)
        } else {
            Ok(String::new())
        };
    }
    if let Some(d) = rest.strip_prefix('+') {
        return if value.is_some() {
            sub(d)
        } else {
            Ok(String::new())
        };
    }
    if let Some(m) = rest.strip_prefix(":?") {
        return if set_nonempty {
            Ok(value.cloned().unwrap_or_default())
        } else {
            Err(format!(
                "required variable {name} is missing a value: {}",
                sub(m)?
            ))
        };
    }
    if let Some(m) = rest.strip_prefix('?') {
        return value
            .cloned()
            .ok_or_else(|| format!("required variable {name} is missing a value: {m}"));
    }
    Err(format!("invalid interpolation format for ${{{inner}}}"))
}

pub(super) fn interpolate_yaml(v: &mut Yaml, env: &BTreeMap<String, String>) -> Result<(), String> {
    match v {
        Yaml::String(s) => *s = interpolate(s, env)?,
        Yaml::Sequence(items) => {
            for i in items {
                interpolate_yaml(i, env)?;
            }
        }
        Yaml::Mapping(m) => {
            for (_, i) in m.iter_mut() {
                interpolate_yaml(i, env)?;
            }
        }
        Yaml::Tagged(t) => interpolate_yaml(&mut t.value, env)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_forms() {
        let env: BTreeMap<String, String> = [
            ("A".to_string(), "x".to_string()),
            ("E".to_string(), String::new()),
        ]
        .into();
        assert_eq!(
            interpolate("$A-${A}-${B:-d}-${E:-e}-${E-f}-$$A", &env).unwrap(),
            "x-x-d-e--$A"
        );
        assert!(interpolate("${B:?need B}", &env).is_err());
    }
}
