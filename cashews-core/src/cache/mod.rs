//! [`Cache`]: backends chosen by URL, routed by key prefix, with a typed API.

mod builders;
mod commands;
mod control;
pub(crate) mod flight;
pub(crate) mod lock;
pub(crate) mod tags;
mod transaction;
mod values;

pub use builders::{IncrBuilder, SetBuilder, SetManyBuilder};
pub use commands::Get;
pub use control::CacheStats;
pub use flight::MAX_FLIGHT_WAIT;
pub use lock::{LockBuilder, LockGuard, DEFAULT_LOCK_WAIT};
pub use tags::TAGS_PREFIX;
pub use transaction::{Transaction, TransactionMode};

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::backend::Backend;
use crate::clock::Clock;
use crate::codec::{CodecKind, Compression, Digest, Serializer, DEFAULT_COMPRESS_MIN};
use crate::command::Command;
use crate::driver::{Driver, DriverContext};
use crate::error::{Error, Result};
use crate::layout::has_prefix;
use crate::middleware::{Middleware, MiddlewareId, Next, Request, Response};
use crate::scope::{Detected, Reads};
use crate::url::SetupUrl;

/// A cache: one or more backends, each serving the keys that start with its
/// prefix (the longest matching prefix wins), behind one typed API.
///
/// Cloning a `Cache` is cheap and gives another handle to the same cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::Cache;
///
/// let cache = Cache::new();
/// cache.setup("mem://?size=10000")?;
/// cache.set("user:1", &("Ann", 36u32)).expire("1h").await?;
/// let user: Option<(String, u32)> = cache.get("user:1").await?;
/// assert_eq!(user, Some(("Ann".to_owned(), 36)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: u64,
    drivers: Vec<Driver>,
    clock: Clock,
    pub(crate) state: ArcSwap<State>,
    /// Serialises writers of `state` (setup, middlewares).
    update: Mutex<()>,
    next_middleware_id: AtomicU64,
    disabled: AtomicU64,
    stats: control::Stats,
    pub(crate) flights: flight::Flights,
    /// Whether a cached call on this cache before any setup was reported.
    unconfigured_reported: std::sync::atomic::AtomicBool,
}

/// Routes and middlewares; replaced as a whole on every change, read without locks.
#[derive(Default)]
pub(crate) struct State {
    /// Sorted by prefix length, longest first.
    routes: Vec<Arc<Route>>,
    chain: Vec<Arc<dyn Middleware>>,
    ids: Vec<MiddlewareId>,
}

/// A backend with the prefix it serves and how its values are encoded.
pub(crate) struct Route {
    pub(crate) prefix: String,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) serializer: Serializer,
    /// Names this route's decoding to the backend's typed tier: copies
    /// kept by another route (another serializer) are never handed here.
    pub(crate) decoder: u64,
}

/// Route decoder ids (`0` is "no one in particular").
static NEXT_DECODER: AtomicU64 = AtomicU64::new(1);

impl State {
    pub(crate) fn route(&self, key: &str) -> Result<&Arc<Route>> {
        Ok(&self.routes[self.route_index(key)?])
    }

    #[inline]
    fn route_index(&self, key: &str) -> Result<usize> {
        self.routes
            .iter()
            .position(|r| has_prefix(key, &r.prefix))
            .ok_or_else(|| Error::NotConfigured {
                key: key.to_owned(),
            })
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.load();
        let routes: Vec<(&str, &'static str)> = state
            .routes
            .iter()
            .map(|r| (r.prefix.as_str(), r.backend.name()))
            .collect();
        f.debug_struct("Cache")
            .field("routes", &routes)
            .field("middlewares", &state.chain.len())
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new()
    }
}

/// Builds a [`Cache`] with chosen drivers and clock.
#[derive(Debug, Clone)]
pub struct CacheBuilder {
    drivers: Vec<Driver>,
    clock: Clock,
}

impl CacheBuilder {
    /// Adds a driver (a URL scheme the cache can set up).
    pub fn driver(mut self, driver: Driver) -> Self {
        self.drivers.retain(|d| d.name != driver.name);
        self.drivers.push(driver);
        self
    }

