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
use std::sync::atomic::{AtomicU64, Ordering};
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
    pub async fn run_strict_by<T>(
        &self,
        deadline: Instant,
        command: Command,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let down_until = self.down_until.load(Ordering::Relaxed);
        if down_until != 0 && command != Command::Ping && self.millis(Instant::now()) < down_until {
            return Err(Error::backend(
                self.backend,
                true,
                format!(
                    "{command} not sent: {} was unreachable within the last response_timeout ({}); retrying after it",
                    self.backend,
                    crate::ttl::display(self.response_timeout)
                ),
            ));
        }
        match tokio::time::timeout_at(deadline, call).await {
            Ok(result) => result,
            Err(_) => {
                self.mark_down();
                Err(Error::backend(
                    self.backend,
                    true,
                    format!(
                        "{command} got no answer within response_timeout ({})",
                        crate::ttl::display(self.response_timeout)
                    ),
                ))
            }
        }
    }

    /// [`Availability::run_strict_by`] with a deadline from now.
    pub async fn run_strict<T>(
        &self,
        command: Command,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.run_strict_by(self.deadline(), command, call).await
    }

    /// Runs `call` by `deadline`; with `suppress`, a transient failure
    /// answers `fallback()` (a miss, "not stored"), logged and counted.
    pub async fn run_by<T>(
        &self,
        deadline: Instant,
        command: Command,
        fallback: impl FnOnce() -> T,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.run_strict_by(deadline, command, call).await {
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
    pub async fn run<T>(
        &self,
        command: Command,
        fallback: impl FnOnce() -> T,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.run_by(self.deadline(), command, fallback, call).await
    }
}
