//! HTTP response caching for axum (and any tower service of
//! `Request<axum::body::Body>`), on a cashews [`Cache`].
//!
//! [`CacheLayer`] caches the responses of `GET` requests — status, headers
//! and body — keyed by path and query (and chosen request headers), and
//! answers `GET` and `HEAD` from them:
//!
//! It is a *shared* cache (RFC 9111): what one client sends never changes
//! what another is served.
//!
//! - `X-Cache: HIT`, `MISS` or `STALE` on every cached route (the name is
//!   configurable); a hit replays the stored headers as the origin sent them
//!   (never a rewritten `Cache-Control`) with an `Age`.
//! - The key is the authority (`Host`), path, query and the
//!   [`vary`](CacheLayer::vary) headers' values (byte-exact), or what
//!   [`key_with`](CacheLayer::key_with) builds.
//! - Every stored response has an `ETag` (its own, or a hash of the body).
//!   A request whose `If-None-Match` names it gets `304 Not Modified`
//!   without the handler running. The ETag lives in the entry, so once the
//!   entry is deleted or expired the ETag is no longer recognised.
//! - Request `Cache-Control` is ignored by default, as CDNs and reverse
//!   proxies ignore it; [`honor_request_directives`](CacheLayer::honor_request_directives)
//!   makes `no-cache` skip the read, `no-store` skip read and write, and
//!   `max-age=N` accept at most `N`-second-old answers and store for at most
//!   `N` seconds. `Clear-Site-Data: "cache"` purges the request's entry only
//!   when [`allow_purge`](CacheLayer::allow_purge) says the request may.
//! - A response's own lifetime bounds its entry: `s-maxage`, else
//!   `max-age`, else `Expires`.
//! - `HEAD` is answered from the `GET` entry with the same `Content-Length`.
//! - Concurrent requests for one cold key run the handler once (the cache's
//!   single flight); the others get its response.
//! - Requests with `Authorization` pass through (neither read nor stored)
//!   unless `.vary([AUTHORIZATION])` keys entries by it.
//! - Never stored: other methods, statuses other than 2xx/3xx (and 206,
//!   304), responses with `Set-Cookie`, `Cache-Control: no-store`,
//!   `private` or `no-cache`, a zero lifetime, `Vary: *` or a `Vary` naming
//!   a header the key does not include, and bodies larger than
//!   [`CacheLayer::max_body`]. Streaming bodies (no known length) pass
//!   through untouched unless [`CacheLayer::cache_streaming`] is on.
//! - RFC 5861: within [`stale_while_revalidate`](CacheLayer::stale_while_revalidate)
//!   past its lifetime an entry is answered at once while one background
//!   request refreshes it (one per key across processes, through a backend
//!   lock); within [`stale_if_error`](CacheLayer::stale_if_error) it answers
//!   a handler that fails. A response's own `stale-while-revalidate=N` /
//!   `stale-if-error=N` take precedence.
//! - Routes under a router-wide layer override it with [`CacheOverride`]
//!   (their TTL, stale windows, or never stored).
//! - A key whose response said it is not storable is marked
//!   *hit-for-miss*: its next requests go to the handler at once instead of
//!   queueing behind each other, until a storable response replaces the
//!   mark.
//! - Not done: revalidating a stale entry with the origin (`If-None-Match`
//!   upstream); a stale entry is recomputed whole.
//!
//! A failing cache backend never fails a request: the handler answers.
//!
//! The layer can also wrap one handler:
//!
//! ```
//! use axum::{routing::get, Router};
//! use cashews_axum::CacheLayer;
//!
//! # fn main() -> cashews_core::Result<()> {
//! let cache = cashews_core::Cache::new();
//! cache.setup("mem://")?;
//! let app: Router = Router::new()
//!     .route("/cached", get(|| async { "slow" }).layer(CacheLayer::new(&cache).ttl("1m")?))
//!     .route("/live", get(|| async { "fast" }));
//! # let _ = app; Ok(()) }
//! ```
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use cashews_axum::CacheLayer; // `cashews::axum::CacheLayer` in the cashews crate
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = cashews_core::Cache::new();
//! cache.setup("mem://")?;
//! let app: Router = Router::new()
//!     .route("/report", get(|| async { "an expensive report" }))
//!     .layer(CacheLayer::new(&cache).ttl("30s")?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod directives;
mod entry;
mod route;

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum_core::body::Body;
use cashews_core::{Cache, Error, IntoTtl, Result, Ttl};
use http::header::{self, HeaderName, HeaderValue};
use http::{request, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;

use directives::{none_match, response_lifetime, stale_windows, uncacheable, RequestDirectives};
use entry::{Entry, Freshness, Stored, Windows};
pub use route::{CacheOverride, OverrideService};

type TtlFn = dyn Fn(&request::Parts) -> Option<Ttl> + Send + Sync;
type PartsFn<T> = dyn Fn(&request::Parts) -> T + Send + Sync;

/// A tower [`Layer`] caching HTTP responses; see the [crate docs](crate).
#[derive(Clone)]
pub struct CacheLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    cache: Cache,
    ttl: Ttl,
    ttl_fn: Option<Arc<TtlFn>>,
    prefix: String,
    vary: Vec<HeaderName>,
    status_header: HeaderName,
    cache_streaming: bool,
    max_body: usize,
    honor_request_directives: bool,
    allow_purge: Option<Arc<PartsFn<bool>>>,
    key_with: Option<Arc<PartsFn<String>>>,
    windows: Windows,
    /// Keys this process is refreshing in the background.
    refreshing: Arc<Mutex<HashSet<String>>>,
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("CacheLayer")
            .field("ttl", &c.ttl)
            .field("ttl_fn", &c.ttl_fn.is_some())
            .field("prefix", &c.prefix)
            .field("vary", &c.vary)
            .field("status_header", &c.status_header)
            .field("cache_streaming", &c.cache_streaming)
            .field("max_body", &c.max_body)
            .field("windows", &c.windows)
            .finish_non_exhaustive()
    }
}

