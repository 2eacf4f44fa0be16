//! Date and time functions over RFC 3339 timestamps.

use super::{FnResult, arg_str, arity};
use crate::value::Value;

/// A point in time with the UTC offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Instant {
    unix: i64,
    nanos: u32,
    offset: i32,
}

pub fn call(name: &str, args: &[Value]) -> Option<FnResult> {
    Some(match name {
        "timestamp" => arity(args, 0).map(|_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Value::String(rfc3339(Instant {
                unix: now,
                nanos: 0,
                offset: 0,
            }))
        }),
        "formatdate" => arity(args, 2).and_then(|_| {
            let t = parse_rfc3339(&arg_str(args, 1)?)?;
            format_date(&arg_str(args, 0)?, t).map(Value::String)
        }),
        "formattimestamp" => arity(args, 2).and_then(|_| {
            let t = match &args[1] {
                Value::Number(n) => {
                    if n.fract() != 0.0 {
                        return Err("unix timestamp must be an integer".into());
                    }
                    Instant {
                        unix: *n as i64,
                        nanos: 0,
                        offset: 0,
                    }
                }
                other => parse_rfc3339(
                    &other
                        .as_string()
                        .ok_or("timestamp must be a string or number")?,
                )?,
            };
            let fmt = arg_str(args, 0)?;
            if fmt == "X" {
                return Ok(Value::String(t.unix.to_string()));
            }
            format_date(&fmt, t).map(Value::String)
        }),
        "timeadd" => arity(args, 2).and_then(|_| {
            let mut t = parse_rfc3339(&arg_str(args, 0)?)?;
            let nanos = parse_duration(&arg_str(args, 1)?)?;
            let total = t.unix as i128 * 1_000_000_000 + t.nanos as i128 + nanos;
            t.unix = total.div_euclid(1_000_000_000) as i64;
            t.nanos = total.rem_euclid(1_000_000_000) as u32;
            Ok(Value::String(rfc3339(t)))
        }),
        "unixtimestampparse" => Err("unixtimestampparse is not supported by kiln".into()),
        _ => return None,
    })
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_rfc3339(s: &str) -> Result<Instant, String> {
    let err = || format!("not a valid RFC3339 timestamp: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(err);
    let (year, month, day) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err());
    }
    let mut rest = s.get(19..).ok_or_else(err)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(err());
        }
        let padded = format!("{digits:0<9}");
        nanos = padded[..9].parse().map_err(|_| err())?;
        rest = &frac[digits.len()..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let h: i32 = rest[1..3].parse().map_err(|_| err())?;
            let m: i32 = rest[4..6].parse().map_err(|_| err())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(err()),
    };
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(Instant {
        unix: local - offset as i64,
        nanos,
        offset,
    })
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    weekday: usize,
}

fn parts(t: Instant) -> Parts {
    let local = t.unix + t.offset as i64;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs % 3600 / 60,
        second: secs % 60,
        weekday: (days + 4).rem_euclid(7) as usize,
    }
}

fn offset_str(offset: i32, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    if colon {
        format!("{sign}{:02}:{:02}", o / 3600, o % 3600 / 60)
    } else {
        format!("{sign}{:02}{:02}", o / 3600, o % 3600 / 60)
    }
}

fn rfc3339(t: Instant) -> String {
    let p = parts(t);
    let zone = if t.offset == 0 {
        "Z".to_string()
    } else {
        offset_str(t.offset, true)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn format_date(fmt: &str, t: Instant) -> Result<String, String> {
    let p = parts(t);
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or("unterminated literal '")?;
            out.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let token: String = chars[i..i + run].iter().collect();
        i += run;
        let hour12 = if p.hour % 12 == 0 { 12 } else { p.hour % 12 };
        let text = match token.as_str() {
            "YYYY" => format!("{:04}", p.year),
            "YY" => format!("{:02}", p.year % 100),
            "MMMM" => MONTHS[p.month as usize - 1].to_string(),
            "MMM" => MONTHS[p.month as usize - 1][..3].to_string(),
            "MM" => format!("{:02}", p.month),
            "M" => p.month.to_string(),
            "DD" => format!("{:02}", p.day),
            "D" => p.day.to_string(),
            "EEEE" => WEEKDAYS[p.weekday].to_string(),
            "EEE" => WEEKDAYS[p.weekday][..3].to_string(),
            "hh" => format!("{:02}", p.hour),
            "h" => p.hour.to_string(),
            "HH" => format!("{hour12:02}"),
            "H" => hour12.to_string(),
            "AA" => if p.hour < 12 { "AM" } else { "PM" }.to_string(),
            "aa" => if p.hour < 12 { "am" } else { "pm" }.to_string(),
            "mm" => format!("{:02}", p.minute),
            "m" => p.minute.to_string(),
            "ss" => format!("{:02}", p.second),
            "s" => p.second.to_string(),
            "ZZZZZ" => offset_str(t.offset, true),
            "ZZZZ" => offset_str(t.offset, false),
            "ZZZ" => {
                if t.offset == 0 {
                    "UTC".to_string()
                } else {
                    offset_str(t.offset, false)
                }
            }
            "Z" => {
                if t.offset == 0 {
                    "Z".to_string()
                } else {
                    offset_str(t.offset, true)
                }
            }
            other => return Err(format!("invalid date format verb {other:?}")),
        };
        out.push_str(&text);
    }
    Ok(out)
}

/// Go `time.ParseDuration` syntax: "1h30m", "-1.5h", "300ms".
fn parse_duration(s: &str) -> Result<i128, String> {
    let err = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -(total as i128) } else { total as i128 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_unix() {
        let t = parse_rfc3339("2015-10-21T00:00:00Z").unwrap();
        assert_eq!(t.unix, 1_445_385_600);
        assert_eq!(rfc3339(t), "2015-10-21T00:00:00Z");
    }

    #[test]
    fn formatdate_tokens() {
        let t = Instant {
            unix: 1_690_328_596,
            nanos: 0,
            offset: 0,
        };
        assert_eq!(
            format_date("YYYY-MM-DD'T'hh:mm:ssZ", t).unwrap(),
            "2023-07-25T23:43:16Z"
        );
        assert_eq!(
            format_date("EEE, DD MMM YYYY", t).unwrap(),
            "Tue, 25 Jul 2023"
        );
        let before_epoch = Instant {
            unix: -1,
            nanos: 0,
            offset: 0,
        };
        assert_eq!(
            format_date("YYYY-MM-DD hh:mm:ss", before_epoch).unwrap(),
            "1969-12-31 23:59:59"
        );
    }

    #[test]
    fn timeadd_uses_go_durations() {
        let r = call(
            "timeadd",
            &[Value::str("2017-11-22T00:00:00Z"), Value::str("1h30m")],
        )
        .unwrap();
        assert_eq!(r.unwrap(), Value::str("2017-11-22T01:30:00Z"));
    }
}
