//! Jitter for pauses between attempts (lock backoff, retries), so callers
//! that failed together do not try again together: a small xorshift
//! generator, seeded from the OS.

use std::time::Duration;

/// A xorshift generator of pause jitter.
pub(crate) struct Jitter(u64);

impl Jitter {
    /// Seeded from the hex `token` (a random token the caller already has).
    pub(crate) fn from_token(token: &str) -> Jitter {
        let seed =
            u64::from_str_radix(token.get(..16).unwrap_or(""), 16).unwrap_or(0x9E37_79B9_7F4A_7C15);
        Jitter(seed | 1)
    }

    /// Seeded from a fresh random token.
    pub(crate) fn new() -> Jitter {
        Jitter::from_token(&crate::layout::random_token())
    }

    /// A duration between zero and `max` (microsecond steps).
    pub(crate) fn up_to(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let max = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.0 % max.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_bounds_and_not_constant() {
        let mut jitter = Jitter::new();
        let max = Duration::from_millis(100);
        let draws: Vec<Duration> = (0..1000).map(|_| jitter.up_to(max)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        assert!(draws.iter().any(|d| *d != draws[0]));
        assert_eq!(jitter.up_to(Duration::ZERO), Duration::ZERO);
    }
}
