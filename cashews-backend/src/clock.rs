//! The time source behind every expiry check.
//!
//! The hit path reads the clock once per lookup, so the default clock is a
//! *coarse* monotonic clock (`CLOCK_MONOTONIC_COARSE` on Linux: a few
//! nanoseconds, millisecond-level resolution) rather than `Instant::now()`.
//! Expiry is therefore exact to within the kernel tick (1–4 ms), which is far
//! below any TTL a cache is given.
//!
//! [`Clock::tokio`] follows tokio's clock instead, so tests can use
//! `tokio::time::pause()` and `advance()` and see values expire without
//! sleeping; [`Clock::manual`] moves only when told to, on every thread.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of monotonic and wall-clock time, in milliseconds.
#[derive(Clone)]
pub struct Clock(Kind);

#[derive(Clone)]
enum Kind {
    Coarse,
    Tokio {
        base: tokio::time::Instant,
        base_unix_ms: u64,
    },
    Manual(Arc<Manual>),
}

struct Manual {
    elapsed_ms: AtomicU64,
    base_unix_ms: u64,
}

/// The hand that moves a [`Clock::manual`] clock.
#[derive(Clone)]
pub struct ManualClock(Arc<Manual>);

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed_ms", &self.0.elapsed_ms.load(Ordering::Relaxed))
            .finish()
    }
}

impl ManualClock {
    /// Moves the clock forward by `duration` (whole milliseconds), for every
    /// thread reading it.
    pub fn advance(&self, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.0.elapsed_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Coarse => f.write_str("Clock::system"),
            Kind::Tokio { .. } => f.write_str("Clock::tokio"),
            Kind::Manual(_) => f.write_str("Clock::manual"),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The default: the operating system's coarse monotonic clock.
    pub fn system() -> Clock {
        Clock(Kind::Coarse)
    }

    /// tokio's clock: honours `tokio::time::pause()` / `advance()` (with tokio's
    /// `test-util` feature), for deterministic tests of expiry.
    pub fn tokio() -> Clock {
        Clock(Kind::Tokio {
            base: tokio::time::Instant::now(),
            base_unix_ms: system_unix_ms(),
        })
    }

    /// A clock that moves only when told to ([`ManualClock::advance`]), on
    /// every thread: for tests of expiry on backends whose work runs outside
    /// tokio (the disk backend's shard threads). Its [`Clock::sleep`] is
    /// tokio's.
    pub fn manual() -> (Clock, ManualClock) {
        let manual = Arc::new(Manual {
            elapsed_ms: AtomicU64::new(0),
            base_unix_ms: system_unix_ms(),
        });
        (Clock(Kind::Manual(manual.clone())), ManualClock(manual))
    }

    /// Milliseconds on a monotonic scale with an arbitrary origin; only
    /// differences are meaningful. Used for local expiry.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Kind::Coarse => coarse_monotonic_ms(),
            Kind::Tokio { base, .. } => 1 + base.elapsed().as_millis() as u64,
            Kind::Manual(m) => 1 + m.elapsed_ms.load(Ordering::Relaxed),
        }
    }

    /// Milliseconds since the Unix epoch. Used for timestamps stored in a
    /// shared backend, which other processes compare with their own clocks.
    pub fn unix_ms(&self) -> u64 {
        match &self.0 {
            Kind::Coarse => system_unix_ms(),
            Kind::Tokio { base, base_unix_ms } => base_unix_ms + base.elapsed().as_millis() as u64,
            Kind::Manual(m) => m.base_unix_ms + m.elapsed_ms.load(Ordering::Relaxed),
        }
    }

    /// Sleeps on the matching timer (tokio's, which pauses with this clock).
    pub async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

fn system_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[inline]
fn coarse_monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists
    // on every Linux since 2.6.32 and the call cannot fail with a valid pointer.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts);
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(not(target_os = "linux"))]
#[inline]
fn coarse_monotonic_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static BASE: OnceLock<Instant> = OnceLock::new();
    1 + BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic() {
        let c = Clock::system();
        let a = c.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        let b = c.now_ms();
        assert!(b >= a + 10, "{a} -> {b}");
        assert!(c.unix_ms() > 1_600_000_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = Clock::tokio();
        let (m, u) = (c.now_ms(), c.unix_ms());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now_ms() - m, 90_000);
        assert_eq!(c.unix_ms() - u, 90_000);
    }
}
