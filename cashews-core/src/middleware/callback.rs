//! Calling a function after chosen commands.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Middleware, Next, Request, Response};
use crate::backend::BoxFuture;
use crate::command::{Command, CommandSet};
use crate::error::Result;

/// What a [`Callback`] is told after a command ran.
#[derive(Debug)]
#[non_exhaustive]
pub struct Event<'e> {
    /// The command.
    pub command: Command,
    /// Its (first) key or pattern, if it has one.
    pub key: Option<&'e str>,
    /// The backend's name.
    pub backend: &'static str,
    /// What the command returned.
    pub result: &'e Result<Response>,
    /// How long the rest of the chain and the backend took.
    pub elapsed: Duration,
}

impl Event<'_> {
    /// For reads (`get`, `get_raw`, `get_many`): how many keys were found
    /// and how many were not. `None` for other commands and for errors.
    pub fn hits_and_misses(&self) -> Option<(u64, u64)> {
        match self.result {
            Ok(Response::Value(value)) => Some(if value.is_some() { (1, 0) } else { (0, 1) }),
            Ok(Response::Values(values)) => {
                let hits = values.iter().filter(|v| v.is_some()).count() as u64;
                Some((hits, values.len() as u64 - hits))
            }
            _ => None,
        }
    }
}

/// A middleware that calls a function after each of the chosen commands.
///
/// ```
/// use cashews_core::{Cache, Command, middleware::Callback};
/// use std::sync::{Arc, Mutex};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// let written = Arc::new(Mutex::new(Vec::new()));
/// let log = written.clone();
/// let id = cache.add_middleware(Callback::new(Command::Set, move |event| {
///     log.lock().unwrap().push(event.key.unwrap_or_default().to_owned());
/// }));
/// cache.set("greeting", &"hi").await?;
/// cache.remove_middleware(id);
/// cache.set("other", &"ignored").await?;
/// assert_eq!(*written.lock().unwrap(), ["greeting"]);
/// # Ok(()) }
/// ```
pub struct Callback {
    commands: CommandSet,
    function: Arc<dyn Fn(&Event<'_>) + Send + Sync>,
}

impl Callback {
    /// Calls `function` after every command in `commands`.
    pub fn new(
        commands: impl Into<CommandSet>,
        function: impl Fn(&Event<'_>) + Send + Sync + 'static,
    ) -> Callback {
        Callback {
            commands: commands.into(),
            function: Arc::new(function),
        }
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("commands", &self.commands)
            .finish_non_exhaustive()
    }
}

impl Middleware for Callback {
    fn call<'a>(&'a self, request: Request<'a>, next: Next<'a>) -> BoxFuture<'a, Result<Response>> {
        if !self.commands.contains(request.command()) {
            return next.run(request);
        }
        Box::pin(observe(request, next, |event| (self.function)(event)))
    }
}

/// Runs the rest of the chain and calls `done` with what happened: the one
/// measurement behind callbacks, tracing and metrics.
pub(super) fn observe<'a>(
    request: Request<'a>,
    next: Next<'a>,
    done: impl FnOnce(&Event<'_>) + Send + 'a,
) -> impl Future<Output = Result<Response>> + Send + 'a {
    let command = request.command();
    let key = request.key().map(str::to_owned);
    async move {
        let started = Instant::now();
        let result = next.run(request).await;
        done(&Event {
            command,
            key: key.as_deref(),
            backend: next.backend_name(),
            result: &result,
            elapsed: started.elapsed(),
        });
        result
    }
}
