//! Parsers for flag and argument values: Go durations, chmod modes, checksums, signals
//! and port specs.

use serde::Serialize;
use std::time::Duration;

/// Parses a Go `time.ParseDuration` string (`300ms`, `1m30s`, `1.5h`, `0`).
/// Negative durations are rejected: no Dockerfile setting accepts them.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {s:?}: expected a number with a unit (ns, us, ms, s, m, h), e.g. 30s or 1m30s"
        )
    };
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos_per;
        rest = after;
    }
    if total > i64::MAX as f64 {
        return Err(format!("invalid duration {s:?}: too large"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// A `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Chmod {
    /// `0755`, `644`.
    Octal(u32),
    /// `u+x,g-w`, `a=rX`: applied to each file's existing mode.
    Symbolic(Vec<SymbolicClause>),
}

/// One comma-separated clause of a symbolic mode: `[ugoa]*[+-=][rwxXst]*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolicClause {
    /// Subset of `ugoa`; empty means `a`.
    pub who: String,
    pub op: char,
    /// Subset of `rwxXst`, or one of `u`, `g`, `o` to copy those bits.
    pub perms: String,
}

pub fn parse_chmod(s: &str) -> Result<Chmod, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return u32::from_str_radix(s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Chmod::Octal)
            .ok_or_else(|| {
                format!("invalid chmod {s:?}: octal modes use digits 0-7 and are at most 7777")
            });
    }
    let bad = |why: &str| {
        format!("invalid chmod {s:?}: {why}; expected octal like 0755 or symbolic like u+x,g-w")
    };
    let mut clauses = Vec::new();
    for clause in s.split(',') {
        let who_len = clause
            .find(|c: char| !"ugoa".contains(c))
            .unwrap_or(clause.len());
        let (who, rest) = clause.split_at(who_len);
        let mut chars = rest.chars();
        let op = chars.next().ok_or_else(|| bad("missing + - or ="))?;
        if !matches!(op, '+' | '-' | '=') {
            return Err(bad("missing + - or ="));
        }
        let perms: String = chars.collect();
        let copy = matches!(perms.as_str(), "u" | "g" | "o");
        if !copy && !perms.chars().all(|c| "rwxXst".contains(c)) {
            return Err(bad("unknown permission letter"));
        }
        clauses.push(SymbolicClause {
            who: who.to_string(),
            op,
            perms,
        });
    }
    Ok(Chmod::Symbolic(clauses))
}

/// Checks an `ADD --checksum` value: a digest `sha256:<64 hex>`, `sha384:<96>`,
/// `sha512:<128>`, or, for Git sources, a bare commit id (40 or 64 hex digits).
pub fn validate_checksum(s: &str) -> Result<(), String> {
    let is_hex = |h: &str| {
        h.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    if !s.contains(':') && matches!(s.len(), 40 | 64) && is_hex(s) {
        return Ok(());
    }
    let (algo, hex) = s
        .split_once(':')
        .ok_or_else(|| format!("invalid checksum digest {s:?}: expected <algorithm>:<hex>"))?;
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "unsupported digest algorithm {algo:?}: use sha256, sha384 or sha512"
            ));
        }
    };
    if hex.len() != len
        || !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(format!(
            "invalid checksum digest {s:?}: {algo} needs {len} lowercase hex digits"
        ));
    }
    Ok(())
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Accepts a signal number, a name with or without `SIG`, or `SIGRTMIN+n`.
pub fn validate_signal(s: &str) -> Result<(), String> {
    if let Ok(n) = s.parse::<u32>() {
        return if n == 0 || n > 64 {
            Err(format!("invalid signal: {s}"))
        } else {
            Ok(())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = ["RTMIN", "RTMAX"].iter().any(|p| {
        name.strip_prefix(p).is_some_and(|r| {
            r.is_empty()
                || r.strip_prefix(['+', '-'])
                    .is_some_and(|n| n.parse::<u8>().is_ok())
        })
    });
    if rt || SIGNALS.contains(&name) {
        Ok(())
    } else {
        Err(format!("invalid signal: {s}"))
    }
}

/// An `EXPOSE` entry: `80`, `8000-8010/udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    pub start: u16,
    pub end: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

pub fn parse_port(s: &str) -> Result<PortSpec, String> {
    let (ports, proto) = match s.rsplit_once('/') {
        Some((p, proto)) => (p, proto),
        None => (s, "tcp"),
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => {
            return Err(format!(
                "invalid proto: {proto} (expected tcp, udp or sctp)"
            ));
        }
    };
    // An `ip:` prefix is accepted and ignored, as the engine does for EXPOSE.
    let ports = ports.rsplit_once(':').map_or(ports, |(_, p)| p);
    let num = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {s}"))
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if end < start {
        return Err(format!("invalid range specified for container port: {s}"));
    }
    Ok(PortSpec {
        start,
        end,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "1x", "s", "-1s", "1..5s", "1h 2m"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(parse_chmod("0755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(parse_chmod("644"), Ok(Chmod::Octal(0o644)));
        assert!(parse_chmod("0789").is_err());
        let Ok(Chmod::Symbolic(c)) = parse_chmod("u+x,g-w,a=rX,o=u") else {
            panic!()
        };
        assert_eq!(c.len(), 4);
        assert_eq!(
            (c[0].who.as_str(), c[0].op, c[0].perms.as_str()),
            ("u", '+', "x")
        );
        assert!(parse_chmod("u+q").is_err());
        assert!(parse_chmod("rwx").is_err());
        assert!(parse_chmod("").is_err());
    }

    #[test]
    fn checksums_signals_ports() {
        assert!(validate_checksum(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(validate_checksum("sha256:abc").is_err());
        assert!(validate_checksum(&"0123456789abcdef0123".repeat(2)).is_ok());
        assert!(validate_checksum("0123").is_err());
        assert!(validate_checksum("md5:abc").is_err());
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3"] {
            assert!(validate_signal(ok).is_ok(), "{ok}");
        }
        assert!(validate_signal("SIGFOO").is_err());
        assert_eq!(
            parse_port("80").unwrap(),
            PortSpec {
                start: 80,
                end: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(parse_port("53/udp").unwrap().protocol, Protocol::Udp);
        assert_eq!(parse_port("8000-8010/tcp").unwrap().end, 8010);
        assert!(parse_port("80/xyz").is_err());
        assert!(parse_port("http").is_err());
        assert!(parse_port("90-80").is_err());
    }
}
