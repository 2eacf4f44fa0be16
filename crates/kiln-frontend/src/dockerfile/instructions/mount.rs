//! `RUN --mount=type=...,key=value` specifications.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// Stage name, stage index or image the mount reads from (bind, cache).
    pub from: Option<String>,
    pub read_only: bool,
    /// Cache id, secret id or ssh agent id.
    pub id: Option<String>,
    pub sharing: CacheSharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size limit in bytes.
    pub size: Option<u64>,
    pub required: bool,
    /// Secret exposed as this environment variable instead of a file.
    pub env: Option<String>,
}

impl Mount {
    /// The secret or ssh id this mount asks for, with BuildKit's defaults.
    pub fn effective_id(&self) -> Option<String> {
        match self.kind {
            MountType::Secret => self.id.clone().or_else(|| self.source.clone()).or_else(|| {
                self.target
                    .as_deref()
                    .and_then(|t| t.rsplit('/').find(|s| !s.is_empty()))
                    .map(str::to_string)
            }),
            MountType::Ssh => Some(self.id.clone().unwrap_or_else(|| "default".into())),
            _ => self.id.clone(),
        }
    }
}

const ALL_KEYS: &str = "type, from, source/src, target/dst/destination, readonly/ro, readwrite/rw, id, sharing, required, size, mode, uid, gid, env";

/// Parses one `--mount` value. Values are passed through `expand` first; a value that
/// still holds `$` after that (expansion deferred) is not validated.
pub fn parse_mount(
    spec: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Mount, String> {
    let fields = csv_fields(spec)?;
    let mut kind = MountType::Bind;
    for field in &fields {
        if let Some((key, value)) = field.split_once('=')
            && key.eq_ignore_ascii_case("type")
        {
            kind = match value.to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                _ => {
                    return Err(format!(
                        "unsupported mount type {value:?} (use bind, cache, tmpfs, secret or ssh)"
                    ));
                }
            };
        }
    }
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        read_only: false,
        id: None,
        sharing: CacheSharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    let mut read_only: Option<bool> = None;
    let secret_like = matches!(kind, MountType::Secret | MountType::Ssh);
    for field in &fields {
        let Some((raw_key, raw_value)) = field.split_once('=') else {
            match field.to_ascii_lowercase().as_str() {
                "readonly" | "ro" => read_only = Some(true),
                "readwrite" | "rw" => read_only = Some(false),
                "required" if secret_like => m.required = true,
                "required" => {
                    return Err(format!(
                        "unexpected key 'required' for mount type '{}'",
                        kind.as_str()
                    ));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let key = raw_key.to_ascii_lowercase();
        if key == "from" && raw_value.contains(['$', '{', '}']) {
            return Err(
                "'from' doesn't support variable expansion, define alias stage instead".into(),
            );
        }
        let value = expand(raw_value)?;
        let deferred = value.contains('$');
        let bool_value =
            |v: &str| parse_go_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"));
        match key.as_str() {
            "type" => {}
            "from" => m.from = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "source" | "src" => m.source = Some(value),
            "id" => m.id = Some(value),
            "env" => m.env = Some(value),
            _ if deferred => {}
            "readonly" | "ro" => read_only = Some(bool_value(&value)?),
            "readwrite" | "rw" => read_only = Some(!bool_value(&value)?),
            "required" if secret_like => m.required = bool_value(&value)?,
            "size" if kind == MountType::Tmpfs => m.size = Some(parse_ram_size(&value)?),
            "required" | "size" => {
                return Err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    kind.as_str()
                ));
            }
            "sharing" => {
                if kind != MountType::Cache {
                    return Err(format!(
                        "invalid cache sharing set for {} mount",
                        kind.as_str()
                    ));
                }
                m.sharing = match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value {value:?} (use shared, private or locked)"
                        ));
                    }
                };
            }
            "mode" => {
                m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| {
                    format!("invalid value {value} for mode (expected octal, e.g. 0700)")
                })?);
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            _ => {
                return Err(format!(
                    "unexpected key '{raw_key}' in '{field}' (known keys: {ALL_KEYS})"
                ));
            }
        }
    }
    let file_info_allowed = matches!(kind, MountType::Secret | MountType::Ssh | MountType::Cache);
    if !file_info_allowed {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!(
                    "{name} not allowed for \"{}\" type mounts",
                    kind.as_str()
                ));
            }
        }
    }
    m.read_only = read_only.unwrap_or(!matches!(kind, MountType::Cache | MountType::Tmpfs));
    match kind {
        MountType::Secret => {
            if m.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
                return Err("secret mount needs one of id, source, target or env".into());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
        }
        MountType::Ssh => {}
        _ if m.target.is_none() => {
            return Err(format!(
                "mount type {} requires a target (target=/path)",
                kind.as_str()
            ));
        }
        _ => {}
    }
    Ok(m)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Sizes like `64m`, `1g`, `512k`, `100` (binary multiples, as `docker run --tmpfs`).