impl CacheLayer {
    /// Caches responses in `cache` for one minute, under keys starting with
    /// `http:`.
    pub fn new(cache: &Cache) -> CacheLayer {
        CacheLayer {
            config: Arc::new(Config {
                cache: cache.clone(),
                ttl: Ttl::from_nanos_checked(60_000_000_000),
                ttl_fn: None,
                prefix: "http:".to_owned(),
                vary: Vec::new(),
                status_header: HeaderName::from_static("x-cache"),
                cache_streaming: false,
                max_body: 8 << 20,
                honor_request_directives: false,
                allow_purge: None,
                key_with: None,
                windows: Windows::default(),
                refreshing: Arc::default(),
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// How long responses are stored (`"30s"`, a `Duration`, ...).
    ///
    /// # Errors
    /// [`Error::Ttl`] for a malformed or zero TTL.
    pub fn ttl(self, ttl: impl IntoTtl) -> Result<Self> {
        let ttl = ttl.into_ttl()?;
        Ok(self.with(|c| c.ttl = ttl))
    }

    /// Chooses the TTL per request; `None` leaves the request uncached
    /// (passed through without `X-Cache`).
    pub fn ttl_with(
        self,
        ttl: impl Fn(&request::Parts) -> Option<Ttl> + Send + Sync + 'static,
    ) -> Self {
        self.with(|c| c.ttl_fn = Some(Arc::new(ttl)))
    }

    /// The prefix of the cache keys (default `http:`); it also chooses the
    /// backend when the cache routes prefixes to several.
    pub fn prefix(self, prefix: &str) -> Self {
        self.with(|c| c.prefix = prefix.to_owned())
    }

    /// Puts this layer's entries in the namespace `name` (fastapi-cache's
    /// `namespace`): keys start with `{prefix}{name}:`, and
    /// [`clear_namespace`](Self::clear_namespace) deletes them all.
    pub fn namespace(self, name: &str) -> Self {
        self.with(|c| c.prefix = format!("{}{name}:", c.prefix))
    }

    /// Deletes every entry of this layer (its prefix and namespace);
    /// returns how many. Entries of other layers are untouched.
    pub async fn clear_namespace(&self) -> Result<u64> {
        let pattern = format!("{}*", cashews_core::glob::escape(&self.config.prefix));
        self.config.cache.delete_match(&pattern).await
    }

    /// Deletes the entry a request would read; returns whether there was one.
    pub async fn invalidate(&self, request: &request::Parts) -> Result<bool> {
        self.config.cache.delete(&self.config.key(request)).await
    }

    /// Request headers whose values are part of the key (as a `Vary`
    /// response header would name them), e.g. `accept-language`.
    pub fn vary(self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.with(|c| c.vary.extend(headers))
    }

    /// The response header telling `HIT` or `MISS` (default `x-cache`).
    pub fn status_header(self, name: HeaderName) -> Self {
        self.with(|c| c.status_header = name)
    }

    /// Also stores responses whose body has no known length (streams),
    /// reading them whole first (up to [`max_body`](Self::max_body); a longer
    /// one is answered whole and not stored). Off by default: a stream is
    /// passed through untouched.
    pub fn cache_streaming(self, on: bool) -> Self {
        self.with(|c| c.cache_streaming = on)
    }

    /// The largest body stored, in bytes (default 8 MiB).
    pub fn max_body(self, bytes: usize) -> Self {
        self.with(|c| c.max_body = bytes)
    }

    /// Honours the request's `Cache-Control` (`no-cache`, `no-store`,
    /// `max-age`) as a private cache would. Off by default: this layer is a
    /// shared cache, and one client must not decide what every other client
    /// is served (as CDNs and reverse proxies ignore them).
    pub fn honor_request_directives(self, on: bool) -> Self {
        self.with(|c| c.honor_request_directives = on)
    }

    /// Which requests may purge their entry with `Clear-Site-Data:
    /// "cache"` (an authenticated admin, say). Without it no request can.
    pub fn allow_purge(
        self,
        allowed: impl Fn(&request::Parts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.with(|c| c.allow_purge = Some(Arc::new(allowed)))
    }

    /// Builds the key from the request (fastapi-cache's `key_builder`); the
    /// layer's prefix is put in front. The default is method, authority,
    /// path, query and the [`vary`](Self::vary) headers' values.
    pub fn key_with(self, key: impl Fn(&request::Parts) -> String + Send + Sync + 'static) -> Self {
        self.with(|c| c.key_with = Some(Arc::new(key)))
    }

    /// Serves an entry up to `window` past its lifetime at once
    /// (`X-Cache: STALE`) while one background request refreshes it — one
    /// per key across every process sharing the backend (RFC 5861
    /// `stale-while-revalidate`). A response's own
    /// `Cache-Control: stale-while-revalidate=N` takes precedence.
    ///
    /// # Errors
    /// [`Error::Ttl`] for a malformed window.
    pub fn stale_while_revalidate(self, window: impl IntoTtl) -> Result<Self> {
        let window = cashews_core::ttl::finite(window, "stale_while_revalidate")?;
        Ok(self.with(|c| c.windows.while_revalidate = Some(window)))
    }

    /// Serves an entry up to `window` past its lifetime when the handler
    /// fails — an error or a `5xx` — instead of the failure
    /// (`X-Cache: STALE`; RFC 5861 `stale-if-error`). A response's own
    /// `Cache-Control: stale-if-error=N` takes precedence.
    ///
    /// # Errors
    /// [`Error::Ttl`] for a malformed window.
    pub fn stale_if_error(self, window: impl IntoTtl) -> Result<Self> {
        let window = cashews_core::ttl::finite(window, "stale_if_error")?;
        Ok(self.with(|c| c.windows.if_error = Some(window)))
    }

    /// The cache key of a request (to delete its entry by hand).
    pub fn key(&self, request: &request::Parts) -> String {
        self.config.key(request)
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of a [`CacheLayer`].
#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for CacheService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready service handles this request; a clone waits for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut inner = inner;
            return Box::pin(inner.call(request));
        }
        Box::pin(config.handle(inner, request))
    }
}

/// The cache status a response is marked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Hit,
    Miss,
    Stale,
}

/// Why a load did not produce a stored response.
enum Load<E> {
    /// The response is not stored; it goes to the client as it is.
    Uncached(Response<Body>),
    /// The handler failed, and a stale entry answers instead.
    Stale(Stored),
    /// The handler failed.
    Service(E),
    /// The cache failed before the handler ran.
    Cache(Error),
}

impl<E> From<Error> for Load<E> {
    fn from(error: Error) -> Self {
        Load::Cache(error)
    }
}

/// A response the layer does not store, and whether the response (or its
/// route) said so itself — then the key gets a hit-for-miss marker.
struct NotStored {
    response: Response<Body>,
    pass: bool,
}

impl NotStored {
    fn new(response: Response<Body>, pass: bool) -> NotStored {
        NotStored { response, pass }
    }
}

/// What `fetch` does with the handler's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// Makes it storable; one that says it is not marks the key
    /// hit-for-miss.
    Store,
    /// Makes it storable; the key is marked hit-for-miss already.
    StoreMarked,
    /// Hands it back as it is (a `HEAD`).
    PassThrough,
}

/// What one request allows: the layer's TTL for it (`None`: no expiry)
/// and, when request directives are honoured, the client's `max-age`.
#[derive(Debug, Clone, Copy)]
struct Plan {
    ttl: Option<Duration>,
    max_age: Option<Duration>,
}

/// The request and the service, until one of the paths takes them.
type Pending<S> = Arc<Mutex<Option<(Request<Body>, S)>>>;

fn take<S>(pending: &Pending<S>) -> Option<(Request<Body>, S)> {
    lock(pending).take()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a key from the set of keys this process refreshes, however the
/// refresh ends.
struct Refreshing {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.key);
    }
}

impl Config {
    fn key(&self, parts: &request::Parts) -> String {
        if let Some(key_with) = &self.key_with {
            return format!("{}{}", self.prefix, key_with(parts));
        }
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
        // The authority is part of the key: one server may answer for
        // several hosts, and a client must not reach another host's entry.
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().as_bytes())
            .or_else(|| parts.headers.get(header::HOST).map(HeaderValue::as_bytes))
            .unwrap_or_default();
        let mut key = format!("{}GET:", self.prefix);
        escape_bytes(&mut key, authority);
        key.push_str(target);
        for name in &self.vary {
            key.push('|');
            key.push_str(name.as_str());
            key.push('=');
            for value in parts.headers.get_all(name) {
                escape_bytes(&mut key, value.as_bytes());
                key.push(';');
            }
        }
        key
    }

