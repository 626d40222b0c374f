//! The middleware chain every command passes through.
//!
//! A middleware sees each command as a [`Request`], may change it, answer it
//! itself, or pass it on with [`Next::run`], and sees the [`Response`].
//! Middlewares run in the order they were added: the first added is the
//! outermost, so it sees the request first and the response last (as tower's
//! `ServiceBuilder`).
//!
//! ```
//! use cashews_core::middleware::{Middleware, Next, Request, Response};
//! use cashews_core::{BoxFuture, Result};
//!
//! /// Lower-cases every key.
//! #[derive(Debug)]
//! struct LowerKeys;
//!
//! impl Middleware for LowerKeys {
//!     fn call<'a>(&'a self, mut request: Request<'a>, next: Next<'a>) -> BoxFuture<'a, Result<Response>> {
//!         for key in request.keys_mut() {
//!             *key = key.to_lowercase().into();
//!         }
//!         next.run(request)
//!     }
//! }
//! # let cache = cashews_core::Cache::new();
//! cache.add_middleware(LowerKeys);
//! ```
//!
//! With no middleware installed, a memory hit skips the chain entirely (the
//! hit path); any middleware makes every command go through it.

mod builtin;
mod callback;

#[cfg(feature = "metrics")]
pub use builtin::Metrics;
pub use builtin::{AddPrefix, MemoryLimit, Tracing};
pub use callback::{Callback, Event};
pub use cashews_backend::{Request, Response};

use cashews_backend::dispatch;

use std::fmt;
use std::sync::Arc;

use crate::backend::{Backend, BoxFuture};
use crate::error::Result;

/// A step of the chain. See the [module docs](self).
pub trait Middleware: Send + Sync + fmt::Debug + 'static {
    /// Handles `request`, usually by calling `next.run(request)`.
    fn call<'a>(&'a self, request: Request<'a>, next: Next<'a>) -> BoxFuture<'a, Result<Response>>;
}

/// The rest of the chain after a middleware, ending at the backend.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    chain: &'a [Arc<dyn Middleware>],
    backend: &'a dyn Backend,
    prefix: &'a str,
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &self.chain.len())
            .field("backend", &self.backend.name())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl<'a> Next<'a> {
    pub(crate) fn new(
        chain: &'a [Arc<dyn Middleware>],
        backend: &'a dyn Backend,
        prefix: &'a str,
    ) -> Self {
        Next {
            chain,
            backend,
            prefix,
        }
    }

    /// Passes `request` to the next middleware, or to the backend.
    pub fn run(self, request: Request<'a>) -> BoxFuture<'a, Result<Response>> {
        match self.chain.split_first() {
            Some((first, rest)) => first.call(
                request,
                Next {
                    chain: rest,
                    ..self
                },
            ),
            None => dispatch(self.backend, request),
        }
    }

    /// The name of the backend the command is routed to.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// The key prefix of the backend the command is routed to.
    pub fn prefix(&self) -> &'a str {
        self.prefix
    }
}

/// Identifies an added middleware, to remove it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MiddlewareId(pub(crate) u64);