    /// Adds several drivers.
    pub fn drivers(self, drivers: impl IntoIterator<Item = Driver>) -> Self {
        drivers.into_iter().fold(self, CacheBuilder::driver)
    }

    /// The clock for expiry and timestamps ([`Clock::tokio`] in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The cache, with no backend yet: call [`Cache::setup`].
    pub fn build(self) -> Cache {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Cache {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                drivers: self.drivers,
                clock: self.clock,
                state: ArcSwap::from_pointee(State::default()),
                update: Mutex::new(()),
                next_middleware_id: AtomicU64::new(1),
                disabled: AtomicU64::new(0),
                stats: control::Stats::default(),
                flights: flight::Flights::default(),
                unconfigured_reported: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }
}

/// The drivers compiled into this build, by cargo feature: `mem://`
/// always, `redis://` with `redis`, `disk://` with `disk`, `memcached://` with
/// `memcached`, `dynamodb://` with `dynamodb`.
pub const DRIVERS: &[Driver] = &[
    crate::memory::DRIVER,
    #[cfg(feature = "redis")]
    cashews_redis::DRIVER,
    #[cfg(feature = "disk")]
    cashews_disk::DRIVER,
    #[cfg(feature = "memcached")]
    cashews_memcached::DRIVER,
    #[cfg(feature = "dynamodb")]
    cashews_dynamodb::DRIVER,
];

impl Cache {
    /// A cache that can set up every backend compiled in ([`DRIVERS`]),
    /// with no backend yet: call [`setup`](Cache::setup).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
    /// let cache = cashews_core::Cache::new();
    /// cache.setup("mem://?size=10000")?;
    /// cache.set("k", &"v").expire("1m").await?;
    /// assert_eq!(cache.get::<String>("k").await?.as_deref(), Some("v"));
    /// # Ok(()) }
    /// ```
    pub fn new() -> Cache {
        Cache::builder().build()
    }

    /// The process-wide default cache: the one `#[cache]` functions use
    /// when they name no other, and `cashews::setup` configures. It knows
    /// every backend compiled in and has none until set up.
    pub fn global() -> &'static Cache {
        static GLOBAL: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);
        &GLOBAL
    }

    /// [`new`](Cache::new), reading time from `clock` — [`Clock::tokio`]
    /// makes expiry follow `tokio::time::pause()` / `advance()` in tests.
    pub fn with_clock(clock: Clock) -> Cache {
        Cache::builder().clock(clock).build()
    }

    /// A builder, starting with every driver compiled in and the system
    /// clock.
    pub fn builder() -> CacheBuilder {
        CacheBuilder {
            drivers: DRIVERS.to_vec(),
            clock: Clock::system(),
        }
    }

    /// The clock the cache's backends and strategies read.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Whether commands on `key` complete in this process, with no I/O for
    /// a runtime to drive (its backend is the memory backend).
    pub fn in_process(&self, key: &str) -> bool {
        self.inner
            .state
            .load()
            .route(key)
            .is_ok_and(|route| route.backend.in_process())
    }

    /// Sets up the backend for every key from `url` (`"mem://?size=500"`,
    /// `"redis://localhost/0?secret=..."`). Replaces a backend set up before
    /// for the same (empty) prefix. Does no I/O.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown scheme (listing those compiled in), an
    /// unknown parameter (listing those accepted) or an invalid value.
    ///
    /// Parameters taken by the cache for every scheme: `secret` (sign values
    /// with an HMAC), `digestmod` (`sha256` default, `sha512`, `sha1`, `md5`),
    /// `codec` (`bincode` default, `json` with the `json` feature).
    pub fn setup(&self, url: &str) -> Result<()> {
        self.setup_prefix("", url)
    }

