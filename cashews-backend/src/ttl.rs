//! Expiry times: [`Ttl`] and the forms accepted for it.
//!
//! Accepted everywhere a TTL is taken ([`IntoTtl`]):
//! - integers: whole seconds (`30`, `3600u64`);
//! - floats: seconds (`1.5`);
//! - [`Duration`];
//! - strings: `"90"` (seconds), `"90s"`, `"1d2h3m50s"`, `"1.5h"`, `"250ms"`, and phrases
//!   such as `"2 hours 5min"` or `"1 week"`. Units: `ms`, `s`/`sec`/`second(s)`,
//!   `m`/`min`/`minute(s)`, `h`/`hr`/`hour(s)`, `d`/`day(s)`, `w`/`week(s)`;
//!   clock forms (`"15:30"`, `"10:15:30"`, `"4 10:15:30"`) and ISO 8601
//!   durations (`"PT5M"`, `"P1DT2H"`);
//! - [`Ttl::FOREVER`] (or `None`) for no expiry.
//!
//! A zero, negative or unparsable TTL is an [`Error::Ttl`] quoting the input: a
//! zero TTL never silently means "forever".
//!
//! Absolute expiry ([`IntoExpireAt`]): a time of day that recurs (`"00:00"`,
//! `"06:00+02:00"`), a date, an ISO 8601 datetime, a [`SystemTime`], or an
//! [`ExpireAt`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

// The grammar the macros check TTL literals with at compile time.
use cashews_ttl as grammar;
pub use cashews_ttl::ExpireAt;

/// How long a value lives: a positive [`Duration`] or [`Ttl::FOREVER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ttl(Option<Duration>);

impl Ttl {
    /// No expiry: the value lives until it is deleted or evicted.
    pub const FOREVER: Ttl = Ttl(None);

    /// A TTL of `duration`; zero is rejected.
    pub fn new(duration: Duration) -> Result<Ttl> {
        if duration.is_zero() {
            return Err(Error::Ttl {
                input: display(duration).to_string(),
                reason: "a ttl must be greater than zero (use Ttl::FOREVER for no expiry)",
            });
        }
        // Backends count milliseconds in an i64.
        if duration.as_millis() > i64::MAX as u128 {
            return Err(Error::Ttl {
                input: display(duration).to_string(),
                reason: "ttl is too large",
            });
        }
        Ok(Ttl(Some(duration)))
    }

    /// A TTL of whole seconds; zero is rejected.
    pub fn from_secs(secs: u64) -> Result<Ttl> {
        Ttl::new(Duration::from_secs(secs))
    }

    /// Parses the string forms described in the [module docs](self).
    pub fn parse(input: &str) -> Result<Ttl> {
        let duration = parse_duration(input)?;
        Ttl::new(duration).map_err(|e| match e {
            Error::Ttl { reason, .. } => Error::Ttl {
                input: input.to_owned(),
                reason,
            },
            other => other,
        })
    }

    /// A TTL of `nanos` nanoseconds, already checked to be positive and in
    /// range (by the `#[cache]` macro at compile time).
    #[doc(hidden)]
    pub const fn from_nanos_checked(nanos: u64) -> Ttl {
        Ttl(Some(Duration::from_nanos(nanos)))
    }

    /// The duration, or `None` for [`Ttl::FOREVER`].
    pub fn duration(self) -> Option<Duration> {
        self.0
    }

    /// Whether this is [`Ttl::FOREVER`].
    pub fn is_forever(self) -> bool {
        self.0.is_none()
    }
}

impl From<Ttl> for Option<Duration> {
    fn from(ttl: Ttl) -> Self {
        ttl.0
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("forever"),
            Some(d) => write!(f, "{}", display(d)),
        }
    }
}

impl FromStr for Ttl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Ttl> {
        Ttl::parse(s)
    }
}

/// Anything that can be turned into a [`Ttl`]: see the [module docs](self).
pub trait IntoTtl {
    /// Converts, or explains why the input is not a valid TTL.
    fn into_ttl(self) -> Result<Ttl>;

    /// A wait or pause (zero allowed, unlike a TTL; never "forever").
    fn into_wait(self) -> Result<Duration>
    where
        Self: Sized,
    {
        finite(self, "wait")
    }
}

