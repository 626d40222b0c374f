//! The TTL string grammar of cashews, free of dependencies so the `#[cache]`
//! macros check TTL literals at compile time with exactly the rules of
//! runtime parsing: both depend on this crate.
//!
//! TTLs are *formatted* with `humantime`, but not parsed with it: its
//! parser takes no fractions (`1.5h`), no bare seconds (`90`) and no commas,
//! and it takes months and years of average length, which a TTL should not
//! silently mean. One grammar, here, serves compile and run time.

#![forbid(unsafe_code)]

use std::time::Duration;

/// Parses `"1d2h3m50s"`, `"1.5h"`, `"90"`, `"2 hours 5min"`; zero is allowed.
pub fn parse(input: &str) -> Result<Duration, &'static str> {
    let text = input.trim();
    if text.is_empty() {
        return Err("empty ttl");
    }
    let bytes = text.as_bytes();
    let mut total = Duration::ZERO;
    let mut i = 0;
    let mut components = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(if bytes[i] == b'-' {
                "a ttl cannot be negative"
            } else {
                "expected a number"
            });
        }
        let number: f64 = text[start..i].parse().map_err(|_| "malformed number")?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = text[unit_start..i].to_ascii_lowercase();
        components += 1;
        let scale = if unit.is_empty() {
            // A bare number is seconds, but only on its own: "1m10" is ambiguous.
            if components > 1 || i < bytes.len() {
                return Err("a number without a unit after another component");
            }
            1.0
        } else {
            unit_seconds(&unit).ok_or("unknown unit (use ms, s, m, h, d, w or their long names)")?
        };
        let part = Duration::try_from_secs_f64(number * scale).map_err(|_| "ttl is too large")?;
        total = total.checked_add(part).ok_or("ttl is too large")?;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
            i += 1;
        }
    }
    if total.as_millis() > i64::MAX as u128 {
        return Err("ttl is too large");
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