    /// Sets up a backend for the keys starting with `prefix`.
    pub fn setup_prefix(&self, prefix: &str, url: &str) -> Result<()> {
        let parsed = SetupUrl::parse(url)?;
        let driver = self
            .inner
            .drivers
            .iter()
            .find(|d| d.schemes.contains(&parsed.scheme.as_str()))
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .inner
                    .drivers
                    .iter()
                    .flat_map(|d| d.schemes.iter().map(|s| format!("{s}://")))
                    .collect();
                Error::config(format!(
                    "setup url {:?}: unknown scheme {:?}; compiled in: {} (enable the cargo feature of the backend you need)",
                    parsed.display,
                    parsed.scheme,
                    known.join(", ")
                ))
            })?;
        let mut params = parsed.params();
        let mut codec = params
            .take_with(
                "codec",
                &format!("one of {}", CodecKind::names().join(", ")),
                CodecKind::from_name,
            )?
            .unwrap_or_default();
        if let Some(pickle_type) = params.take("pickle_type") {
            codec = python_pickler(&parsed.display, codec, pickle_type)?;
        }
        let digest = params.take_with(
            "digestmod",
            &format!("one of {}", Digest::NAMES.join(", ")),
            Digest::from_name,
        )?;
        let secret = params.take("secret");
        let mut serializer = Serializer::new(codec);
        match (secret, digest) {
            (Some(""), _) => {
                return Err(Error::config(format!(
                    "setup url {:?}: secret is empty",
                    parsed.display
                )))
            }
            (Some(secret), digest) => {
                serializer = serializer.with_secret(secret.as_bytes(), digest.unwrap_or_default())
            }
            (None, Some(_)) => {
                return Err(Error::config(format!(
                    "setup url {:?}: digestmod is given without secret",
                    parsed.display
                )))
            }
            (None, None) => {}
        }
        let compression = params.take_with(
            "compress",
            &format!("one of {}", Compression::NAMES.join(", ")),
            Compression::from_name,
        )?;
        let compress_min = params.take_with(
            "compress_min",
            "a size such as 512, 1KiB or 1MiB",
            parse_size,
        )?;
        match (compression, compress_min) {
            (Some(compression), min) => {
                if let Some(feature) = compression.missing_feature() {
                    return Err(Error::config(format!(
                        "setup url {:?}: compress={} needs the cargo feature `{feature}`",
                        parsed.display,
                        compression.name()
                    )));
                }
                serializer =
                    serializer.with_compression(compression, min.unwrap_or(DEFAULT_COMPRESS_MIN));
            }
            (None, Some(_)) => {
                return Err(Error::config(format!(
                    "setup url {:?}: compress_min is given without compress",
                    parsed.display
                )))
            }
            (None, None) => {}
        }
        check_python_form(&parsed.display, &serializer, digest)?;
        let ctx = DriverContext::new(self.inner.clock.clone());
        let backend = (driver.connect)(&parsed, &mut params, &ctx)?;
        params.finish()?;
        self.add_backend(prefix, backend, serializer);
        Ok(())
    }

    /// Serves the keys starting with `prefix` from `backend` (for backends
    /// built by hand rather than from a URL).
    pub fn add_backend(&self, prefix: &str, backend: Arc<dyn Backend>, serializer: Serializer) {
        let route = Arc::new(Route {
            prefix: prefix.to_owned(),
            backend,
            serializer,
            decoder: NEXT_DECODER.fetch_add(1, Ordering::Relaxed),
        });
        self.update_state(|state| {
            state.routes.retain(|r| r.prefix != prefix);
            state.routes.push(route);
            state
                .routes
                .sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        });
    }

    /// The name of the backend serving `key` (`"memory"`, `"redis"`, ...).
    pub fn backend_name(&self, key: &str) -> Result<&'static str> {
        Ok(self.inner.state.load().route(key)?.backend.name())
    }

    /// Whether the backend serving `key` can run `command` (memcached, for
    /// one, cannot list keys: `scan`, `get_match`, `delete_match` and
    /// `get_keys_count` answer [`Error::Unsupported`] there).
    ///
    /// ```
    /// use cashews_core::{Cache, Command};
    /// let cache = Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(cache.supports("any", Command::Scan)?);
    /// # Ok::<(), cashews_core::Error>(())
    /// ```
    pub fn supports(&self, key: &str, command: Command) -> Result<bool> {
        let state = self.inner.state.load();
        Ok(!state.route(key)?.backend.unsupported().contains(&command))
    }

    /// Whether any backend is set up.
    pub fn is_setup(&self) -> bool {
        !self.inner.state.load().routes.is_empty()
    }

    /// Connects every backend now (they otherwise connect on first use) and
    /// reports the first failure.
    pub async fn init(&self) -> Result<()> {
        let state = self.inner.state.load_full();
        if state.routes.is_empty() {
            return Err(Error::NotConfigured { key: String::new() });
        }
        for route in &state.routes {
            route.backend.ping().await?;
        }
        Ok(())
    }

    /// Stops background work and closes every backend.
    pub async fn close(&self) -> Result<()> {
        let state = self.inner.state.load_full();
        for route in &state.routes {
            route.backend.close().await?;
        }
        Ok(())
    }

    fn update_state(&self, change: impl FnOnce(&mut State)) {
        let _writer = self.inner.update.lock();
        let current = self.inner.state.load();
        let mut next = State {
            routes: current.routes.clone(),
            chain: current.chain.clone(),
            ids: current.ids.clone(),
        };
        change(&mut next);
        self.inner.state.store(Arc::new(next));
    }

    /// Adds a middleware at the end of the chain (innermost); returns an id
    /// for [`Cache::remove_middleware`]. See [`crate::middleware`].
    pub fn add_middleware(&self, middleware: impl Middleware) -> MiddlewareId {
        let middleware: Arc<dyn Middleware> = Arc::new(middleware);
        let id = MiddlewareId(
            self.inner
                .next_middleware_id
                .fetch_add(1, Ordering::Relaxed),
        );
        self.update_state(|state| {
            state.chain.push(middleware);
            state.ids.push(id);
        });
        id
    }

    /// Removes a middleware; returns whether it was installed.
    pub fn remove_middleware(&self, id: MiddlewareId) -> bool {
        let mut found = false;
        self.update_state(|state| {
            if let Some(i) = state.ids.iter().position(|x| *x == id) {
                state.ids.remove(i);
                state.chain.remove(i);
                found = true;
            }
        });
        found
    }

    /// Runs a request routed by its key through the chain.
    pub(crate) async fn run_one(&self, request: Request<'_>) -> Result<Response> {
        let state = self.inner.state.load_full();
        let route = state.route(request.key().unwrap_or(""))?;
        self.run_on(&state, route, request).await
    }

    async fn run_on<'a>(
        &self,
        state: &'a State,
        route: &'a Route,
        request: Request<'a>,
    ) -> Result<Response> {
        if self.is_disabled(request.command()) {
            return Ok(request.disabled_response());
        }
        if let Some(reads) = crate::scope::reads() {
            if matches!(
                request.command(),
                Command::Get | Command::GetRaw | Command::GetMany
            ) {
                return self.run_scoped_read(&reads, state, route, request).await;
            }
        }
        Next::new(&state.chain, &*route.backend, &route.prefix)
            .run(request)
            .await
    }

    /// A read inside `detect` or `invalidate_further` (see [`crate::scope`]).
    async fn run_scoped_read<'a>(
        &self,
        reads: &Reads,
        state: &'a State,
        route: &'a Route,
        request: Request<'a>,
    ) -> Result<Response> {
        let keys: Vec<String> = match &request {
            Request::GetMany { keys } => keys.iter().map(|k| k.to_string()).collect(),
            other => other.key().map(str::to_owned).into_iter().collect(),
        };
        let next = Next::new(&state.chain, &*route.backend, &route.prefix);
        if reads.invalidate {
            // As `delete_many`, without going through `run_on` again: the
            // keys on this route, their tags on theirs.
            let delete = |keys: Vec<String>| Request::DeleteMany {
                keys: keys.into_iter().map(Cow::Owned).collect(),
            };
            let tags = tags::records_of(keys.iter().map(String::as_str));
            next.run(delete(keys)).await?;
            if let Some(first) = tags.first() {
                let tags_route = state.route(first)?;
                Next::new(&state.chain, &*tags_route.backend, &tags_route.prefix)
                    .run(delete(tags))
                    .await?;
            }
            return Ok(request.disabled_response());
        }
        let response = next.run(request).await?;
        let hits: Vec<bool> = match &response {
            Response::Value(value) => vec![value.is_some()],
            Response::Values(values) => values.iter().map(Option::is_some).collect(),
            _ => Vec::new(),
        };
        for (key, _) in keys.into_iter().zip(hits).filter(|(_, hit)| *hit) {
            let ttl = next
                .run(Request::GetExpire {
                    key: key.as_str().into(),
                })
                .await?
                .into_expiry(Command::GetExpire)?;
            reads.record(Detected {
                key,
                backend: route.backend.name(),
                ttl,
            });
        }
        Ok(response)
    }
}