fn parse_ram_size(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 1 << 40),
        _ => (trimmed, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size: {v:?} (e.g. 64m, 1g)"))?;
    if n < 0.0 {
        return Err(format!("invalid size: {v:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// Comma-separated fields with CSV double-quote rules.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if in_quotes => in_quotes = false,
            '"' if field.is_empty() || field.ends_with('=') => in_quotes = true,
            ',' if !in_quotes => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!("unterminated quote in mount spec {s:?}"));
    }
    out.push(field);
    Ok(out.into_iter().filter(|f| !f.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Mount, String> {
        parse_mount(s, &mut |v| Ok(v.to_string()))
    }

    #[test]
    fn cache_mount_with_all_keys() {
        let m = parse("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0700,uid=1000,gid=1000,from=base,source=/c").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(
            (m.sharing, m.mode, m.uid, m.gid),
            (CacheSharing::Locked, Some(0o700), Some(1000), Some(1000))
        );
        assert!(!m.read_only);
    }

    #[test]
    fn bind_defaults_read_only_and_aliases_work() {
        let m = parse("dst=/src,src=.,from=build").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        assert!(!parse("type=bind,target=/x,rw").unwrap().read_only);
        assert!(
            parse("type=bind,target=/x,readwrite=false")
                .unwrap()
                .read_only
        );
    }

    #[test]
    fn secrets_and_ssh() {
        let m = parse("type=secret,id=npmrc,target=/root/.npmrc,required").unwrap();
        assert!(m.required && m.read_only);
        assert_eq!(m.effective_id().as_deref(), Some("npmrc"));
        let m = parse("type=secret,target=/run/secrets/token").unwrap();
        assert_eq!(m.effective_id().as_deref(), Some("token"));
        assert_eq!(
            parse("type=secret,id=t,env=TOKEN").unwrap().env.as_deref(),
            Some("TOKEN")
        );
        assert_eq!(
            parse("type=ssh").unwrap().effective_id().as_deref(),
            Some("default")
        );
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
    }

    #[test]
    fn invalid_specs_are_errors() {
        for bad in [
            "type=nfs,target=/x",
            "type=cache,target=/x,sharing=sometimes",
            "type=cache,target=/x,bogus=1",
            "type=bind,target=/x,sharing=shared",
            "type=bind,target=/x,mode=0700",
            "type=cache,target=/x,mode=9",
            "type=cache,target=/x,required",
            "type=secret,id=a,from=b",
            "type=secret",
            "type=secret,id=a,source=b",
            "type=cache",
            "type=cache,target=/x,uid=abc",
            "type=bind,target=/x,from=$STAGE",
            "type=cache,target",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn values_are_expanded_before_validation() {
        let m = parse_mount("type=cache,target=$DIR,id=${ID}", &mut |v| {
            Ok(v.replace("$DIR", "/c").replace("${ID}", "x"))
        })
        .unwrap();
        assert_eq!(
            (m.target.as_deref(), m.id.as_deref()),
            (Some("/c"), Some("x"))
        );
    }

    #[test]
    fn csv_quotes_protect_commas() {
        assert_eq!(
            csv_fields(r#"type=bind,"target=/a,b",ro"#).unwrap(),
            ["type=bind", "target=/a,b", "ro"]
        );
    }
}
