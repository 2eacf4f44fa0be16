//! Sizes and durations as buildkitd.toml and `docker buildx prune` spell them: `512MB`,
//! `10GB`, `20%`, `48h`, `1h30m`.

use std::time::Duration;

use super::GcError;

/// A disk space amount: bytes, or a share of the filesystem holding the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Space {
    Bytes(u64),
    /// 0–100 percent of the store filesystem's size.
    Percent(f64),
}

impl Space {
    /// Bytes, given the size of the store's filesystem.
    pub fn resolve(self, fs_total: u64) -> u64 {
        match self {
            Space::Bytes(b) => b,
            Space::Percent(p) => (fs_total as f64 * p / 100.0) as u64,
        }
    }
}

/// Parses `1024`, `512MB`, `10GB`, `1.5GiB`, `20%`. Units are binary (`MB` = 1024²), as in
/// buildkit and docker, which read these with the same "RAM" convention.
pub fn parse_space(text: &str) -> Result<Space, GcError> {
    let bad = || GcError::InvalidSize(text.to_owned());
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(0.0..=100.0).contains(&v) {
            return Err(bad());
        }
        return Ok(Space::Percent(v));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = value * 1024f64.powi(power);
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Space::Bytes(bytes as u64))
}

/// Parses a Go-style duration: `90s`, `48h`, `1h30m`, `1.5h`, `500ms`. A bare number is
/// seconds (buildkitd.toml's integer `keepDuration`).
pub fn parse_duration(text: &str) -> Result<Duration, GcError> {
    let bad = || GcError::InvalidDuration(text.to_owned());
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Decimal units with three significant digits, as docker prints sizes (`4.26MB`).
pub fn format_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_buildkit() {
        assert_eq!(parse_space("512MB").unwrap(), Space::Bytes(512 << 20));
        assert_eq!(parse_space("10GB").unwrap(), Space::Bytes(10 << 30));
        assert_eq!(parse_space("10g").unwrap(), Space::Bytes(10 << 30));
        assert_eq!(parse_space("1.5KiB").unwrap(), Space::Bytes(1536));
        assert_eq!(parse_space("4096").unwrap(), Space::Bytes(4096));
        assert_eq!(parse_space("20%").unwrap(), Space::Percent(20.0));
        assert_eq!(Space::Percent(20.0).resolve(1000), 200);
        for bad in ["", "x", "10XB", "120%", "-1GB", "1.2.3MB"] {
            assert!(parse_space(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(
            parse_duration("48h").unwrap(),
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3600").unwrap(), Duration::from_secs(3600));
        for bad in ["", "h", "10d", "5x", "1h-2m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(4_261_000), "4.26MB");
        assert_eq!(format_size(12_340), "12.3kB");
        assert_eq!(format_size(1_000_000), "1MB");
    }
}
