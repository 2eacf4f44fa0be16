//! `--secret` values: read when a RUN mounts them, never stored, logged or keyed.

use std::path::PathBuf;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl SecretSource {
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            SecretSource::File(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display())),
            SecretSource::Env(name) => std::env::var(name)
                .map(String::into_bytes)
                .map_err(|_| format!("secret environment variable {name} is not set")),
        }
    }
}

/// Parses `id=NAME[,src=PATH|,env=VAR][,type=file|env]` like buildx: with neither `src`
/// nor `env`, an environment variable named like the id is used when set, else a file
/// of that name.
pub fn parse_secret_flag(text: &str) -> Result<(String, SecretSource), String> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    let mut kind = None;
    for field in text.split(',') {
        let (key, value) = field.split_once('=').ok_or_else(|| {
            format!("invalid --secret {text:?}: expected key=value fields like id=NAME,src=PATH")
        })?;
        match key.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(value.to_string()),
            "src" | "source" => src = Some(value.to_string()),
            "env" => env = Some(value.to_string()),
            "type" => kind = Some(value.to_string()),
            other => {
                return Err(format!(
                    "invalid --secret {text:?}: unknown key {other:?} (use id, src, env, type)"
                ));
            }
        }
    }
    let id = id
        .or_else(|| env.clone())
        .or_else(|| src.clone())
        .ok_or_else(|| format!("invalid --secret {text:?}: id is required"))?;
    let source = match (kind.as_deref(), src, env) {
        (Some("env"), Some(var), None) => SecretSource::Env(var),
        (_, Some(path), None) => SecretSource::File(PathBuf::from(path)),
        (_, None, Some(var)) => SecretSource::Env(var),
        (_, Some(_), Some(_)) => {
            return Err(format!(
                "invalid --secret {text:?}: give src or env, not both"
            ));
        }
        (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
        (_, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
        (_, None, None) => SecretSource::File(PathBuf::from(&id)),
    };
    Ok((id, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags() {
        assert_eq!(
            parse_secret_flag("id=tok,src=/run/tok").unwrap(),
            ("tok".into(), SecretSource::File("/run/tok".into()))
        );
        assert_eq!(
            parse_secret_flag("id=tok,env=TOKEN").unwrap().1,
            SecretSource::Env("TOKEN".into())
        );
        assert_eq!(parse_secret_flag("env=TOKEN").unwrap().0, "TOKEN");
        assert!(parse_secret_flag("src=/a,env=B,id=x").is_err());
        assert!(parse_secret_flag("bogus").is_err());
        assert!(parse_secret_flag("id=x,color=red").is_err());
    }
}