impl IntoTtl for Ttl {
    fn into_ttl(self) -> Result<Ttl> {
        Ok(self)
    }
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::new(self)
    }
    fn into_wait(self) -> Result<Duration> {
        Ok(self)
    }
}

impl IntoTtl for &str {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::parse(self)
    }
    fn into_wait(self) -> Result<Duration> {
        parse_duration(self)
    }
}

impl IntoTtl for String {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::parse(&self)
    }
    fn into_wait(self) -> Result<Duration> {
        parse_duration(&self)
    }
}

impl IntoTtl for &String {
    fn into_ttl(self) -> Result<Ttl> {
        Ttl::parse(self)
    }
    fn into_wait(self) -> Result<Duration> {
        parse_duration(self)
    }
}

impl<T: IntoTtl> IntoTtl for Option<T> {
    fn into_ttl(self) -> Result<Ttl> {
        self.map_or(Ok(Ttl::FOREVER), IntoTtl::into_ttl)
    }
}

/// What a TTL function of a result returns (`#[cache(ttl = ttl_for)]`):
/// a TTL in any form, or an `Option` of one where `None` means "do not
/// store this result" (unlike [`IntoTtl`], where `None` is no expiry).
pub trait ResultTtl {
    /// `Ok(None)`: do not store.
    fn result_ttl(self) -> Result<Option<Ttl>>;
}

impl<T: IntoTtl> ResultTtl for Option<T> {
    fn result_ttl(self) -> Result<Option<Ttl>> {
        self.map(IntoTtl::into_ttl).transpose()
    }
}

macro_rules! result_ttl_of_ttl_forms {
    ($($t:ty),*) => {$(
        impl ResultTtl for $t {
            fn result_ttl(self) -> Result<Option<Ttl>> {
                self.into_ttl().map(Some)
            }
        }
    )*};
}
result_ttl_of_ttl_forms!(Ttl, Duration, &str, String, &String, u16, u32, u64, usize, i32, i64, f64);

/// Anything that names when a value expires in absolute terms; see the
/// [module docs](self).
pub trait IntoExpireAt {
    /// Converts, or explains why the input is not an expiry.
    fn into_expire_at(self) -> Result<ExpireAt>;
}

impl IntoExpireAt for ExpireAt {
    fn into_expire_at(self) -> Result<ExpireAt> {
        Ok(self)
    }
}

impl IntoExpireAt for &str {
    fn into_expire_at(self) -> Result<ExpireAt> {
        ExpireAt::parse(self).map_err(|reason| Error::Ttl {
            input: self.to_owned(),
            reason,
        })
    }
}

impl IntoExpireAt for String {
    fn into_expire_at(self) -> Result<ExpireAt> {
        self.as_str().into_expire_at()
    }
}

impl IntoExpireAt for &String {
    fn into_expire_at(self) -> Result<ExpireAt> {
        self.as_str().into_expire_at()
    }
}

impl IntoExpireAt for SystemTime {
    fn into_expire_at(self) -> Result<ExpireAt> {
        let ms = match self.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Ok(ExpireAt::Moment(ms))
    }
}

/// The TTL that makes a value expire at `at`, seen at `now_unix_ms`;
/// `Ok(None)` once that moment has passed.
pub fn ttl_until(at: impl IntoExpireAt, now_unix_ms: u64) -> Result<Option<Ttl>> {
    Ok(at
        .into_expire_at()?
        .remaining(now_unix_ms)
        .and_then(|left| Ttl::new(left).ok()))
}

macro_rules! unsigned_seconds {
    ($($t:ty),*) => {$(
        impl IntoTtl for $t {
            fn into_ttl(self) -> Result<Ttl> {
                Ttl::from_secs(self as u64).map_err(|e| match e {
                    Error::Ttl { reason, .. } => Error::Ttl { input: self.to_string(), reason },
                    other => other,
                })
            }
            fn into_wait(self) -> Result<Duration> {
                Ok(Duration::from_secs(self as u64))
            }
        }
    )*};
}
unsigned_seconds!(u16, u32, u64, usize);

macro_rules! signed_seconds {
    ($($t:ty),*) => {$(
        impl IntoTtl for $t {
            fn into_ttl(self) -> Result<Ttl> {
                if self <= 0 {
                    return Err(Error::Ttl {
                        input: self.to_string(),
                        reason: "a ttl must be greater than zero (use Ttl::FOREVER for no expiry)",
                    });
                }
                Ttl::from_secs(self as u64)
            }
        }
    )*};
}
signed_seconds!(i32, i64);

