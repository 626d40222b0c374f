//! One cache entry as a strategy uses it: reads and writes that log failures
//! instead of failing the call.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::SetOptions;
use crate::cache::Cache;
use crate::middleware::Request;
use crate::ttl::Ttl;

/// A key of a cache, read and written by a strategy.
#[derive(Debug, Clone)]
pub struct Slot<'c> {
    pub(crate) cache: &'c Cache,
    pub(crate) key: String,
}

impl<'c> Slot<'c> {
    pub(crate) fn new(cache: &'c Cache, key: String) -> Self {
        Slot { cache, key }
    }

    /// The stored value, or `None` on a miss or a failure (logged).
    pub(crate) async fn read<T: DeserializeOwned + Send>(&self) -> Option<T> {
        match self.cache.get::<T>(&self.key).await {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(key = %self.key, %error, "cache read failed; calling the function");
                None
            }
        }
    }

    /// Stores `value` for `ttl`; returns whether it was stored. The value is
    /// encoded before the returned future starts, so it is not borrowed
    /// across an await.
    pub(crate) fn write<T: Serialize + ?Sized>(
        &self,
        value: &T,
        ttl: Ttl,
    ) -> impl Future<Output = bool> + Send + '_ {
        let encoded = self.cache.encode(&self.key, value);
        async move {
            match encoded {
                Ok(bytes) => self.write_bytes(bytes, ttl.duration()).await,
                Err(error) => {
                    tracing::warn!(key = %self.key, %error, "cannot encode the result; not cached");
                    false
                }
            }
        }
    }

    pub(crate) async fn write_bytes(&self, value: bytes::Bytes, expire: Option<Duration>) -> bool {
        let request = Request::Set {
            key: self.key.as_str().into(),
            value,
            options: SetOptions {
                expire,
                ..SetOptions::default()
            },
        };
        match self.cache.run_one(request).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(key = %self.key, %error, "cache write failed");
                false
            }
        }
    }

    /// Logs a failed auxiliary command (counters, locks) and returns `default`.
    pub(crate) fn or_log<T>(&self, result: crate::Result<T>, what: &str, default: T) -> T {
        result.unwrap_or_else(|error| {
            tracing::warn!(key = %self.key, %error, "cache {what} failed");
            default
        })
    }
}
