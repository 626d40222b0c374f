//! Absolute expiry: a moment, or a time of day that comes back every day.
//!
//! | form | example | expires |
//! |---|---|---|
//! | time of day | `"00:00"`, `"09:30:15"`, `"23:59:59.5"` | every day at that time, UTC |
//! | … with an offset | `"00:00+02:00"`, `"06:00-0530"`, `"11:05Z"`, `"11:05+06"` | every day at that local time |
//! | date | `"2027-01-01"` | at its midnight, UTC |
//! | datetime | `"2027-01-01T09:15:00"`, `"2027-01-01 09:15"` | at that moment, UTC |
//! | … with an offset | `"2027-01-01T09:15:00Z"`, `"2027-01-01T10:20:30.4+02:30"` | at that moment |

use std::time::Duration;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::Offset;
use jiff::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// When a value expires, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireAt {
    /// At one moment: milliseconds since the Unix epoch.
    Moment(i64),
    /// Every day at a time of day: milliseconds after midnight, local to an
    /// offset of `offset_seconds` east of UTC (fixed: no daylight saving).
    Daily {
        /// Milliseconds after local midnight.
        ms_of_day: u32,
        /// The offset of local time from UTC, in seconds.
        offset_seconds: i32,
    },
}

impl ExpireAt {
    /// Parses one of the forms of the [module docs](self).
    pub fn parse(input: &str) -> Result<ExpireAt, &'static str> {
        let text = input.trim();
        if text.is_empty() {
            return Err("empty expiry");
        }
        let is_date = text.len() >= 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
        if !is_date {
            return daily(text);
        }
        if text.len() == 10 {
            let date: Date = text.parse().map_err(|_| "not a date (YYYY-MM-DD)")?;
            return moment_utc(date.to_datetime(Time::midnight()));
        }
        if let Ok(timestamp) = text.parse::<Timestamp>() {
            return Ok(ExpireAt::Moment(timestamp.as_millisecond()));
        }
        let datetime: DateTime = text
            .parse()
            .map_err(|_| "not an ISO 8601 datetime (YYYY-MM-DDTHH:MM[:SS][offset])")?;
        moment_utc(datetime)
    }

    /// The moment `unix_seconds` seconds after the Unix epoch.
    pub fn from_unix_seconds(unix_seconds: i64) -> ExpireAt {
        ExpireAt::Moment(unix_seconds.saturating_mul(1000))
    }

    /// How long after `now_unix_ms` it expires; `None` once a moment has
    /// passed. A daily time is always ahead: at most a day away, never zero.
    pub fn remaining(&self, now_unix_ms: u64) -> Option<Duration> {
        let now = i64::try_from(now_unix_ms).unwrap_or(i64::MAX);
        match *self {
            ExpireAt::Moment(at) => {
                let left = at.checked_sub(now).filter(|left| *left > 0)?;
                Some(Duration::from_millis(left as u64))
            }
            ExpireAt::Daily {
                ms_of_day,
                offset_seconds,
            } => {
                let local = (now + i64::from(offset_seconds) * 1000).rem_euclid(DAY_MS);
                let mut left = (i64::from(ms_of_day) - local).rem_euclid(DAY_MS);
                if left == 0 {
                    left = DAY_MS;
                }
                Some(Duration::from_millis(left as u64))
            }
        }
    }
}

fn moment_utc(datetime: DateTime) -> Result<ExpireAt, &'static str> {
    Offset::UTC
        .to_timestamp(datetime)
        .map(|timestamp| ExpireAt::Moment(timestamp.as_millisecond()))
        .map_err(|_| "out of range")
}

/// `HH:MM[:SS[.f]]` and an optional offset: `Z`, `±HH`, `±HHMM`, `±HH:MM`.
fn daily(text: &str) -> Result<ExpireAt, &'static str> {
    let (clock, offset_seconds) = match text.find(['Z', 'z', '+', '-']) {
        None => (text, 0),
        Some(at) => (&text[..at], offset(&text[at..])?),
    };
    if clock.len() < 5 {
        return Err("a time of day is HH:MM[:SS][offset]");
    }
    let time: Time = clock
        .parse()
        .map_err(|_| "a time of day is HH:MM[:SS][offset]")?;
    let ms_of_day = (i64::from(time.hour()) * 3_600_000
        + i64::from(time.minute()) * 60_000
        + i64::from(time.second()) * 1000
        + i64::from(time.millisecond())) as u32;
    Ok(ExpireAt::Daily {
        ms_of_day,
        offset_seconds,
    })
}