impl IntoTtl for f64 {
    fn into_ttl(self) -> Result<Ttl> {
        let reject = |reason| Error::Ttl {
            input: self.to_string(),
            reason,
        };
        if self.is_nan() || self <= 0.0 {
            return Err(reject("a ttl must be a positive number of seconds"));
        }
        let d = Duration::try_from_secs_f64(self).map_err(|_| reject("ttl is too large"))?;
        Ttl::new(d).map_err(|_| reject("a ttl must be at least one nanosecond"))
    }
}

/// A finite, positive duration from any TTL form, for settings that are
/// not a value's life (waits, periods, timeouts): `"300ms"`, `90`, a
/// [`Duration`]. `what` names the setting in the error.
pub fn finite(value: impl IntoTtl, what: &str) -> Result<Duration> {
    value.into_ttl()?.duration().ok_or_else(|| Error::Ttl {
        input: format!("{what} = forever"),
        reason: "this setting needs a finite duration",
    })
}

/// `duration` as people write it (`1h 30m`, `250ms`), for messages.
pub fn display(duration: Duration) -> impl fmt::Display {
    humantime::format_duration(duration)
}

/// Parses `"1d2h3m50s"`, `"1.5h"`, `"90"`, `"2 hours 5min"` into a [`Duration`]
/// (zero allowed here; [`Ttl::parse`] rejects it).
pub fn parse_duration(input: &str) -> Result<Duration> {
    grammar::parse(input).map_err(|reason| Error::Ttl {
        input: input.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> f64 {
        Ttl::parse(s).unwrap().duration().unwrap().as_secs_f64()
    }

    #[test]
    fn displays_as_people_write_it() {
        assert_eq!(Ttl::parse("1h30m").unwrap().to_string(), "1h 30m");
        assert_eq!(Ttl::parse("250ms").unwrap().to_string(), "250ms");
        assert_eq!(Ttl::FOREVER.to_string(), "forever");
        let zero = Ttl::new(Duration::ZERO).unwrap_err().to_string();
        assert!(zero.contains("\"0s\""), "{zero}");
    }

    #[test]
    fn compact_forms() {
        assert_eq!(secs("1d2h3m50s"), 93_830.0);
        assert_eq!(secs("90s"), 90.0);
        assert_eq!(secs("80"), 80.0);
        assert_eq!(secs("1.5h"), 5_400.0);
        assert_eq!(secs(" 2H "), 7_200.0);
        assert_eq!(secs("250ms"), 0.25);
        assert_eq!(secs("1w"), 604_800.0);
    }

    #[test]
    fn phrases() {
        assert_eq!(secs("2 hours 5min"), 7_500.0);
        assert_eq!(secs("1 day, 3 hours"), 97_200.0);
        assert_eq!(secs("10 seconds"), 10.0);
    }

    #[test]
    fn rejected_inputs_quote_the_input() {
        for bad in [
            "",
            "  ",
            "-5s",
            "1m10",
            "abc",
            "5 fortnights",
            "1..5h",
            "0",
            "0s",
            "h",
        ] {
            match Ttl::parse(bad) {
                Err(Error::Ttl { input, .. }) => assert_eq!(input, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let msg = Ttl::parse("5 fortnights").unwrap_err().to_string();
        assert!(
            msg.contains("5 fortnights") && msg.contains("unknown unit"),
            "{msg}"
        );
    }

    #[test]
    fn numeric_and_duration_inputs() {
        assert_eq!(
            30.into_ttl().unwrap().duration(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            1.5f64.into_ttl().unwrap().duration(),
            Some(Duration::from_millis(1500))
        );
        assert!(0.into_ttl().is_err());
        assert!((-3i64).into_ttl().is_err());
        assert!(f64::NAN.into_ttl().is_err());
        assert!(f64::INFINITY.into_ttl().is_err());
        assert!(Duration::ZERO.into_ttl().is_err());
        assert_eq!(None::<u64>.into_ttl().unwrap(), Ttl::FOREVER);
        assert!(u64::MAX.to_string().as_str().into_ttl().is_err());
        assert!(u64::MAX.into_ttl().is_err());
        assert!("9999999999999999999999d".into_ttl().is_err());
    }
}
