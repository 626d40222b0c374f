//! `soft`: serve a value until `soft_ttl`; then recompute in line, and if
//! that fails, keep serving the stale value until `ttl`.

use std::future::Future;
use std::time::Duration;

use super::slot::Slot;
use super::Adapter;
use crate::cache::Cache;
use crate::ttl::{IntoTtl, Ttl};

/// The soft-TTL strategy, stored at `soft:{key}` as `(fresh_until_ms, value)`.
pub struct Soft<'c, R> {
    slot: Slot<'c>,
    ttl: Ttl,
    soft_ttl: Duration,
    invalid: Option<String>,
    on: Option<fn(&R) -> bool>,
}

impl<R> std::fmt::Debug for Soft<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Soft")
            .field("key", &self.slot.key)
            .field("ttl", &self.ttl)
            .field("soft_ttl", &self.soft_ttl)
            .finish_non_exhaustive()
    }
}

impl<'c, R> Soft<'c, R> {
    /// Values of `key` are fresh for `soft_ttl` and kept (for failures) for `ttl`.
    /// `soft_ttl` takes any TTL form; an invalid one makes every call run
    /// straight through (logged).
    pub fn new(cache: &'c Cache, key: &str, ttl: Ttl, soft_ttl: impl IntoTtl) -> Self {
        let mut invalid = None;
        let soft_ttl = super::setting(soft_ttl, "soft_ttl", &mut invalid);
        Soft {
            slot: Slot::new(cache, format!("soft:{key}")),
            ttl,
            soft_ttl,
            invalid,
            on: None,
        }
    }

    /// Serves the stale value only for the failures `on` accepts (default: all).
    pub fn on(mut self, on: fn(&R) -> bool) -> Self {
        self.on = Some(on);
        self
    }

    /// Runs the call; see the module docs.
    pub async fn run<A: Adapter<R>>(self, inner: impl Future<Output = R>) -> R {
        if let Some(why) = &self.invalid {
            super::invalid_setting("soft", &self.slot.key, why);
            return inner.await;
        }
        let now = self.slot.cache.clock().unix_ms();
        let stale = match self.slot.read::<(u64, A::Stored)>().await {
            Some((fresh_until, value)) if now < fresh_until => return A::restore(value),
            Some((_, value)) => Some(value),
            None => None,
        };
        let output = inner.await;
        match A::stored(&output) {
            Some(value) => {
                let fresh_until =
                    self.slot.cache.clock().unix_ms() + self.soft_ttl.as_millis() as u64;
                self.slot.write(&(fresh_until, value), self.ttl).await;
                output
            }
            None => match stale {
                Some(value) if self.on.is_none_or(|on| on(&output)) => A::restore(value),
                _ => output,
            },
        }
    }
}