    fn now_ms(&self) -> u64 {
        self.cache.clock().unix_ms()
    }

    fn mark(&self, mut response: Response<Body>, status: Status) -> Response<Body> {
        let value = HeaderValue::from_static(match status {
            Status::Hit => "HIT",
            Status::Miss => "MISS",
            Status::Stale => "STALE",
        });
        response
            .headers_mut()
            .insert(self.status_header.clone(), value);
        response
    }

    /// The answer from a stored response: 304 if the client holds it.
    fn answer(
        &self,
        stored: &Stored,
        parts: &request::Parts,
        method: &Method,
        status: Status,
    ) -> Response<Body> {
        let now = self.now_ms();
        let from_cache = status != Status::Miss;
        let mut response = if none_match(&parts.headers, &stored.etag) {
            stored.not_modified(now)
        } else {
            stored.response(now, from_cache)
        };
        if method == Method::HEAD {
            // The same Content-Length as the GET, without the body.
            if response.status() != StatusCode::NOT_MODIFIED {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(stored.body_len()));
            }
            *response.body_mut() = Body::empty();
        }
        self.mark(response, status)
    }

    /// Reads a response whole to store it, or hands it back untouched.
    async fn to_stored(
        &self,
        response: Response<Body>,
        plan: Plan,
    ) -> std::result::Result<Stored, NotStored> {
        let (parts, body) = response.into_parts();
        let route = parts.extensions.get::<CacheOverride>().copied();
        if route.is_some_and(|route| !route.store) {
            return Err(NotStored::new(Response::from_parts(parts, body), true));
        }
        if let Some(reason) = uncacheable(parts.status, &parts.headers, &self.vary) {
            tracing::debug!(status = %parts.status, reason, "response not cached");
            // A status may differ next time; what the headers say will not.
            let pass = reason != "status";
            return Err(NotStored::new(Response::from_parts(parts, body), pass));
        }
        match body.size_hint().exact() {
            None if !self.cache_streaming => {
                return Err(NotStored::new(Response::from_parts(parts, body), true))
            }
            Some(len) if len > self.max_body as u64 => {
                return Err(NotStored::new(Response::from_parts(parts, body), true))
            }
            _ => {}
        }
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracing::warn!(%error, "response body failed while being read for the cache");
                let mut failed = Response::new(Body::empty());
                *failed.status_mut() = StatusCode::BAD_GATEWAY;
                return Err(NotStored::new(failed, false));
            }
        };
        if bytes.len() > self.max_body {
            return Err(NotStored::new(
                Response::from_parts(parts, Body::from(bytes)),
                true,
            ));
        }
        // The route's TTL or the layer's, within the client's max-age (when
        // honoured) and the response's own lifetime.
        let ttl = match route.and_then(|route| route.ttl) {
            Some(ttl) => ttl.duration(),
            None => plan.ttl,
        };
        let own = response_lifetime(&parts.headers, SystemTime::now());
        let expire = [ttl, plan.max_age, own].into_iter().flatten().min();
        if expire.is_some_and(|d| d.is_zero()) {
            let pass = own.is_some_and(|d| d.is_zero());
            return Err(NotStored::new(
                Response::from_parts(parts, Body::from(bytes)),
                pass,
            ));
        }
        // Stale windows: the response's own, else the route's, else the
        // layer's.
        let (revalidate, if_error) = stale_windows(&parts.headers);
        let windows = Windows {
            while_revalidate: revalidate
                .or(route.and_then(|r| r.stale_while_revalidate))
                .or(self.windows.while_revalidate),
            if_error: if_error
                .or(route.and_then(|r| r.stale_if_error))
                .or(self.windows.if_error),
        };
        Ok(Stored::new(&parts, bytes, self.now_ms(), expire, windows))
    }

    /// Calls the handler and makes its response storable (per `mode`). A
    /// failure (an error, a 5xx) is answered by `stale` when there is one.
    /// A response that says it is not storable leaves a hit-for-miss
    /// marker under `key`, so the next requests do not queue.
    async fn fetch<S>(
        &self,
        request: Request<Body>,
        mut inner: S,
        key: &str,
        plan: Plan,
        stale: Option<Stored>,
        mode: Fetch,
    ) -> std::result::Result<Stored, Load<S::Error>>
    where
        S: Service<Request<Body>, Response = Response<Body>>,
    {
        let response = match inner.call(request).await {
            Ok(response) => response,
            Err(error) => {
                return Err(match stale {
                    Some(stale) => {
                        tracing::warn!(key, "handler failed; serving the stale entry");
                        Load::Stale(stale)
                    }
                    None => Load::Service(error),
                })
            }
        };
        if response.status().is_server_error() {
            if let Some(stale) = stale {
                tracing::warn!(key, status = %response.status(), "serving the stale entry");
                return Err(Load::Stale(stale));
            }
        }
        if mode == Fetch::PassThrough {
            return Err(Load::Uncached(response));
        }
        match self.to_stored(response, plan).await {
            Ok(stored) => Ok(stored),
            Err(NotStored { response, pass }) => {
                if pass && mode == Fetch::Store {
                    let ttl = plan
                        .ttl
                        .and_then(|d| Ttl::new(d).ok())
                        .unwrap_or(Ttl::FOREVER);
                    if let Err(error) = self
                        .cache
                        .set(key, &Entry::<Stored>::Pass)
                        .expire(ttl)
                        .await
                    {
                        tracing::debug!(key, %error, "cannot mark the key hit-for-miss");
                    }
                }
                Err(Load::Uncached(response))
            }
        }
    }

    /// Stores a response for its backend TTL; hands it back.
    async fn store(&self, key: &str, stored: Stored) -> Stored {
        let Some(ttl) = stored.backend_ttl() else {
            return stored;
        };
        let entry: Entry<&Stored> = Entry::Response(&stored);
        if let Err(error) = self.cache.set(key, &entry).expire(ttl).await {
            tracing::warn!(key, %error, "cache write failed");
        }
        stored
    }

    /// A `500` for a request the layer could not answer.
    fn failed(&self) -> Response<Body> {
        let mut failed = Response::new(Body::empty());
        *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        self.mark(failed, Status::Miss)
    }

    /// Refreshes a stale entry in the background: one refresh per key in
    /// this process, and one across processes through a backend lock.
    fn refresh<S>(
        self: &Arc<Self>,
        key: &str,
        stale: &Stored,
        request: Request<Body>,
        inner: S,
        plan: Plan,
    ) where
        S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
    {
        if !lock(&self.refreshing).insert(key.to_owned()) {
            return;
        }
        let refreshing = Refreshing {
            set: self.refreshing.clone(),
            key: key.to_owned(),
        };
        let config = self.clone();
        // The lock outlives a refresh that hangs only by the window in which
        // the stale entry is served anyway.
        let lock_ttl = stale.revalidate_window().max(Duration::from_secs(1));
        tokio::spawn(async move {
            let key = refreshing.key.as_str();
            let guard = match config
                .cache
                .lock(&format!("lock:{key}"), lock_ttl)
                .no_wait()
                .await
            {
                Ok(guard) => guard,
                Err(Error::Locked { .. }) => return, // another process refreshes it
                Err(error) => {
                    tracing::warn!(key, %error, "cannot take the refresh lock; not refreshing");
                    return;
                }
            };
            // Another process may have refreshed it a moment ago.
            let now = config.now_ms();
            let fresh = matches!(
                config.cache.get::<Entry>(key).await,
                Ok(Some(Entry::Response(current))) if current.freshness(now) == Freshness::Fresh
            );
            if !fresh {
                match config
                    .fetch(request, inner, key, plan, None, Fetch::Store)
                    .await
                {
                    Ok(stored) => {
                        config.store(key, stored).await;
                    }
                    Err(Load::Service(_)) => {
                        tracing::warn!(
                            key,
                            "background refresh: the handler failed; the stale entry stays"
                        )
                    }
                    Err(Load::Uncached(response)) => {
                        tracing::debug!(key, status = %response.status(), "background refresh not stored")
                    }
                    Err(Load::Stale(_) | Load::Cache(_)) => {}
                }
            }
            if let Err(error) = guard.release().await {
                tracing::debug!(key, %error, "cannot release the refresh lock; it expires");
            }
        });
    }

    async fn handle<S>(
        self: Arc<Self>,
        inner: S,
        request: Request<Body>,
    ) -> std::result::Result<Response<Body>, S::Error>
    where
        S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
    {
        let (parts, body) = request.into_parts();
        let ttl = match &self.ttl_fn {
            Some(choose) => choose(&parts),
            None => Some(self.ttl),
        };
        // A response to credentials is one user's: never shared unless the
        // key varies on them.
        let private = parts.headers.contains_key(header::AUTHORIZATION)
            && !self.vary.contains(&header::AUTHORIZATION);
        let Some(ttl) = ttl.filter(|_| !private) else {
            let mut inner = inner;
            return inner.call(Request::from_parts(parts, body)).await;
        };
        let parsed = RequestDirectives::parse(&parts.headers);
        let directives = if self.honor_request_directives {
            parsed
        } else {
            RequestDirectives::default()
        };
        let key = self.key(&parts);
        let method = parts.method.clone();
        let purge = parsed.clear
            && self
                .allow_purge
                .as_ref()
                .is_some_and(|allowed| allowed(&parts));
        if purge {
            if let Err(error) = self.cache.delete(&key).await {
                tracing::warn!(key, %error, "Clear-Site-Data: could not delete the entry");
            }
        }
        let plan = Plan {
            ttl: ttl.duration(),
            max_age: directives.max_age,
        };
        let store = !directives.no_store && method == Method::GET;
        let read = !directives.no_store && !directives.no_cache;
        // Within the client's max-age, when that is honoured.
        let young = |stored: &Stored, now| plan.max_age.is_none_or(|max| stored.age(now) <= max);
        let head = parts.clone_without_extensions();
        let pending: Pending<S> =
            Arc::new(Mutex::new(Some((Request::from_parts(parts, body), inner))));
        // A stale entry that answers if the handler fails.
        let fallback: Mutex<Option<Stored>> = Mutex::new(None);

        let mut mode = if store {
            Fetch::Store
        } else {
            Fetch::PassThrough
        };
        if read && store {
            let ran = AtomicBool::new(false);
            let load = || async {
                ran.store(true, Ordering::Relaxed);
                let Some((request, inner)) = take(&pending) else {
                    return Err(Load::Cache(Error::InvalidArgument(
                        "request already taken".into(),
                    )));
                };
                let stale = lock(&fallback).take();
                self.fetch(request, inner, &key, plan, stale, Fetch::Store)
                    .await
                    .map(Entry::Response)
            };
            // Served: fresh or revalidating entries and hit-for-miss
            // markers. Refused (loaded once for concurrent requests):
            // missing, dead, and stale-if-error entries (kept to answer a
            // failure).
            let usable = |entry: &Entry| {
                let Entry::Response(stored) = entry else {
                    return true;
                };
                let now = self.now_ms();
                if !young(stored, now) {
                    return false;
                }
                match stored.freshness(now) {
                    Freshness::Fresh | Freshness::Revalidate => true,
                    Freshness::IfError => {
                        *lock(&fallback) = Some(stored.clone());
                        false
                    }
                    Freshness::Dead => false,
                }
            };
            let loaded = self
                .cache
                .get_or_set(&key, load)
                .fallible()
                .expire_with(|entry: &Entry| match entry {
                    Entry::Response(stored) => stored.backend_ttl(),
                    Entry::Pass => None,
                })
                .hit_if(usable)
                .await;
            let ran = ran.load(Ordering::Relaxed);
            match loaded {
                Ok(Entry::Response(stored)) if ran => {
                    return Ok(self.answer(&stored, &head, &method, Status::Miss))
                }
                Ok(Entry::Response(stored)) => {
                    if stored.freshness(self.now_ms()) == Freshness::Revalidate {
                        if let Some((request, inner)) = take(&pending) {
                            self.refresh(&key, &stored, request, inner, plan);
                        }
                        return Ok(self.answer(&stored, &head, &method, Status::Stale));
                    }
                    return Ok(self.answer(&stored, &head, &method, Status::Hit));
                }
                // Hit-for-miss: straight to the handler, below.
                Ok(Entry::Pass) => mode = Fetch::StoreMarked,
                Err(Load::Uncached(response)) => return Ok(self.mark(response, Status::Miss)),
                Err(Load::Stale(stored)) => {
                    return Ok(self.answer(&stored, &head, &method, Status::Stale))
                }
                Err(Load::Service(error)) => return Err(error),
                Err(Load::Cache(error)) => {
                    tracing::warn!(key, %error, "cache failed; calling the handler");
                }
            }
        } else if read {
            // HEAD: answered from the GET entry, never stored.
            match self.cache.get::<Entry>(&key).await {
                Ok(Some(Entry::Response(stored))) if young(&stored, self.now_ms()) => {
                    match stored.freshness(self.now_ms()) {
                        Freshness::Fresh => {
                            return Ok(self.answer(&stored, &head, &method, Status::Hit))
                        }
                        Freshness::Revalidate => {
                            return Ok(self.answer(&stored, &head, &method, Status::Stale))
                        }
                        Freshness::IfError => *lock(&fallback) = Some(stored),
                        Freshness::Dead => {}
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(key, %error, "cache read failed; calling the handler")
                }
            }
        }

        let Some((request, inner)) = take(&pending) else {
            // Only reachable if a load took the request and then the cache
            // failed; answer rather than panic.
            return Ok(self.failed());
        };
        let stale = lock(&fallback).take();
        match self.fetch(request, inner, &key, plan, stale, mode).await {
            Ok(stored) => {
                let stored = self.store(&key, stored).await;
                Ok(self.answer(&stored, &head, &method, Status::Miss))
            }
            Err(Load::Uncached(response)) => Ok(self.mark(response, Status::Miss)),
            Err(Load::Stale(stored)) => Ok(self.answer(&stored, &head, &method, Status::Stale)),
            Err(Load::Service(error)) => Err(error),
            Err(Load::Cache(error)) => {
                tracing::warn!(key, %error, "cache failed");
                Ok(self.failed())
            }
        }
    }
}

