//! `import --change 'CMD ["sh"]'`: the Dockerfile instructions that only touch the image
//! config, applied to it.

use super::error::{ImageStoreError, Result};
use crate::config::ContainerConfig;

/// Applies one Dockerfile instruction (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`,
/// `ONBUILD`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`) to `config`.
pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<()> {
    let invalid = |reason: &str| ImageStoreError::InvalidChange {
        change: change.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = change.trim();
    let (keyword, rest) = trimmed
        .split_once(char::is_whitespace)
        .map_or((trimmed, ""), |(k, r)| (k, r.trim()));
    if rest.is_empty() {
        return Err(invalid("missing arguments"));
    }
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = command(rest).map_err(|r| invalid(&r))?,
        "ENTRYPOINT" => config.entrypoint = command(rest).map_err(|r| invalid(&r))?,
        "ENV" => {
            for (key, value) in pairs(rest, true).map_err(|r| invalid(&r))? {
                let prefix = format!("{key}=");
                config.env.retain(|e| !e.starts_with(&prefix));
                config.env.push(format!("{key}={value}"));
            }
        }
        "LABEL" => {
            for (key, value) in pairs(rest, false).map_err(|r| invalid(&r))? {
                config.labels.insert(key, value);
            }
        }
        "EXPOSE" => {
            for port in words(rest).map_err(|r| invalid(&r))? {
                let port = if port.contains('/') {
                    port.to_ascii_lowercase()
                } else {
                    format!("{port}/tcp")
                };
                config.exposed_ports.insert(port);
            }
        }
        "VOLUME" => {
            let list = if rest.starts_with('[') {
                json_list(rest).map_err(|r| invalid(&r))?
            } else {
                words(rest).map_err(|r| invalid(&r))?
            };
            config.volumes.extend(list);
        }
        "USER" => config.user = single(rest).map_err(|r| invalid(&r))?,
        "WORKDIR" => config.working_dir = single(rest).map_err(|r| invalid(&r))?,
        "STOPSIGNAL" => config.stop_signal = single(rest).map_err(|r| invalid(&r))?,
        "ONBUILD" => config.on_build.push(rest.to_owned()),
        _ => return Err(invalid("not an instruction import can apply")),
    }
    Ok(())
}

fn json_list(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(text).map_err(|e| format!("not a JSON string array: {e}"))
}

/// Exec form as written, shell form run by `/bin/sh -c`.
fn command(text: &str) -> Result<Vec<String>, String> {
    if text.starts_with('[')
        && let Ok(list) = json_list(text)
    {
        return Ok(list);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), text.to_owned()])
}

fn single(text: &str) -> Result<String, String> {
    let mut all = words(text)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        _ => Err("expects exactly one value".into()),
    }
}

/// `k=v k2="v 2"`, or for ENV also the legacy `KEY value with spaces`.
fn pairs(text: &str, legacy_form: bool) -> Result<Vec<(String, String)>, String> {
    let first = text.split_whitespace().next().unwrap_or("");
    if legacy_form && !first.contains('=') {
        let value = text[first.len()..].trim();
        return Ok(vec![(first.to_owned(), unquote_whole(value)?)]);
    }
    let mut out = Vec::new();
    for word in words(text)? {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{word:?} has an empty key"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn unquote_whole(text: &str) -> Result<String, String> {
    Ok(words(text)?.join(" "))
}

/// Splits on unquoted whitespace; single quotes are literal, double quotes and backslashes
/// escape as in a Dockerfile.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => current.push(c),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    current.push(c);
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for ch in changes {
            apply_change(&mut c, ch).unwrap();
        }
        c
    }

    #[test]
    fn exec_and_shell_forms() {
        let c = applied(&[r#"CMD ["sh", "-c", "echo hi"]"#, "ENTRYPOINT top -b"]);
        assert_eq!(c.cmd, ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint, ["/bin/sh", "-c", "top -b"]);
    }

    #[test]
    fn env_label_expose_volume_and_singles() {
        let c = applied(&[
            "ENV A=1 B=\"two words\"",
            "env A=3",
            "ENV LEGACY some value",
            "LABEL org.x=\"y z\" k=v",
            "EXPOSE 80 53/UDP",
            r#"VOLUME ["/data"]"#,
            "USER nobody",
            "WORKDIR /srv",
            "STOPSIGNAL SIGTERM",
            "ONBUILD RUN true",
        ]);
        assert_eq!(c.env, ["B=two words", "A=3", "LEGACY=some value"]);
        assert_eq!(c.labels["org.x"], "y z");
        assert_eq!(c.labels["k"], "v");
        assert!(c.exposed_ports.contains("80/tcp") && c.exposed_ports.contains("53/udp"));
        assert!(c.volumes.contains("/data"));
        assert_eq!(
            (
                c.user.as_str(),
                c.working_dir.as_str(),
                c.stop_signal.as_str()
            ),
            ("nobody", "/srv", "SIGTERM")
        );
        assert_eq!(c.on_build, ["RUN true"]);
    }

    #[test]
    fn refuses_what_import_cannot_apply() {
        let mut c = ContainerConfig::default();
        for bad in [
            "RUN make",
            "CMD",
            "LABEL novalue",
            "USER a b",
            "ENV A=\"open",
        ] {
            assert!(
                matches!(
                    apply_change(&mut c, bad),
                    Err(ImageStoreError::InvalidChange { .. })
                ),
                "{bad}"
            );
        }
    }
}
