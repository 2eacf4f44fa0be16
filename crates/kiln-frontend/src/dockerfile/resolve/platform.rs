//! `os/arch[/variant]` platform strings.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// The machine kiln runs on, in OCI naming.
    fn default() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = (arch == "arm64").then(|| "v8".to_string());
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant,
        }
    }
}

impl Platform {
    /// Parses `linux`, `linux/arm64`, `linux/arm/v7` (lower-cased, `arm64` variant kept).
    pub fn parse(s: &str) -> Result<Platform, String> {
        let lower = s.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if parts.len() > 3 || !parts.iter().all(|p| valid(p)) {
            return Err(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]], e.g. linux/arm64"
            ));
        }
        let os = parts.first().copied().unwrap_or_default().to_string();
        let arch = match parts.get(1) {
            Some(a) => normalize_arch(a).to_string(),
            None => Platform::default().arch,
        };
        Ok(Platform {
            os,
            arch,
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" => "386",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("Linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }
}