/// The request head without extensions (which are not `Clone`).
trait CloneHead {
    fn clone_without_extensions(&self) -> request::Parts;
}

impl CloneHead for request::Parts {
    fn clone_without_extensions(&self) -> request::Parts {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone())
            .version(self.version);
        if let Some(headers) = builder.headers_mut() {
            *headers = self.headers.clone();
        }
        builder
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| Request::new(()).into_parts().0)
    }
}

/// Appends `bytes` to `key`: printable ASCII as it is, every other byte and
/// the key's separators percent-encoded, so distinct byte strings (non-UTF-8
/// ones included) never share a key.
fn escape_bytes(key: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'|' | b';') || b == b' ' {
            key.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            key.push('%');
            key.push(HEX[usize::from(b >> 4)] as char);
            key.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::get("/items?page=2");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn keys_name_path_query_and_varied_headers() {
        let cache = Cache::new();
        let layer = CacheLayer::new(&cache).vary([
            HeaderName::from_static("accept-language"),
            HeaderName::from_static("x-tenant"),
        ]);
        assert_eq!(
            layer.key(&parts(&[("accept-language", "de"), ("x-tenant", "a")])),
            "http:GET:/items?page=2|accept-language=de;|x-tenant=a;"
        );
        // A value cannot pose as another header's part.
        let forged = layer.key(&parts(&[("accept-language", "de;|x-tenant=a")]));
        assert_eq!(
            forged,
            "http:GET:/items?page=2|accept-language=de%3B%7Cx-tenant=a;|x-tenant="
        );
        // Values that are not UTF-8 keep their bytes: no two collide.
        let raw = |bytes: &[u8]| {
            let mut p = parts(&[]);
            p.headers
                .insert("x-tenant", HeaderValue::from_bytes(bytes).unwrap());
            layer.key(&p)
        };
        assert_ne!(raw(b"\xff"), raw(b"\xfe"));
        assert!(raw(b"\xff").ends_with("|x-tenant=%FF;"));
        // The authority is part of the key.
        let on = |host: &'static str| layer.key(&parts(&[("host", host)]));
        assert_ne!(on("a.example"), on("b.example"));
        assert!(on("a.example").starts_with("http:GET:a.example/items"));
        // key_with replaces the rule (the prefix stays).
        let custom = CacheLayer::new(&cache).key_with(|p| p.uri.path().to_owned());
        assert_eq!(custom.key(&parts(&[("host", "x")])), "http:/items");
    }
}
