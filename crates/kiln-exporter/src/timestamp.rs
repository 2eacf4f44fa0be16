//! RFC 3339 timestamps as image configs carry them, without a calendar crate.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ExportError, Result};

/// A UTC instant with nanosecond precision, written the way Go's `time.Time` marshals
/// (RFC 3339 with trailing zero fraction digits dropped), so configs read like BuildKit's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn from_unix(secs: i64) -> Self {
        Timestamp { secs, nanos: 0 }
    }

    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(_) => Timestamp::from_unix(0),
        }
    }

    /// `SOURCE_DATE_EPOCH` semantics: never later than the epoch when one is given.
    pub fn clamp_to(self, epoch: Option<i64>) -> Self {
        match epoch {
            Some(e) if self > Timestamp::from_unix(e) => Timestamp::from_unix(e),
            _ => self,
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        parse_rfc3339(text).ok_or_else(|| ExportError::InvalidTimestamp(text.to_owned()))
    }
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's civil algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut parts = date.splitn(3, '-');
    let y = i64::from(digits(parts.next()?)?);
    let mo = digits(parts.next()?)?;
    let d = digits(parts.next()?)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || rest.len() < 8 {
        return None;
    }
    let h = digits(rest.get(0..2)?)?;
    let mi = digits(rest.get(3..5)?)?;
    let s = digits(rest.get(6..8)?)?;
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut tail = rest.get(8..)?;
    let mut nanos = 0u32;
    if let Some(after_dot) = tail.strip_prefix('.') {
        let end = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        let frac = &after_dot[..end];
        if frac.is_empty() {
            return None;
        }
        let padded: String = frac.chars().chain("000000000".chars()).take(9).collect();
        nanos = digits(&padded)?;
        tail = &after_dot[end..];
    }
    let offset_secs: i64 = if tail == "Z" || tail == "z" {
        0
    } else {
        let sign = match tail.get(0..1)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
        if tail.len() != 6 || tail.get(3..4)? != ":" {
            return None;
        }
        let oh = i64::from(digits(tail.get(1..3)?)?);
        let om = i64::from(digits(tail.get(4..6)?)?);
        sign * (oh * 3600 + om * 60)
    };
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s)
        - offset_secs;
    Some(Timestamp { secs, nanos })
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(Timestamp::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_700_000_000).to_string(),
            "2023-11-14T22:13:20Z"
        );
        let t = Timestamp {
            secs: 1_700_000_000,
            nanos: 120_000_000,
        };
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.12Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = Timestamp::parse("2023-11-14T23:13:20.5+01:00").unwrap();
        assert_eq!(t.secs, 1_700_000_000);
        assert_eq!(t.nanos, 500_000_000);
        assert!(Timestamp::parse("2023-13-01T00:00:00Z").is_err());
        assert!(Timestamp::parse("garbage").is_err());
        assert!(Timestamp::parse("2023-11-14T22:13:20").is_err());
    }

    #[test]
    fn round_trips_across_the_calendar() {
        for secs in [-86_400 * 365 * 100, -1, 0, 951_782_400, 4_102_444_800] {
            let t = Timestamp::from_unix(secs);
            assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
    }

    #[test]
    fn clamps_only_later_times() {
        let t = Timestamp::from_unix(100);
        assert_eq!(t.clamp_to(Some(50)).secs, 50);
        assert_eq!(t.clamp_to(Some(500)).secs, 100);
        assert_eq!(t.clamp_to(None).secs, 100);
    }
}
