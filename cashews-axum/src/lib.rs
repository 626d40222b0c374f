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
//! - `X-Cache: HIT` or `MISS` on every cached route (the name is
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
//! - Not done: revalidating a stale entry with the origin (`If-None-Match`
//!   upstream); a stale entry is recomputed.
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

use directives::{none_match, response_lifetime, uncacheable, RequestDirectives};
use entry::Stored;

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

/// Why a load did not produce a stored response.
enum Load<E> {
    /// The response is not stored; it goes to the client as it is.
    Uncached(Response<Body>),
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

/// The request and the service, until one of the paths takes them.
type Pending<S> = Arc<Mutex<Option<(Request<Body>, S)>>>;

fn take<S>(pending: &Pending<S>) -> Option<(Request<Body>, S)> {
    pending.lock().unwrap_or_else(|e| e.into_inner()).take()
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

    fn mark(&self, mut response: Response<Body>, hit: bool) -> Response<Body> {
        let value = HeaderValue::from_static(if hit { "HIT" } else { "MISS" });
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
        hit: bool,
    ) -> Response<Body> {
        let now = self.now_ms();
        let mut response = if none_match(&parts.headers, &stored.etag) {
            stored.not_modified(now)
        } else {
            stored.response(now, hit)
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
        self.mark(response, hit)
    }

    /// Reads a response whole and stores it, or hands it back untouched.
    async fn to_stored(
        &self,
        response: Response<Body>,
        expire: Option<Duration>,
    ) -> std::result::Result<Stored, Response<Body>> {
        let (parts, body) = response.into_parts();
        if let Some(reason) = uncacheable(parts.status, &parts.headers, &self.vary) {
            tracing::debug!(status = %parts.status, reason, "response not cached");
            return Err(Response::from_parts(parts, body));
        }
        match body.size_hint().exact() {
            None if !self.cache_streaming => return Err(Response::from_parts(parts, body)),
            Some(len) if len > self.max_body as u64 => {
                return Err(Response::from_parts(parts, body))
            }
            _ => {}
        }
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracing::warn!(%error, "response body failed while being read for the cache");
                let mut failed = Response::new(Body::empty());
                *failed.status_mut() = StatusCode::BAD_GATEWAY;
                return Err(failed);
            }
        };
        if bytes.len() > self.max_body {
            return Err(Response::from_parts(parts, Body::from(bytes)));
        }
        // The response's own freshness bounds what is stored.
        let expire = match (expire, response_lifetime(&parts.headers, SystemTime::now())) {
            (Some(ttl), Some(own)) => Some(ttl.min(own)),
            (ttl, own) => ttl.or(own),
        };
        if expire.is_some_and(|d| d.is_zero()) {
            return Err(Response::from_parts(parts, Body::from(bytes)));
        }
        Ok(Stored::new(&parts, bytes, self.now_ms(), expire))
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
        let expire = match (ttl.duration(), directives.max_age) {
            (Some(ttl), Some(cap)) => Some(ttl.min(cap)),
            (ttl, cap) => ttl.or(cap),
        };
        let ttl = match expire {
            None => Some(Ttl::FOREVER),
            Some(d) => Ttl::new(d).ok(),
        };
        let store = !directives.no_store && method == Method::GET && ttl.is_some();
        let read = !directives.no_store && !directives.no_cache;
        let fresh = |stored: &Stored| {
            let now = self.now_ms();
            !stored.expired(now) && directives.max_age.is_none_or(|max| stored.age(now) <= max)
        };
        let head = parts.clone_without_extensions();
        let pending: Pending<S> =
            Arc::new(Mutex::new(Some((Request::from_parts(parts, body), inner))));

        if read {
            if let (true, Some(ttl)) = (store, ttl) {
                let ran = AtomicBool::new(false);
                let load = || async {
                    ran.store(true, Ordering::Relaxed);
                    let Some((request, mut inner)) = take(&pending) else {
                        return Err(Load::Cache(Error::InvalidArgument(
                            "request already taken".into(),
                        )));
                    };
                    let response = inner.call(request).await.map_err(Load::Service)?;
                    self.to_stored(response, expire)
                        .await
                        .map_err(Load::Uncached)
                };
                let loaded = self
                    .cache
                    .get_or_set(&key, load)
                    .expire(ttl)
                    .fallible()
                    .await;
                let ran = ran.load(Ordering::Relaxed);
                match loaded {
                    Ok(stored) if ran || fresh(&stored) => {
                        return Ok(self.answer(&stored, &head, &method, !ran))
                    }
                    Ok(_) => {} // older than the request's max-age: refresh below
                    Err(Load::Uncached(response)) => return Ok(self.mark(response, false)),
                    Err(Load::Service(error)) => return Err(error),
                    Err(Load::Cache(error)) => {
                        tracing::warn!(key, %error, "cache failed; calling the handler");
                    }
                }
            } else {
                match self.cache.get::<Stored>(&key).await {
                    Ok(Some(stored)) if fresh(&stored) => {
                        return Ok(self.answer(&stored, &head, &method, true))
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(key, %error, "cache read failed; calling the handler")
                    }
                }
            }
        }

        let Some((request, mut inner)) = take(&pending) else {
            // Only reachable if a load took the request and then the cache
            // failed; answer rather than panic.
            let mut failed = Response::new(Body::empty());
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return Ok(self.mark(failed, false));
        };
        let response = inner.call(request).await?;
        if !store {
            return Ok(self.mark(response, false));
        }
        match self.to_stored(response, expire).await {
            Ok(stored) => {
                let ttl = ttl.unwrap_or(Ttl::FOREVER);
                if let Err(error) = self.cache.set(&key, &stored).expire(ttl).await {
                    tracing::warn!(key, %error, "cache write failed");
                }
                Ok(self.answer(&stored, &head, &method, false))
            }
            Err(response) => Ok(self.mark(response, false)),
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
