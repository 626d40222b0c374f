//! The TTL string grammar of cashews, free of dependencies so the `#[cache]`
//! macros check TTL literals at compile time with exactly the rules of
//! runtime parsing: both depend on this crate.
//!
//! TTLs are *formatted* with `humantime`, but not parsed with it: its
//! parser takes no fractions (`1.5h`), no bare seconds (`90`) and no commas,
//! and it takes months and years of average length, which a TTL should not
//! silently mean. One grammar, here, serves compile and run time.
//!
//! The forms, each on its own:
//!
//! | form | example | meaning |
//! |---|---|---|
//! | units | `1d2h3m50s`, `1.5h`, `2 hours, 5 min`, `1 minutes 2 days` | the sum (ms, s, m, h, d, w and their long names) |
//! | seconds | `90`, `30.1`, `9.9e-05` | that many seconds |
//! | clock | `15:30`, `10:15:30`, `4 10:15:30`, `15:30.000001` | `m:s`, `h:m:s`, with days in front; the last part may have a fraction |
//! | ISO 8601 | `PT5M`, `P4D`, `P0.5D`, `P1DT2H`, `PT0.000005S` | days, hours, minutes, seconds; years, months and weeks are refused (not fixed lengths, as in aquiche) |

#![forbid(unsafe_code)]

pub mod expire_at;

pub use expire_at::ExpireAt;

use std::time::Duration;

/// Parses a TTL in any of the forms above; zero is allowed.
pub fn parse(input: &str) -> Result<Duration, &'static str> {
    let text = input.trim();
    if text.is_empty() {
        return Err("empty ttl");
    }
    if text.starts_with('-') {
        return Err("a ttl cannot be negative");
    }
    let total = if let Some(iso) = text.strip_prefix(['P', 'p']) {
        iso_8601(iso)?
    } else if text.contains(':') {
        clock(text)?
    } else if let Some(seconds) = bare_seconds(text) {
        seconds?
    } else {
        units(text)?
    };
    if total.as_millis() > i64::MAX as u128 {
        return Err("ttl is too large");
    }
    Ok(total)
}

/// `number * scale` seconds, checked.
fn seconds(number: f64, scale: f64) -> Result<Duration, &'static str> {
    Duration::try_from_secs_f64(number * scale).map_err(|_| "ttl is too large")
}

fn add(total: Duration, part: Duration) -> Result<Duration, &'static str> {
    total.checked_add(part).ok_or("ttl is too large")
}

/// A plain decimal number (digits and at most one point).
fn decimal(text: &str) -> Result<f64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("expected a number");
    }
    text.parse().map_err(|_| "malformed number")
}

/// A number alone, exponent allowed (`90`, `30.1`, `9.9e-05`): seconds.
fn bare_seconds(text: &str) -> Option<Result<Duration, &'static str>> {
    let starts_with_digit = text.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    let number_only = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if !starts_with_digit || !number_only {
        return None;
    }
    Some(
        text.parse::<f64>()
            .map_err(|_| "malformed number")
            .and_then(|n| seconds(n, 1.0)),
    )
}

/// `1d2h3m50s`, `2 hours, 5 min`, `1 minutes 2 days 10 hours`.
fn units(text: &str) -> Result<Duration, &'static str> {
    let bytes = text.as_bytes();
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = decimal(&text[start..i])?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = text[unit_start..i].to_ascii_lowercase();
        if unit.is_empty() {
            // A bare number is seconds, but only on its own: "1m10" is ambiguous.
            return Err("a number without a unit after another component");
        }
        let scale = unit_seconds(&unit)
            .ok_or("unknown unit (use ms, s, m, h, d, w or their long names)")?;
        total = add(total, seconds(number, scale)?)?;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
            i += 1;
        }
    }
    Ok(total)
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" | "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        _ => return None,
    })
}

/// `[D ]M:S` or `[D ]H:M:S`; only the last part may have a fraction.
fn clock(text: &str) -> Result<Duration, &'static str> {
    let (days, rest) = match text.split_once(' ') {
        Some((days, rest)) => (decimal(days.trim())?, rest.trim()),
        None => (0.0, text),
    };
    if days.fract() != 0.0 {
        return Err("the days of a clock form are whole");
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let scales: &[f64] = match parts.len() {
        2 => &[60.0, 1.0],
        3 => &[3600.0, 60.0, 1.0],
        _ => return Err("a clock form is m:s or h:m:s"),
    };
    let mut total = seconds(days, 86_400.0)?;
    for (n, (part, scale)) in parts.iter().zip(scales).enumerate() {
        let number = decimal(part)?;
        if n + 1 < parts.len() && part.contains('.') {
            return Err("only the last part of a clock form may have a fraction");
        }
        total = add(total, seconds(number, *scale)?)?;
    }
    Ok(total)
}

