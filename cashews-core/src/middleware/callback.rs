//! Calling a function after chosen commands.

use std::fmt;
use std::sync::Arc;

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
        let command = request.command();
        if !self.commands.contains(command) {
            return next.run(request);
        }
        let key = request.key().map(str::to_owned);
        Box::pin(async move {
            let result = next.run(request).await;
            (self.function)(&Event {
                command,
                key: key.as_deref(),
                backend: next.backend_name(),
                result: &result,
            });
            result
        })
    }
}
