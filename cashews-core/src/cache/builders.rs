//! Builders for commands with options; each is awaited directly
//! (`cache.set("k", &v).expire("1h").await`).

use std::future::IntoFuture;

use bytes::Bytes;

use super::Cache;
use crate::backend::{BoxFuture, Exist, SetOptions};
use crate::command::Command;
use crate::error::Result;
use crate::middleware::Request;
use crate::ttl::{ttl_until, ExpireAt, IntoExpireAt, IntoTtl, Ttl};

/// A pending `set`; see [`Cache::set`].
#[must_use = "a set does nothing until awaited"]
#[derive(Debug)]
pub struct SetBuilder<'a> {
    cache: &'a Cache,
    key: &'a str,
    value: Result<Bytes>,
    command: Command,
    options: Result<SetOptions>,
    expire_at: Option<Result<ExpireAt>>,
    tags: Vec<&'a str>,
}

impl<'a> SetBuilder<'a> {
    pub(super) fn new(
        cache: &'a Cache,
        key: &'a str,
        value: Result<Bytes>,
        command: Command,
    ) -> Self {
        SetBuilder {
            cache,
            key,
            value,
            command,
            options: Ok(SetOptions::default()),
            expire_at: None,
            tags: Vec::new(),
        }
    }

    /// Expires the value at `at` (see [`crate::ttl`]): `"00:00"` (the next
    /// midnight UTC), `"06:00+02:00"`, `"2027-01-01"`, an ISO 8601 datetime,
    /// a [`SystemTime`](std::time::SystemTime). Measured by the cache's
    /// clock when the set runs; a moment already past deletes the key and
    /// stores nothing (`Ok(false)`), as Redis' `EXPIREAT` does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
    /// # let cache = cashews_core::Cache::new(); cache.setup("mem://")?;
    /// cache.set("daily:report", &"…").expire_at("00:00").await?;
    /// # Ok(()) }
    /// ```
    pub fn expire_at(mut self, at: impl IntoExpireAt) -> Self {
        self.expire_at = Some(at.into_expire_at());
        self
    }

    /// Expires the value after `ttl` (see [`crate::ttl`]).
    pub fn expire(mut self, ttl: impl IntoTtl) -> Self {
        let ttl = ttl.into_ttl();
        self.options = self.options.and_then(|o| {
            Ok(SetOptions {
                expire: ttl?.duration(),
                ..o
            })
        });
        self
    }

    /// Writes only if the key is absent (Redis `NX`).
    pub fn only_if_absent(self) -> Self {
        self.exist(Exist::IfAbsent)
    }

    /// Writes only if the key already exists (Redis `XX`).
    pub fn only_if_present(self) -> Self {
        self.exist(Exist::IfPresent)
    }

    /// Records the key under `tags` once stored, for as long as the value
    /// lives (see [`Cache::delete_tags`]).
    pub fn tags(mut self, tags: &[&'a str]) -> Self {
        self.tags.extend_from_slice(tags);
        self
    }

    /// Sets the write condition.
    pub fn exist(mut self, exist: Exist) -> Self {
        if let Ok(options) = &mut self.options {
            options.exist = exist;
        }
        self
    }
}

impl<'a> IntoFuture for SetBuilder<'a> {
    type Output = Result<bool>;
    type IntoFuture = BoxFuture<'a, Result<bool>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (value, mut options, key) = (self.value?, self.options?, self.key.into());
            if let Some(at) = self.expire_at {
                match ttl_until(at?, self.cache.clock().unix_ms())? {
                    Some(ttl) => options.expire = ttl.duration(),
                    None => {
                        self.cache.delete(self.key).await?;
                        return Ok(false);
                    }
                }
            }
            let request = match self.command {
                Command::SetRaw => Request::SetRaw {
                    key,
                    value,
                    options,
                },
                _ => Request::Set {
                    key,
                    value,
                    options,
                },
            };
            let expire = options.expire;
            let stored = self.cache.run_one(request).await?.into_bool(self.command)?;
            if stored && !self.tags.is_empty() {
                self.cache.tag(self.key, &self.tags, expire).await?;
            }
            Ok(stored)
        })
    }
}

/// A pending `set_many`; see [`Cache::set_many`].
#[must_use = "a set_many does nothing until awaited"]
#[derive(Debug)]
pub struct SetManyBuilder<'a> {
    cache: &'a Cache,
    pairs: Result<Vec<(&'a str, Bytes)>>,
    expire: Result<Ttl>,
}

impl<'a> SetManyBuilder<'a> {
    pub(super) fn new(cache: &'a Cache, pairs: Result<Vec<(&'a str, Bytes)>>) -> Self {
        SetManyBuilder {
            cache,
            pairs,
            expire: Ok(Ttl::FOREVER),
        }
    }

    /// Expires every value after `ttl`.
    pub fn expire(mut self, ttl: impl IntoTtl) -> Self {
        self.expire = ttl.into_ttl();
        self
    }
}

impl<'a> IntoFuture for SetManyBuilder<'a> {
    type Output = Result<()>;
    type IntoFuture = BoxFuture<'a, Result<()>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let expire = self.expire?.duration();
            self.cache.set_many_encoded(self.pairs?, expire).await
        })
    }
}

/// A pending `incr`; see [`Cache::incr`].
#[must_use = "an incr does nothing until awaited"]
#[derive(Debug)]
pub struct IncrBuilder<'a> {
    cache: &'a Cache,
    key: &'a str,
    by: i64,
    expire: Result<Ttl>,
}

impl<'a> IncrBuilder<'a> {
    pub(super) fn new(cache: &'a Cache, key: &'a str) -> Self {
        IncrBuilder {
            cache,
            key,
            by: 1,
            expire: Ok(Ttl::FOREVER),
        }
    }

    /// Adds `by` instead of 1 (negative values subtract).
    pub fn by(mut self, by: i64) -> Self {
        self.by = by;
        self
    }

    /// The TTL of a counter this call creates.
    pub fn expire(mut self, ttl: impl IntoTtl) -> Self {
        self.expire = ttl.into_ttl();
        self
    }
}

impl<'a> IntoFuture for IncrBuilder<'a> {
    type Output = Result<i64>;
    type IntoFuture = BoxFuture<'a, Result<i64>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = Request::Incr {
                key: self.key.into(),
                by: self.by,
                expire: self.expire?.duration(),
            };
            self.cache.run_one(request).await?.into_int(Command::Incr)
        })
    }
}