fn offset(text: &str) -> Result<i32, &'static str> {
    const BAD: &str = "an offset is Z, ±HH, ±HHMM or ±HH:MM";
    if text.eq_ignore_ascii_case("z") {
        return Ok(0);
    }
    let sign = match text.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(BAD),
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return Err(BAD);
    }
    let hours: i32 = digits[..2].parse().map_err(|_| BAD)?;
    let minutes: i32 = match &digits[2..] {
        "" => 0,
        minutes => minutes.parse().map_err(|_| BAD)?,
    };
    if hours > 23 || minutes > 59 {
        return Err(BAD);
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_ms(text: &str) -> u64 {
        text.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    #[test]
    fn forms() {
        let at = |text| ExpireAt::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let moment = |text| ExpireAt::Moment(unix_ms(text) as i64);
        // aquiche's examples that name one moment.
        assert_eq!(at("2012-04-23T09:15:00"), moment("2012-04-23T09:15:00Z"));
        assert_eq!(at("2012-04-23T09:15:00Z"), moment("2012-04-23T09:15:00Z"));
        assert_eq!(
            at("2012-04-23T10:20:30.400+02:30"),
            moment("2012-04-23T07:50:30.4Z")
        );
        assert_eq!(
            at("2012-04-23T10:20:30.400+02"),
            moment("2012-04-23T08:20:30.4Z")
        );
        assert_eq!(
            at("2012-04-23T10:20:30.400-02"),
            moment("2012-04-23T12:20:30.4Z")
        );
        assert_eq!(at("2012-04-23"), moment("2012-04-23T00:00:00Z"));
        assert_eq!(at("2027-01-01 09:15"), moment("2027-01-01T09:15:00Z"));
        // Times of day, with their offsets.
        let daily = |ms_of_day, offset_seconds| ExpireAt::Daily {
            ms_of_day,
            offset_seconds,
        };
        assert_eq!(at("09:15:00"), daily(33_300_000, 0));
        assert_eq!(at("10:10"), daily(36_600_000, 0));
        assert_eq!(at("10:20:30.400"), daily(37_230_400, 0));
        assert_eq!(at("11:05:00-05:30"), daily(39_900_000, -19_800));
        assert_eq!(at("11:05:00-0530"), daily(39_900_000, -19_800));
        assert_eq!(at("11:05:00Z"), daily(39_900_000, 0));
        assert_eq!(at("11:05:00+00"), daily(39_900_000, 0));
        assert_eq!(at("11:05-06"), daily(39_900_000, -21_600));
        assert_eq!(at("11:05+06"), daily(39_900_000, 21_600));
    }

    #[test]
    fn refused() {
        for text in [
            "",
            "tomorrow",
            "25:00",
            "10",
            "10:61",
            "2012-04-56",
            "2012-13-01T00:00",
            "11:05+6",
            "11:05+24",
            "11:05 +06",
            "2012-04-23T09:15:00+99",
        ] {
            assert!(
                ExpireAt::parse(text).is_err(),
                "{text:?}: {:?}",
                ExpireAt::parse(text)
            );
        }
    }

    #[test]
    fn remaining_time() {
        let now = unix_ms("2026-11-28T10:00:00Z");
        let at = |text| ExpireAt::parse(text).unwrap().remaining(now);
        let hours = |h: u64| Some(Duration::from_secs(h * 3600));
        // Every day at midnight UTC: 14 h from 10:00.
        assert_eq!(at("00:00"), hours(14));
        // Midnight at +02:00 is 22:00 UTC: 12 h.
        assert_eq!(at("00:00+02:00"), hours(12));
        // 09:00 has passed today: tomorrow's, 23 h.
        assert_eq!(at("09:00"), hours(23));
        // Exactly now: the next one, a day away (never zero).
        assert_eq!(at("10:00"), hours(24));
        assert_eq!(at("2026-11-28T12:00:00Z"), hours(2));
        assert_eq!(at("2026-11-28T12:00:00+02:00"), None, "10:00 UTC: now");
        assert_eq!(at("2026-11-27"), None, "passed");
        assert_eq!(ExpireAt::from_unix_seconds(0).remaining(now), None);
    }
}