/// What strategies need of a cache beyond its commands.
impl Cache {
    /// Decodes `bytes` stored at `key` with the key's serializer; `None`
    /// when they do not decode (nothing is recorded or deleted).
    pub(crate) fn decode_shared<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> Option<T> {
        let state = self.inner.state.load();
        let route = state.route(key).ok()?;
        match route.serializer.decode::<T>(key, bytes) {
            crate::codec::Decoded::Value(value) => Some(value),
            crate::codec::Decoded::Miss(_) => None,
        }
    }

    /// Reports a cached call's cache failure: a cache with no backend set up
    /// for the key is reported once per cache, at error level and naming
    /// the function (and in debug builds also on stderr, so it is seen
    /// without a tracing subscriber); any other failure is a warning.
    pub(crate) fn report_failure(
        &self,
        error: &Error,
        function: Option<&str>,
        key: &str,
        what: &str,
    ) {
        if matches!(error, Error::NotConfigured { .. }) {
            if !self
                .inner
                .unconfigured_reported
                .swap(true, Ordering::Relaxed)
            {
                let function = function.unwrap_or(key);
                tracing::error!(
                    function,
                    "cashews: {function} was called before the cache was set up (call cashews::setup(url) or Cache::setup at start-up); cached functions run without caching until then"
                );
                #[cfg(debug_assertions)]
                eprintln!(
                    "cashews: {function} was called before the cache was set up (call cashews::setup(url) or Cache::setup at start-up); cached functions run without caching until then"
                );
            }
            return;
        }
        tracing::warn!(key, %error, "{what}");
    }

