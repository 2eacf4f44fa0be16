//! `--name=value` instruction flags, validated against what each instruction accepts.

use crate::dockerfile::error::InstrError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    /// One value; giving the flag twice is an error.
    Text,
    /// Repeatable; values accumulate.
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FlagValue {
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

/// Flags of one instruction after validation.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, FlagValue>,
}

impl Flags {
    pub fn parse(
        instruction: &str,
        raw: &[String],
        accepted: &[(&'static str, FlagKind)],
    ) -> Result<Self, InstrError> {
        let mut flags = Flags::default();
        for word in raw {
            let body = word.strip_prefix("--").unwrap_or(word);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = accepted.iter().find(|(n, _)| *n == name) else {
                let hint = if accepted.is_empty() {
                    format!("{instruction} takes no flags")
                } else {
                    let names: Vec<String> =
                        accepted.iter().map(|(n, _)| format!("--{n}")).collect();
                    format!("{instruction} accepts {}", names.join(", "))
                };
                return Err(
                    InstrError::new(format!("unknown flag --{name} for {instruction}"))
                        .at(format!("--{name}"))
                        .hint(hint),
                );
            };
            match kind {
                FlagKind::Bool => {
                    let b = match value.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("") | Some("true") => true,
                        Some("false") => false,
                        Some(_) => {
                            return Err(InstrError::new(format!(
                                "expecting boolean value for flag {name}, not: {}",
                                value.unwrap_or_default()
                            ))
                            .at(word.clone())
                            .hint(format!("use --{name}, --{name}=true or --{name}=false")));
                        }
                    };
                    flags.values.insert(key, FlagValue::Bool(b));
                }
                FlagKind::Text | FlagKind::List => {
                    let Some(value) = value else {
                        return Err(InstrError::new(format!("missing a value on flag: {name}"))
                            .at(word.clone())
                            .hint(format!("write it as --{name}=<value>")));
                    };
                    if kind == FlagKind::Text {
                        if flags.values.contains_key(key) {
                            return Err(InstrError::new(format!(
                                "duplicate flag specified: {name}"
                            ))
                            .at(word.clone()));
                        }
                        flags.values.insert(key, FlagValue::Text(value.to_string()));
                    } else {
                        let slot = flags
                            .values
                            .entry(key)
                            .or_insert_with(|| FlagValue::List(Vec::new()));
                        if let FlagValue::List(list) = slot {
                            list.push(value.to_string());
                        }
                    }
                }
            }
        }
        Ok(flags)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(FlagValue::Bool(true)))
    }

    /// `Some(b)` only when the flag was written.
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        match self.values.get(name) {
            Some(FlagValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(FlagValue::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(FlagValue::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, FlagKind)] = &[
        ("from", FlagKind::Text),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::List),
    ];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_kinds() {
        let f = Flags::parse(
            "COPY",
            &words(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            COPY,
        )
        .unwrap();
        assert_eq!(f.text("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.list("exclude"), ["x", "y"]);
        let f = Flags::parse("COPY", &words(&["--link=FALSE"]), COPY).unwrap();
        assert_eq!(f.opt_bool("link"), Some(false));
    }

    #[test]
    fn rejects_unknown_duplicate_valueless_and_bad_bool() {
        let e = Flags::parse("COPY", &words(&["--foo=1"]), COPY).unwrap_err();
        assert_eq!(e.message, "unknown flag --foo for COPY");
        assert!(e.hint.unwrap().contains("--from"));
        assert!(Flags::parse("COPY", &words(&["--from=a", "--from=b"]), COPY).is_err());
        assert!(Flags::parse("COPY", &words(&["--from"]), COPY).is_err());
        assert!(Flags::parse("COPY", &words(&["--link=maybe"]), COPY).is_err());
        assert!(
            Flags::parse("ENV", &words(&["--x"]), &[])
                .unwrap_err()
                .hint
                .unwrap()
                .contains("no flags")
        );
    }
}