/// The rest of an ISO 8601 duration after `P`: `nD`, then `T` with `nH`,
/// `nM`, `nS`, in that order.
fn iso_8601(text: &str) -> Result<Duration, &'static str> {
    let (date, time) = text
        .split_once(['T', 't'])
        .map_or((text, None), |(date, time)| (date, Some(time)));
    if date.is_empty() && time.is_none_or(str::is_empty) {
        return Err("an ISO 8601 duration needs a component");
    }
    if time == Some("") {
        return Err("an ISO 8601 duration has a component after T");
    }
    let mut total = Duration::ZERO;
    let date_units: &[(char, f64)] = &[('D', 86_400.0)];
    let time_units: &[(char, f64)] = &[('H', 3600.0), ('M', 60.0), ('S', 1.0)];
    for (is_date, part, units) in [
        (true, date, date_units),
        (false, time.unwrap_or(""), time_units),
    ] {
        let mut rest = part;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
                .ok_or("an ISO 8601 component needs its unit")?;
            let number = decimal(&rest[..end].replace(',', "."))?;
            let unit = rest[end..].chars().next().map(|c| c.to_ascii_uppercase());
            if is_date && matches!(unit, Some('Y' | 'M' | 'W')) {
                return Err("years, months and weeks are not fixed lengths: use days (P28D)");
            }
            let Some(at) = units[next_unit..]
                .iter()
                .position(|(u, _)| Some(*u) == unit)
            else {
                return Err("unknown or misplaced ISO 8601 unit (PnDTnHnMnS)");
            };
            next_unit += at + 1;
            total = add(total, seconds(number, units[next_unit - 1].1)?)?;
            rest = &rest[end + 1..];
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// aquiche's README examples, and this grammar's own forms.
    #[test]
    fn every_form() {
        let table: &[(&str, Duration)] = &[
            ("1d2h3m50s", secs(93_830.0)),
            ("1.5h", secs(5_400.0)),
            ("2 hours, 5 min", secs(7_500.0)),
            ("250ms", Duration::from_millis(250)),
            // aquiche: timedelta values.
            ("30", secs(30.0)),
            ("30.1", Duration::from_millis(30_100)),
            ("9.9e-05", Duration::from_micros(99)),
            ("15:30", secs(930.0)),
            ("5:30", secs(330.0)),
            ("10:15:30", secs(36_930.0)),
            ("1:15:30", secs(4_530.0)),
            ("100:200:300", secs(372_300.0)),
            ("4 15:30", secs(4.0 * 86_400.0 + 930.0)),
            ("4 10:15:30", secs(4.0 * 86_400.0 + 36_930.0)),
            ("15:30.1", Duration::from_millis(930_100)),
            ("15:30.01", Duration::from_millis(930_010)),
            ("15:30.001", Duration::from_millis(930_001)),
            ("15:30.0001", Duration::from_micros(930_000_100)),
            ("15:30.00001", Duration::from_micros(930_000_010)),
            ("15:30.000001", Duration::from_micros(930_000_001)),
            ("P4D", secs(4.0 * 86_400.0)),
            ("P0.5D", secs(43_200.0)),
            ("PT5H", secs(18_000.0)),
            ("PT5M", secs(300.0)),
            ("PT5S", secs(5.0)),
            ("PT0.000005S", Duration::from_micros(5)),
            ("P1DT2H3M4S", secs(93_784.0)),
            ("1m 10h 10s", secs(36_070.0)),
            ("1minute 10hour 10second", secs(36_070.0)),
            ("1minutes 10hours 10seconds", secs(36_070.0)),
            ("1 minutes 2 days 10 hours 10 seconds", secs(208_870.0)),
            ("1 m 2 d 10 h 10 s", secs(208_870.0)),
            ("1 day 42 minutes 6 seconds", secs(86_400.0 + 2_526.0)),
        ];
        for (input, expected) in table {
            let parsed = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let diff = parsed.abs_diff(*expected);
            assert!(
                diff <= Duration::from_nanos(1),
                "{input:?}: {parsed:?} != {expected:?}"
            );
        }
    }

    #[test]
    fn refused() {
        for input in [
            "",
            " ",
            "-5",
            "-5s",
            "P4Y",
            "P4M",
            "P4W",
            "P",
            "PT",
            "P1H",
            "PT1D",
            "PT5M4H",
            "P5",
            "1m10",
            "10 parsecs",
            "1:2:3:4",
            "1.5:30",
            "4.5 10:00",
            "inf",
            "NaN",
            "1e400",
            "abc",
            "15:",
            ":30",
            "P-1D",
        ] {
            assert!(
                parse(input).is_err(),
                "{input:?} parsed as {:?}",
                parse(input)
            );
        }
    }
}
