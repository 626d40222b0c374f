//! Per-route overrides of a router-wide [`CacheLayer`](crate::CacheLayer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use cashews_core::{IntoTtl, Result, Ttl};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

/// What one route's responses get from the router-wide [`CacheLayer`]
/// (fastapi-cache's per-route `@cache(expire=…)` under global defaults).
///
/// The layer reads it from the response's extensions when it decides how
/// to store the response, so it is set by the route — as a layer around
/// the handler, or by the handler itself (`Extension(override)` in its
/// response):
///
/// ```
/// use axum::{routing::get, Router};
/// use cashews_axum::{CacheLayer, CacheOverride};
///
/// # fn main() -> cashews_core::Result<()> {
/// let cache = cashews_core::Cache::new();
/// cache.setup("mem://")?;
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "hourly" }).layer(CacheOverride::ttl("1h")?))
///     .route("/live", get(|| async { "now" }).layer(CacheOverride::no_store()))
///     .route("/other", get(|| async { "30 s" }))
///     .layer(CacheLayer::new(&cache).ttl("30s")?);
/// # let _ = app; Ok(()) }
/// ```
///
/// The response's own `Cache-Control` still bounds what is stored, and a
/// response the layer would not store (`no-store`, `Set-Cookie`, …) stays
/// unstored. A route marked `no_store` costs one cache read per request
/// (the layer reads before routing reaches it) and no waiting: its
/// requests go to the handler at once.
///
/// [`CacheLayer`]: crate::CacheLayer
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOverride {
    pub(crate) store: bool,
    pub(crate) ttl: Option<Ttl>,
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
}

impl CacheOverride {
    /// Never store this route's responses.
    pub fn no_store() -> CacheOverride {
        CacheOverride {
            store: false,
            ttl: None,
            stale_while_revalidate: None,
            stale_if_error: None,
        }
    }

    /// Store this route's responses for `ttl` instead of the layer's TTL.
    ///
    /// # Errors
    /// [`cashews_core::Error::Ttl`] for a malformed or zero TTL.
    pub fn ttl(ttl: impl IntoTtl) -> Result<CacheOverride> {
        Ok(CacheOverride {
            store: true,
            ttl: Some(ttl.into_ttl()?),
            stale_while_revalidate: None,
            stale_if_error: None,
        })
    }

    /// This route's [`stale_while_revalidate`] window.
    ///
    /// [`stale_while_revalidate`]: crate::CacheLayer::stale_while_revalidate
    ///
    /// # Errors
    /// [`cashews_core::Error::Ttl`] for a malformed window.
    pub fn stale_while_revalidate(mut self, window: impl IntoTtl) -> Result<CacheOverride> {
        self.stale_while_revalidate =
            Some(cashews_core::ttl::finite(window, "stale_while_revalidate")?);
        Ok(self)
    }

    /// This route's [`stale_if_error`] window.
    ///
    /// [`stale_if_error`]: crate::CacheLayer::stale_if_error
    ///
    /// # Errors
    /// [`cashews_core::Error::Ttl`] for a malformed window.
    pub fn stale_if_error(mut self, window: impl IntoTtl) -> Result<CacheOverride> {
        self.stale_if_error = Some(cashews_core::ttl::finite(window, "stale_if_error")?);
        Ok(self)
    }
}

impl<S> Layer<S> for CacheOverride {
    type Service = OverrideService<S>;

    fn layer(&self, inner: S) -> OverrideService<S> {
        OverrideService {
            inner,
            policy: *self,
        }
    }
}

/// The service of a [`CacheOverride`] layer: marks its responses.
#[derive(Debug, Clone)]
pub struct OverrideService<S> {
    inner: S,
    policy: CacheOverride,
}

impl<S, B, R> Service<Request<B>> for OverrideService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let policy = self.policy;
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            response.extensions_mut().insert(policy);
            Ok(response)
        })
    }
}
