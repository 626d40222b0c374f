//! Values kept as themselves in process: `set_value` / `get_value`, and
//! what `#[cache(local)]` stores — a client, a connection pool, anything
//! `Clone` that is not serde. Only a backend that keeps its data in process
//! (`mem://`) holds them.

use std::sync::Arc;

use super::Cache;
use crate::backend::ValueStore;
use crate::error::{Error, Result};
use crate::ttl::IntoTtl;

impl Cache {
    /// A clone of the value kept as itself under `key` ([`set_value`]);
    /// `None` if there is none, it expired, or it is of another type (or
    /// the key holds bytes). Synchronous: the memory backend answers in
    /// line. Middlewares and scopes do not see these calls.
    ///
    /// # Errors
    /// [`Error::Config`] when the key's backend keeps no values in process
    /// (only `mem://` does); [`Error::NotConfigured`] without a backend.
    ///
    /// [`set_value`]: Cache::set_value
    ///
    /// ```
    /// # fn main() -> cashews_core::Result<()> {
    /// # let cache = cashews_core::Cache::new(); cache.setup("mem://")?;
    /// use std::sync::Arc;
    /// struct Client { base: String } // not serde, not even Clone
    /// cache.set_value("client", Arc::new(Client { base: "https://api".into() }), "1h")?;
    /// let client: Arc<Client> = cache.get_value("client")?.expect("kept");
    /// assert_eq!(client.base, "https://api");
    /// # Ok(()) }
    /// ```
    pub fn get_value<T: Clone + 'static>(&self, key: &str) -> Result<Option<T>> {
        self.with_values(key, |values| {
            values
                .get_value(key)
                .and_then(|value| value.downcast_ref::<T>().cloned())
        })
    }

    /// Keeps `value` itself under `key` for `ttl` — never encoded, so it
    /// needs no serde; readers get clones ([`get_value`](Cache::get_value)).
    ///
    /// # Errors
    /// As [`get_value`](Cache::get_value), and [`Error::Ttl`] for an
    /// invalid TTL.
    pub fn set_value<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: T,
        ttl: impl IntoTtl,
    ) -> Result<()> {
        let ttl = ttl.into_ttl()?;
        self.with_values(key, |values| {
            values.set_value(key, Arc::new(value), ttl.duration())
        })
    }

    /// Frees every backend's entries whose TTL has passed, now rather than
    /// at the next background sweep (aquiche's `remove_expired`); returns
    /// how many. Expired entries are never returned either way: this only
    /// frees memory early.
    ///
    /// # Errors
    /// A backend's error.
    pub async fn remove_expired(&self) -> Result<u64> {
        let backends: Vec<_> = self
            .inner
            .state
            .load()
            .routes
            .iter()
            .map(|route| route.backend.clone())
            .collect();
        let mut removed = 0;
        for backend in backends {
            removed += backend.remove_expired().await?;
        }
        Ok(removed)
    }

    fn with_values<O>(&self, key: &str, run: impl FnOnce(&dyn ValueStore) -> O) -> Result<O> {
        let state = self.inner.state.load();
        let route = state.route(key)?;
        match route.backend.values() {
            Some(values) => Ok(run(values)),
            None => Err(Error::Config(format!(
                "key {key:?} is kept by the {} backend, which holds no in-process values (#[cache(local)], set_value): route it to mem://",
                route.backend.name()
            ))),
        }
    }
}
