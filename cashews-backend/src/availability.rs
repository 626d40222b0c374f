//! Deadlines and outage handling shared by the network backends.
//!
//! Every command of a remote backend runs within `response_timeout`
//! (connecting included). After a command missed its deadline or the server
//! refused the connection, the server is taken to be down (hung or killed)
//! for one `response_timeout`: commands fail at once instead of each waiting
//! for it again; `ping` always asks. With `suppress`, a transient failure of
//! a command that has a neutral answer (a miss, "not stored") gives that
//! answer instead of the error, logged and counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::command::Command;
use crate::error::{Error, Result};
use crate::url::Params;

/// The parameters every network backend takes: `suppress`,
/// `connect_timeout` and `response_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkParams {
    /// Turns transient failures of commands with a neutral answer into
    /// that answer (default `true`).
    pub suppress: bool,
    /// How long a connection attempt may take (default `1s`).
    pub connect_timeout: Duration,
    /// The deadline of every command (default `1s`).
    pub response_timeout: Duration,
}

impl Default for NetworkParams {
    fn default() -> Self {
        NetworkParams {
            suppress: true,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
        }
    }
}

impl NetworkParams {
    /// Takes the three parameters from a setup URL (defaults for those not
    /// given; a zero timeout is an error).
    pub fn take(params: &mut Params<'_>) -> Result<NetworkParams> {
        let defaults = NetworkParams::default();
        Ok(NetworkParams {
            suppress: params.bool("suppress")?.unwrap_or(defaults.suppress),
            connect_timeout: params
                .positive_duration("connect_timeout")?
                .unwrap_or(defaults.connect_timeout),
            response_timeout: params
                .positive_duration("response_timeout")?
                .unwrap_or(defaults.response_timeout),
        })
    }
}

/// The deadline and down/suppress state of one remote backend.
#[derive(Debug)]
pub struct Availability {
    backend: &'static str,
    suppress: bool,
    response_timeout: Duration,
    /// When this was made: the origin of `down_until`.
    started: Instant,
    /// Milliseconds after `started` until which commands fail at once; 0
    /// when up.
    down_until: AtomicU64,
    suppressed: AtomicU64,
}

impl Availability {
    /// The state of `backend` (its name in errors and logs).
    pub fn new(backend: &'static str, suppress: bool, response_timeout: Duration) -> Availability {
        Availability {
            backend,
            suppress,
            response_timeout,
            started: Instant::now(),
            down_until: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// The deadline of every command.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// When a command starting now must have ended.
    #[inline]
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.response_timeout
    }

    /// How many failures were answered with a neutral answer.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// Takes the server to be down for the next `response_timeout` (call it
    /// when it refused a connection).
    pub fn mark_down(&self) {
        let until = self.millis(Instant::now() + self.response_timeout);
        self.down_until.store(until.max(1), Ordering::Relaxed);
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Runs `call` by `deadline`; a command with no neutral answer (a
    /// counter, a window, a lock, bits): its failure is its error.
    ///
    /// A plain future rather than an `async fn`: the command's future is
    /// held once, not copied into each layer's state (commands run through
    /// here on every call).
    pub fn run_strict_by<T, F>(&self, deadline: Instant, command: Command, call: F) -> Strict<'_, F>
    where
        F: Future<Output = Result<T>>,
    {
        let down_until = self.down_until.load(Ordering::Relaxed);
        let refused = (down_until != 0
            && command != Command::Ping
            && self.millis(Instant::now()) < down_until)
            .then(|| {
                Error::backend(
                    self.backend,
                    true,
                    format!(
                        "{command} not sent: {} was unreachable within the last response_timeout ({}); retrying after it",
                        self.backend,
                        crate::ttl::display(self.response_timeout)
                    ),
                )
            });
        Strict {
            availability: self,
            command,
            refused,
            call: tokio::time::timeout_at(deadline, call),
        }
    }

    /// The error of a command that missed its deadline (the server is then
    /// taken to be down).
    fn timed_out(&self, command: Command) -> Error {
        self.mark_down();
        Error::backend(
            self.backend,
            true,
            format!(
                "{command} got no answer within response_timeout ({})",
                crate::ttl::display(self.response_timeout)
            ),
        )
    }

    /// [`Availability::run_strict_by`] with a deadline from now.
    pub fn run_strict<T, F>(&self, command: Command, call: F) -> Strict<'_, F>
    where
        F: Future<Output = Result<T>>,
    {
        self.run_strict_by(self.deadline(), command, call)
    }

    /// Runs `call` by `deadline`; with `suppress`, a transient failure
    /// answers `fallback()` (a miss, "not stored"), logged and counted.
    pub fn run_by<T, F, B>(
        &self,
        deadline: Instant,
        command: Command,
        fallback: B,
        call: F,
    ) -> Lenient<'_, F, B>
    where
        F: Future<Output = Result<T>>,
        B: FnOnce() -> T,
    {
        Lenient {
            fallback: Some(fallback),
            strict: self.run_strict_by(deadline, command, call),
        }
    }

    /// The answer of a command run by [`Availability::run_by`].
    fn lenient<T>(
        &self,
        command: Command,
        result: Result<T>,
        fallback: impl FnOnce() -> T,
    ) -> Result<T> {
        match result {
            Err(error) if self.suppress && error.is_transient() && command != Command::Ping => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    backend = self.backend,
                    command = command.name(),
                    %error,
                    "backend unavailable; treated as a miss"
                );
                Ok(fallback())
            }
            other => other,
        }
    }

    /// [`Availability::run_by`] with a deadline from now.
    pub fn run<T, F, B>(&self, command: Command, fallback: B, call: F) -> Lenient<'_, F, B>
    where
        F: Future<Output = Result<T>>,
        B: FnOnce() -> T,
    {
        self.run_by(self.deadline(), command, fallback, call)
    }
}

pin_project_lite::pin_project! {
    /// A command run by [`Availability::run_strict_by`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Strict<'a, F> {
        availability: &'a Availability,
        command: Command,
        // Set when the server is taken to be down: the answer, at once.
        refused: Option<Error>,
        #[pin]
        call: tokio::time::Timeout<F>,
    }
}

impl<T, F: Future<Output = Result<T>>> Future for Strict<'_, F> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.project();
        if let Some(refused) = this.refused.take() {
            return Poll::Ready(Err(refused));
        }
        match this.call.poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(_elapsed)) => {
                Poll::Ready(Err(this.availability.timed_out(*this.command)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// A command run by [`Availability::run_by`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Lenient<'a, F, B> {
        fallback: Option<B>,
        #[pin]
        strict: Strict<'a, F>,
    }
}

impl<T, F, B> Future for Lenient<'_, F, B>
where
    F: Future<Output = Result<T>>,
    B: FnOnce() -> T,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut this = self.project();
        let result = std::task::ready!(this.strict.as_mut().poll(cx));
        let strict = this.strict.project();
        let fallback = this.fallback.take().expect("polled after completion");
        Poll::Ready(
            strict
                .availability
                .lenient(*strict.command, result, fallback),
        )
    }
}
