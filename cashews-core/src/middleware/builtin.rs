//! The middlewares that come with the library.

use std::sync::Arc;

use futures_util::StreamExt;
use tracing::Instrument;

use super::callback::observe;
use super::{Event, Middleware, Next, Request, Response};
use crate::backend::BoxFuture;
use crate::command::Command;
use crate::error::Result;

/// Puts `prefix` in front of every key and pattern, and takes it off the
/// keys `scan` and `get_match` return, so code sees its own keys while the
/// backend keeps them apart (for example a version, to start a deploy with
/// a cold cache: `AddPrefix::new("v2:")`). Glob characters in the prefix are
/// matched literally.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::{middleware::AddPrefix, Cache};
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// let id = cache.add_middleware(AddPrefix::new("v2:"));
/// cache.set("k", &1).await?;
/// cache.remove_middleware(id);
/// assert_eq!(cache.get::<i32>("v2:k").await?, Some(1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AddPrefix {
    prefix: Arc<str>,
    pattern: Arc<str>,
}

impl AddPrefix {
    /// Prefixes every key with `prefix`.
    pub fn new(prefix: &str) -> AddPrefix {
        AddPrefix {
            prefix: prefix.into(),
            pattern: crate::glob::escape(prefix).into(),
        }
    }
}

impl Middleware for AddPrefix {
    fn call<'a>(
        &'a self,
        mut request: Request<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Response>> {
        let command = request.command();
        let prefix = match command {
            Command::DeleteMatch | Command::Scan | Command::GetMatch => &*self.pattern,
            _ => &*self.prefix,
        };
        for key in request.keys_mut() {
            *key = format!("{prefix}{key}").into();
        }
        if !matches!(command, Command::Scan | Command::GetMatch) {
            return next.run(request);
        }
        let strip = self.prefix.clone();
        Box::pin(async move {
            Ok(match next.run(request).await? {
                Response::Keys(keys) => Response::Keys(Box::pin(keys.map(move |key| {
                    key.map(|k| k.strip_prefix(&*strip).map(str::to_owned).unwrap_or(k))
                }))),
                Response::Entries(entries) => {
                    Response::Entries(Box::pin(entries.map(move |entry| {
                        entry.map(|(k, v)| {
                            (k.strip_prefix(&*strip).map(str::to_owned).unwrap_or(k), v)
                        })
                    })))
                }
                other => other,
            })
        })
    }
}

/// Skips writes of values smaller than `min` or larger than `max` bytes
/// (as stored: envelope included): `set` answers `false` and stores
/// nothing, `set_many` stores the others. Keeps huge values from crowding
/// a memory cache out, or tiny ones from costing a round trip.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::{middleware::MemoryLimit, Cache};
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// cache.add_middleware(MemoryLimit::new(0, 64));
/// assert!(cache.set("small", &"x").await?);
/// assert!(!cache.set("large", &"x".repeat(100)).await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimit {
    min: usize,
    max: usize,
}

impl MemoryLimit {
    /// Stores only values of `min..=max` bytes.
    pub fn new(min: usize, max: usize) -> MemoryLimit {
        MemoryLimit { min, max }
    }

    fn fits(&self, len: usize) -> bool {
        (self.min..=self.max).contains(&len)
    }
}

impl Middleware for MemoryLimit {
    fn call<'a>(
        &'a self,
        mut request: Request<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Response>> {
        let size = match &request {
            Request::Set { value, .. } | Request::SetRaw { value, .. } => Some(value.len()),
            _ => None,
        };
        if let Some(size) = size.filter(|size| !self.fits(*size)) {
            tracing::debug!(
                key = request.key(),
                size,
                "value outside the memory limit; not stored"
            );
            return Box::pin(std::future::ready(Ok(Response::Bool(false))));
        }
        if let Request::SetMany { pairs, .. } = &mut request {
            pairs.retain(|(_, value)| self.fits(value.len()));
        }
        next.run(request)
    }
}

/// Runs every command in a `debug` span named `cashews` (fields `command`,
/// `key`, `backend`) and emits a `debug` event when it completes, with the
/// latency in microseconds and, for reads, `hits` and `misses`; failures are
/// emitted at `warn` with the error.
///
/// Install it when a subscriber listens at `debug` for target `cashews`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tracing;

impl Middleware for Tracing {
    fn call<'a>(&'a self, request: Request<'a>, next: Next<'a>) -> BoxFuture<'a, Result<Response>> {
        let span = tracing::debug_span!(
            target: "cashews",
            "cashews",
            command = request.command().name(),
            key = request.key(),
            backend = next.backend_name(),
        );
        Box::pin(observe(request, next, log_event).instrument(span))
    }
}

fn log_event(event: &Event<'_>) {
    let micros = event.elapsed.as_micros() as u64;
    match (event.result, event.hits_and_misses()) {
        (Err(error), _) => tracing::warn!(
            target: "cashews",
            command = event.command.name(),
            key = event.key,
            backend = event.backend,
            micros,
            %error,
            "cache command failed"
        ),
        (Ok(_), Some((hits, misses))) => tracing::debug!(
            target: "cashews",
            command = event.command.name(),
            key = event.key,
            backend = event.backend,
            micros,
            hits,
            misses,
            "cache command"
        ),
        (Ok(_), None) => tracing::debug!(
            target: "cashews",
            command = event.command.name(),
            key = event.key,
            backend = event.backend,
            micros,
            "cache command"
        ),
    }
}

/// Records every command in the [`metrics`](https://docs.rs/metrics) facade:
/// the histogram `cashews_operations_latency_seconds{operation, backend}`
/// and, for reads, the counter `cashews_get_operation_total{result = "hit" |
/// "miss", backend}` (one per key). Install a recorder (for example
/// `metrics-exporter-prometheus`) to collect them.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics;

#[cfg(feature = "metrics")]
impl Middleware for Metrics {
    fn call<'a>(&'a self, request: Request<'a>, next: Next<'a>) -> BoxFuture<'a, Result<Response>> {
        Box::pin(observe(request, next, |event| {
            metrics::histogram!(
                "cashews_operations_latency_seconds",
                "operation" => event.command.name(),
                "backend" => event.backend,
            )
            .record(event.elapsed.as_secs_f64());
            if let Some((hits, misses)) = event.hits_and_misses() {
                for (result, count) in [("hit", hits), ("miss", misses)] {
                    if count > 0 {
                        metrics::counter!(
                            "cashews_get_operation_total",
                            "result" => result,
                            "backend" => event.backend,
                        )
                        .increment(count);
                    }
                }
            }
        }))
    }
}