    /// Joins the flight computing `key` in this process, or leads it.
    pub(crate) fn join_flight(&self, key: &str) -> flight::Role<'_> {
        self.inner.flights.join(key)
    }
}

/// `512`, `1KiB`, `1KB`, `2MiB`: bytes (K = 1024).
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: usize = text[..digits].parse().ok()?;
    let scale = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// `pickle_type=` (cashews' name): how `codec=cashews` pickles.
fn python_pickler(url: &str, codec: CodecKind, pickle_type: &str) -> Result<CodecKind> {
    #[cfg(feature = "python")]
    if let CodecKind::Cashews(_) = codec {
        return match crate::codec::Pickler::from_name(pickle_type) {
            Some(Ok(pickler)) => Ok(CodecKind::Cashews(pickler)),
            Some(Err(feature)) => Err(Error::config(format!(
                "setup url {url:?}: pickle_type={pickle_type} needs the cargo feature `{feature}`"
            ))),
            None => Err(Error::config(format!(
                "setup url {url:?}: pickle_type={pickle_type:?} is not one of {}",
                crate::codec::Pickler::NAMES.join(", ")
            ))),
        };
    }
    let _ = (codec, pickle_type);
    Err(Error::config(format!(
        "setup url {url:?}: pickle_type is given without codec=cashews"
    )))
}

/// `codec=cashews` writes what Python cashews reads: its digests and
/// compressions only, and the digest named (cashews' default, md5, is not
/// this library's, and a mismatch would make every value a silent miss).
fn check_python_form(url: &str, serializer: &Serializer, digest: Option<Digest>) -> Result<()> {
    #[cfg(feature = "python")]
    if let CodecKind::Cashews(_) = serializer.codec() {
        if serializer.is_signed() && digest.is_none() {
            return Err(Error::config(format!(
                "setup url {url:?}: codec=cashews with a secret needs digestmod= set to the Python side's (cashews' default is md5)"
            )));
        }
        if digest == Some(Digest::Sha512) {
            return Err(Error::config(format!(
                "setup url {url:?}: cashews signs with md5, sha1 or sha256, not sha512"
            )));
        }
        if let Some((Compression::Zstd, _)) = serializer.compression() {
            return Err(Error::config(format!(
                "setup url {url:?}: cashews compresses with gzip or zlib, not zstd"
            )));
        }
    }
    let _ = (url, serializer, digest);
    Ok(())
}
