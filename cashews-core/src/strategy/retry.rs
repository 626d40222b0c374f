//! Retries of a failing call, before its result is cached or returned
//! (`#[cache(retry = 3, backoff = "200ms")]`).

use std::future::Future;
use std::time::Duration;

use crate::jitter::Jitter;

/// How a failing call is retried: up to `retries` more times, pausing
/// `backoff`, then twice that, and so on up to `max_backoff`, each pause
/// with jitter (between half and all of it), so callers that failed
/// together do not retry together.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cashews_core::strategy::Retry;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let calls = AtomicU32::new(0);
/// let answer = Retry::new(3, std::time::Duration::from_millis(1))
///     .run(|| async {
///         match calls.fetch_add(1, Ordering::SeqCst) {
///             0 | 1 => Err("flaky"),
///             n => Ok(n),
///         }
///     })
///     .await;
/// assert_eq!(answer, Ok(2));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
}

/// The longest pause between two attempts unless told otherwise.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Retry {
    /// Up to `retries` retries after the first attempt, the first pause
    /// `backoff` (doubling, at most [`DEFAULT_MAX_BACKOFF`]).
    pub fn new(retries: u32, backoff: Duration) -> Retry {
        Retry {
            retries,
            backoff,
            max_backoff: DEFAULT_MAX_BACKOFF.max(backoff),
        }
    }

    /// The longest pause between two attempts.
    pub fn max_backoff(mut self, max: Duration) -> Retry {
        self.max_backoff = max.max(self.backoff);
        self
    }

    /// The pause before retry `n` (0-based) without jitter.
    fn pause(&self, n: u32) -> Duration {
        self.backoff
            .saturating_mul(2u32.saturating_pow(n))
            .min(self.max_backoff)
    }

    /// Runs `attempt` until it succeeds or the retries are spent; the last
    /// output either way.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut jitter = Jitter::new();
        let mut n = 0;
        loop {
            let output = attempt().await;
            if output.is_ok() || n >= self.retries {
                return output;
            }
            let pause = self.pause(n);
            tokio::time::sleep(pause / 2 + jitter.up_to(pause / 2)).await;
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn pauses_double_up_to_the_cap() {
        let retry = Retry::new(10, Duration::from_millis(200)).max_backoff(Duration::from_secs(1));
        let pauses: Vec<u64> = (0..5).map(|n| retry.pause(n).as_millis() as u64).collect();
        assert_eq!(pauses, [200, 400, 800, 1000, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_or_spent() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out: Result<u32, &str> = Retry::new(3, Duration::from_millis(200))
            .run(|| async {
                Err::<u32, _>(["a", "b", "c", "d"][calls.fetch_add(1, Ordering::SeqCst) as usize])
            })
            .await;
        // One attempt and three retries; the last error is returned.
        assert_eq!((out, calls.load(Ordering::SeqCst)), (Err("d"), 4));
        // Pauses of 200, 400, 800 ms, each between half and all of it.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(700) && waited <= Duration::from_millis(1400),
            "{waited:?}"
        );
        // A success stops at once.
        let calls = AtomicU32::new(0);
        let out: Result<u32, &str> = Retry::new(3, Duration::from_millis(200))
            .run(|| async { Ok::<_, &str>(calls.fetch_add(1, Ordering::SeqCst)) })
            .await;
        assert_eq!((out, calls.load(Ordering::SeqCst)), (Ok(0), 1));
    }
}
