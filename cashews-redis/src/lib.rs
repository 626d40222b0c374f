//! The Redis backend of [cashews](https://docs.rs/cashews):
//! `redis://[user:pass@]host:port/db?...`, a cluster with
//! `redis://host1:port1,host2:port2?cluster=true`, a unix socket with
//! `redis+unix:///run/redis.sock?db=0` (or `unix://`), TLS with `rediss://`
//! (feature `tls`). A [`RedisBackend`] can also be built from a
//! [`RedisConfig`] (its builder) or around an existing redis-rs `Client`.
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `suppress` | `true` | a connection failure or timeout of a command with a neutral answer reads as a miss / `false` (logged, counted) instead of an error; commands with no neutral answer (`incr`, `slice_incr`, locks, bits) return the error, data errors (a wrong type, an overflow) always surface, and so does `ping` |
//! | `connect_timeout` | `1s` | how long a connection attempt may take (above zero) |
//! | `response_timeout` | `1s` | the deadline of every command, connecting, redis-rs' retry and enabling client tracking included (above zero) |
//! | `client_name` | `cashews` | `CLIENT SETNAME` of the connection (single server) |
//! | `protocol` | `resp2` (`resp3` with `client_side`) | redis-rs' protocol parameter |
//! | `db` | `0` | unix sockets only: the database (a tcp url names it as its path) |
//! | `ssl_ca_certs` | system roots | `rediss://` only: a PEM file of the CA(s) to trust |
//! | `ssl_certfile`, `ssl_keyfile` | none | `rediss://` only: a client certificate and key (PEM) for mutual TLS |
//! | `cluster` | `false` | the hosts are seeds of a Redis Cluster |
//! | `batch` | `true` | concurrent `get`s that arrive while the connection is busy leave together as one `MGET` (below) |
//! | `client_side` | `false` | keep values in process, invalidated by the server (below) |
//! | `client_side_prefix` | `""` (every key) | only keys starting with it are kept in process |
//! | `local_size` | `10000` | the most values kept in process |
//! | `local_max_ttl` | `10m` | the longest a value is kept in process |
//! | `client_side_check` | `1s` | cluster only: how often every primary is asked whether it still tracks this client (below) |
//! | `sentinel_username`, `sentinel_password` | none | `redis+sentinel://`: the sentinels' credentials |
//! | `wait_replicas` | `0` | `redis+sentinel://`: a write is acknowledged once this many replicas have it (`WAIT`) |
//! | `read_from_replicas` | `false` | `redis+sentinel://`: reads go to a replica (they may miss the latest writes); back to the primary while no replica answers |
//!
//! The TLS files are read at setup, so a missing file is a configuration
//! error there, not at the first command.
//!
//! The connection is made on first use and re-made after a failure
//! (redis-rs' connection manager), so a restarted server is used again
//! without re-creating the cache.
//!
//! # Sentinel
//!
//! `redis+sentinel://[user:pass@]host:port[,host:port]/service[/db]` asks
//! the sentinels for the primary of `service`, and asks again when the
//! connection to it breaks (an I/O error, a timeout, `READONLY`, or a
//! command abandoned after a quarter second), so a failover is followed
//! without re-creating the backend. `wait_replicas=N` acknowledges a write
//! once `N` replicas have it; `read_from_replicas=true` sends reads to a
//! replica (they may lag), back to the primary when it fails or does not
//! answer within a quarter of `response_timeout`.
//!
//! # Cluster
//!
//! With `cluster=true` every command works across slots: keys are routed by
//! slot, `get_many` / `delete_many` are split per slot, `set_many` runs one
//! `MULTI` per slot (atomic per slot, not across slots), and `scan`,
//! `get_match`, `delete_match`, `clear` and `get_keys_count` visit every
//! primary. Every Lua script of this backend touches one key, so locks, rate
//! limits and sliding windows stay in one slot. A cluster has database 0
//! only. After a primary is lost, commands follow the promoted replica; a
//! cluster connection on which nothing answers for two `response_timeout`s
//! is replaced by a new one, made on the side while commands go on.
//!
//! # Automatic batching
//!
//! While 8 `get`s are waiting for their replies, further `get`s queue, and
//! the queue leaves as one `MGET` (each distinct key once, at most 16 keys)
//! as soon as a request ends or the queue is full. A `get` arriving while
//! fewer are in flight is sent at once — there is no timer — so batching
//! only changes anything under concurrency, where one request for many keys
//! costs the server and this process's wake-ups less than a request per
//! key. Each caller gets its own key's value or the batch's error within its
//! own deadline; a caller that goes away does not disturb the others. A
//! batch is sent after all its callers started, so it never answers older
//! data than a lone `GET` would. Keys kept by client-side caching are read
//! with their TTL as before, unbatched. `batch=false` sends every `get`
//! alone.
//!
//! # Client-side caching
//!
//! With `client_side=true` the backend speaks RESP3 and turns on
//! `CLIENT TRACKING ON BCAST [PREFIX p] NOLOOP`: the server reports every
//! change of a key under the prefix, whoever made it. Reads of such keys are
//! served from a local LRU (filled by `get`, with the server's TTL capped by
//! `local_max_ttl`), which a report clears. This process's own writes update
//! the local copy and Redis. Unlike Python cashews, keys are not rewritten:
//! `client_side_prefix` only selects which keys are kept locally.
//!
//! - A report that arrives while a `get` reply is in flight wins: the reply
//!   is not stored (a generation per local shard, read before the request and
//!   checked under the shard's lock when storing).
//! - Reports are applied on the connection's read loop, before any reply read
//!   after them is returned: once a reply is returned, no local read serves a
//!   value whose report arrived ahead of it (single server: its connection is
//!   a multiplexed connection re-made by this crate when it breaks, not
//!   redis-rs' connection manager, which hands reports to another task).
//! - The whole local copy is dropped when the connection is lost, on a
//!   `FLUSHDB` report, and when the report channel closes; it stays unused
//!   until tracking is on again for the new connection (redis-rs reconnects,
//!   but tracking belongs to a connection, so it is re-enabled before the
//!   next read is served locally).
//! - On a cluster tracking is enabled on every primary (each reports the
//!   keys it holds); a lost node connection drops the local copy as above.
//!   Every `client_side_check` (1 s) each primary is asked whether it still
//!   tracks this client: a node reached later (a promoted replica, a node a
//!   slot moved to) would not report writes, so the local copy is dropped
//!   and tracking turned on again when one does not.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod batch;
mod commands;
mod connection;
mod scripts;
mod tracking;

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use cashews_backend::driver::{Driver, DriverContext};
use cashews_backend::url::{Params, SetupUrl};
use cashews_backend::{
    Availability, Backend, Clock, Command, Error, IntoTtl, NetworkParams, Result,
};

use connection::{Conn, Connector};
use tracking::Tracking;

/// The `redis://` driver.
pub const DRIVER: Driver = Driver {
    name: "redis",
    #[cfg(feature = "tls")]
    schemes: &["redis", "rediss", "redis+unix", "unix", "redis+sentinel"],
    #[cfg(not(feature = "tls"))]
    schemes: &["redis", "redis+unix", "unix", "redis+sentinel"],
    connect,
};

fn connect(
    url: &SetupUrl,
    params: &mut Params<'_>,
    ctx: &DriverContext,
) -> Result<Arc<dyn Backend>> {
    let config = RedisConfig::from_url(url, params)?;
    Ok(Arc::new(RedisBackend::with_clock(
        config,
        ctx.clock.clone(),
    )?))
}

/// Settings of a [`RedisBackend`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The URLs given to redis-rs (without cashews' parameters): one, or
    /// the seed nodes of a cluster.
    pub addresses: Vec<String>,
    /// The addresses are nodes of a Redis Cluster.
    pub cluster: bool,
    /// Turns connection failures into misses.
    pub suppress: bool,
    /// Timeout of a connection attempt.
    pub connect_timeout: Duration,
    /// Timeout of a command.
    pub response_timeout: Duration,
    /// The connection's client name.
    pub client_name: String,
    /// PEM of the CA(s) to trust (`rediss://`); `None`: the system's roots.
    pub ca_certs: Option<Vec<u8>>,
    /// PEM client certificate and key, for mutual TLS.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// Client-side caching, when enabled.
    pub client_side: Option<ClientSideConfig>,
    /// Concurrent `get`s queued while the connection is busy leave as one
    /// `MGET` (`batch`, on by default).
    pub batch: bool,
    /// The primary is found through Redis Sentinel (`redis+sentinel://`);
    /// `addresses` are then the sentinels'.
    pub sentinel: Option<SentinelConfig>,
}

/// Where Redis Sentinel is asked for the primary (`redis+sentinel://`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentinelConfig {
    /// The name the sentinels monitor the primary by.
    pub service: String,
    /// The database on the primary.
    pub db: i64,
    /// Credentials of the primary (the url's `user:pass@`; those of the
    /// sentinels are `sentinel_username` / `sentinel_password`).
    pub username: Option<String>,
    /// See `username`.
    pub password: Option<String>,
    /// Writes are acknowledged once this many replicas have them (`WAIT`;
    /// `wait_replicas`, 0: as soon as the primary has them).
    pub wait_replicas: u32,
    /// Reads go to a replica the sentinels name (`read_from_replicas`);
    /// they may miss the latest writes. A replica that fails, or does not
    /// answer within a quarter of `response_timeout`, sends reads back to
    /// the primary until another is found.
    pub read_from_replicas: bool,
}

/// Settings of client-side caching (`client_side=true`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSideConfig {
    /// Only keys starting with this are kept locally (and tracked).
    pub prefix: String,
    /// The most values kept locally.
    pub local_size: NonZeroUsize,
    /// The longest a value is kept locally.
    pub local_max_ttl: Duration,
    /// Cluster only: how often every primary is asked whether it still
    /// tracks this client. A node reached after tracking was turned on (a
    /// slot moved to it) does not report writes until the check finds it;
    /// this bounds how long a value changed there may be served locally.
    pub check_interval: Duration,
}

impl Default for ClientSideConfig {
    fn default() -> Self {
        ClientSideConfig {
            prefix: String::new(),
            local_size: NonZeroUsize::new(10_000).expect("non-zero"),
            local_max_ttl: Duration::from_secs(600),
            check_interval: Duration::from_secs(1),
        }
    }
}

/// `redis://127.0.0.1:6379/0` with every default.
impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig::parse("redis://127.0.0.1:6379/0").expect("the default url parses")
    }
}

/// A typed builder beside URL strings: start from [`RedisConfig::default`]
/// or [`RedisConfig::parse`], then change what differs.
///
/// ```
/// use cashews_redis::RedisConfig;
/// let config = RedisConfig::parse("redis://cache.internal:6379/2")?
///     .response_timeout("300ms")?
///     .suppress(false)
///     .client_name("billing");
/// assert!(!config.suppress);
/// # Ok::<(), cashews_backend::Error>(())
/// ```
impl RedisConfig {
    /// Turns connection failures into misses (`true`) or errors.
    pub fn suppress(mut self, suppress: bool) -> Self {
        self.suppress = suppress;
        self
    }

    /// The deadline of every command.
    pub fn response_timeout(mut self, timeout: impl IntoTtl) -> Result<Self> {
        self.response_timeout = cashews_backend::ttl::finite(timeout, "response_timeout")?;
        Ok(self)
    }

    /// How long a connection attempt may take.
    pub fn connect_timeout(mut self, timeout: impl IntoTtl) -> Result<Self> {
        self.connect_timeout = cashews_backend::ttl::finite(timeout, "connect_timeout")?;
        Ok(self)
    }

    /// The connection's client name.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Whether concurrent `get`s may leave together as one `MGET`.
    pub fn batch(mut self, batch: bool) -> Self {
        self.batch = batch;
        self
    }

    /// Client-side caching with `config` (over RESP3; a client given to
    /// [`RedisBackend::from_client`] must speak RESP3 itself).
    pub fn client_side(mut self, config: ClientSideConfig) -> Self {
        self.client_side = Some(config);
        // Tracking reports travel on RESP3.
        for address in &mut self.addresses {
            if !address.contains("protocol=") {
                address.push(if address.contains('?') { '&' } else { '?' });
                address.push_str("protocol=resp3");
            }
        }
        self
    }
}

impl RedisConfig {
    /// The settings a `redis://` URL names (backend parameters only): for
    /// building a [`RedisBackend`] by hand.
    ///
    /// ```
    /// let config = cashews_redis::RedisConfig::parse("redis://127.0.0.1:6379/0?client_side=true")?;
    /// assert!(config.client_side.is_some());
    /// # Ok::<(), cashews_backend::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<RedisConfig> {
        SetupUrl::parse_with(url, RedisConfig::from_url)
    }

    /// Reads the parameters of a `redis://` URL.
    pub fn from_url(url: &SetupUrl, params: &mut Params<'_>) -> Result<RedisConfig> {
        let invalid = |message: String| url.invalid(message);
        if url.scheme == "redis+sentinel" {
            return RedisConfig::from_sentinel_url(url, params);
        }
        let unix = matches!(url.scheme.as_str(), "redis+unix" | "unix");
        let cluster = params.bool("cluster")?.unwrap_or(false);
        let hosts: Vec<&str> = if unix {
            if !url.hosts.is_empty() || url.path.is_empty() {
                return Err(invalid(
                    "a unix socket url names the socket's path: redis+unix:///run/redis.sock?db=0"
                        .into(),
                ));
            }
            if cluster {
                return Err(invalid(
                    "a cluster is reached over tcp, not a unix socket".into(),
                ));
            }
            Vec::new()
        } else if url.hosts.is_empty() {
            vec!["127.0.0.1:6379"]
        } else {
            url.hosts.split(',').map(str::trim).collect()
        };
        if hosts.iter().any(|h| h.is_empty()) {
            return Err(invalid("an empty host in the host list".into()));
        }
        if hosts.len() > 1 && !cluster {
            return Err(invalid(
                "several hosts are the nodes of a cluster: add cluster=true".into(),
            ));
        }
        let db_param = params.take("db");
        let db = match (unix, db_param) {
            (true, Some(db)) => db,
            (true, None) => "0",
            (false, Some(_)) => {
                return Err(invalid(
                    "the database is the url's path (redis://host:6379/2), not a db parameter"
                        .into(),
                ))
            }
            (false, None) if url.path.is_empty() => "0",
            (false, None) => url.path.as_str(),
        };
        if db.parse::<u16>().is_err() {
            return Err(invalid(format!(
                "the path must be a database number, got {db:?}"
            )));
        }
        if cluster && db != "0" {
            return Err(invalid(format!(
                "a cluster has database 0 only, got {db:?}"
            )));
        }
        let auth = url
            .userinfo
            .as_deref()
            .map(|info| {
                let (user, pass) = info.split_once(':').unwrap_or(("", info));
                format!("{}:{}@", encode(user), encode(pass))
            })
            .unwrap_or_default();
        let read = |name: &'static str, params: &mut Params<'_>| -> Result<Option<Vec<u8>>> {
            let Some(path) = params.take(name) else {
                return Ok(None);
            };
            if url.scheme != "rediss" {
                return Err(invalid(format!("{name} needs a rediss:// url")));
            }
            std::fs::read(path)
                .map(Some)
                .map_err(|e| invalid(format!("cannot read {name} {path:?}: {e}")))
        };
        let ca_certs = read("ssl_ca_certs", params)?;
        let client_cert = match (read("ssl_certfile", params)?, read("ssl_keyfile", params)?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(invalid("ssl_certfile and ssl_keyfile go together".into())),
        };
        let client_side = ClientSideConfig::from_params(params, &invalid)?;
        let batch = params.bool("batch")?.unwrap_or(true);
        // redis-rs' own `protocol` parameter; RESP3 carries the tracking
        // reports of client-side caching on the data connection.
        let protocol = match (params.take("protocol"), client_side.is_some()) {
            (None, false) => None,
            (None | Some("resp3"), true) | (Some("resp3"), false) => Some("resp3"),
            (Some("resp2"), false) => Some("resp2"),
            (Some("resp2"), true) => {
                return Err(invalid("client_side=true needs protocol=resp3".into()))
            }
            (Some(other), _) => {
                return Err(invalid(format!(
                    "protocol is resp2 or resp3, got {other:?}"
                )))
            }
        };
        let addresses = if unix {
            let mut query = format!("db={db}");
            if let Some(protocol) = protocol {
                query.push_str(&format!("&protocol={protocol}"));
            }
            if let Some(info) = url.userinfo.as_deref() {
                let (user, pass) = info.split_once(':').unwrap_or(("", info));
                if !user.is_empty() {
                    query.push_str(&format!("&user={}", encode(user)));
                }
                query.push_str(&format!("&pass={}", encode(pass)));
            }
            vec![format!("redis+unix:///{}?{query}", url.path)]
        } else {
            let protocol = protocol
                .map(|p| format!("?protocol={p}"))
                .unwrap_or_default();
            hosts
                .iter()
                .map(|host| format!("{}://{auth}{host}/{db}{protocol}", url.scheme))
                .collect()
        };
        let network = NetworkParams::take(params)?;
        Ok(RedisConfig {
            ca_certs,
            client_cert,
            addresses,
            cluster,
            client_side,
            batch,
            suppress: network.suppress,
            connect_timeout: network.connect_timeout,
            response_timeout: network.response_timeout,
            client_name: params.take("client_name").unwrap_or("cashews").to_owned(),
            sentinel: None,
        })
    }

    /// `redis+sentinel://[user:pass@]host:port[,host:port]/service[/db]`.
    fn from_sentinel_url(url: &SetupUrl, params: &mut Params<'_>) -> Result<RedisConfig> {
        let invalid = |message: String| url.invalid(message);
        let hosts: Vec<&str> = if url.hosts.is_empty() {
            vec!["127.0.0.1:26379"]
        } else {
            url.hosts.split(',').map(str::trim).collect()
        };
        if hosts.iter().any(|h| h.is_empty()) {
            return Err(invalid("an empty host in the sentinel list".into()));
        }
        let (service, db) = url.path.split_once('/').unwrap_or((&url.path, "0"));
        if service.is_empty() {
            return Err(invalid(
                "the path names the monitored service: redis+sentinel://host:26379/mymaster[/db]"
                    .into(),
            ));
        }
        let Ok(db) = db.parse::<u16>() else {
            return Err(invalid(format!(
                "the database must be a number, got {db:?}"
            )));
        };
        for refused in ["cluster", "client_side", "db"] {
            if params.take(refused).is_some() {
                return Err(invalid(format!("{refused} is not supported with sentinel")));
            }
        }
        let sentinel_auth = match (
            params.take("sentinel_username"),
            params.take("sentinel_password"),
        ) {
            (None, None) => String::new(),
            (user, pass) => format!(
                "{}:{}@",
                encode(user.unwrap_or_default()),
                encode(pass.unwrap_or_default())
            ),
        };
        let (username, password) = match url.userinfo.as_deref() {
            None => (None, None),
            Some(info) => {
                let (user, pass) = info.split_once(':').unwrap_or(("", info));
                (
                    (!user.is_empty()).then(|| user.to_owned()),
                    Some(pass.to_owned()),
                )
            }
        };
        let batch = params.bool("batch")?.unwrap_or(true);
        let wait_replicas = params
            .take_with("wait_replicas", "a number of replicas", |s| {
                s.trim().parse().ok()
            })?
            .unwrap_or(0);
        let read_from_replicas = params.bool("read_from_replicas")?.unwrap_or(false);
        let network = NetworkParams::take(params)?;
        Ok(RedisConfig {
            ca_certs: None,
            client_cert: None,
            addresses: hosts
                .iter()
                .map(|host| format!("redis://{sentinel_auth}{host}"))
                .collect(),
            cluster: false,
            client_side: None,
            batch,
            suppress: network.suppress,
            connect_timeout: network.connect_timeout,
            response_timeout: network.response_timeout,
            client_name: params.take("client_name").unwrap_or("cashews").to_owned(),
            sentinel: Some(SentinelConfig {
                service: service.to_owned(),
                db: i64::from(db),
                username,
                password,
                wait_replicas,
                read_from_replicas,
            }),
        })
    }
}

impl ClientSideConfig {
    fn from_params(
        params: &mut Params<'_>,
        invalid: &dyn Fn(String) -> Error,
    ) -> Result<Option<ClientSideConfig>> {
        let enabled = params.bool("client_side")?.unwrap_or(false);
        let mut config = ClientSideConfig::default();
        let prefix = params.take("client_side_prefix");
        let size = params.take_with("local_size", "a positive integer", |s| {
            s.trim().parse::<usize>().ok().and_then(NonZeroUsize::new)
        })?;
        let max_ttl = params.duration("local_max_ttl")?;
        let check = params.duration("client_side_check")?;
        if !enabled {
            if prefix.is_some() || size.is_some() || max_ttl.is_some() || check.is_some() {
                return Err(invalid(
                    "client_side_prefix, local_size, local_max_ttl and client_side_check need client_side=true".into(),
                ));
            }
            return Ok(None);
        }
        if let Some(prefix) = prefix {
            config.prefix = prefix.to_owned();
        }
        if let Some(size) = size {
            config.local_size = size;
        }
        if let Some(max_ttl) = max_ttl {
            if max_ttl.is_zero() {
                return Err(invalid("local_max_ttl must be positive".into()));
            }
            config.local_max_ttl = max_ttl;
        }
        if let Some(check) = check {
            if check.is_zero() {
                return Err(invalid("client_side_check must be positive".into()));
            }
            config.check_interval = check;
        }
        Ok(Some(config))
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A Redis server (or cluster) as a cache backend.
pub struct RedisBackend {
    shared: Arc<Shared>,
}

/// What the backend and its streams share.
pub(crate) struct Shared {
    connector: Connector,
    pub(crate) config: RedisConfig,
    /// Deadlines, the down window and `suppress`.
    availability: Availability,
    /// Client-side caching, when enabled.
    pub(crate) tracking: Option<Arc<Tracking>>,
    /// The queue of `get`s (`batch=true`).
    pub(crate) batcher: Option<batch::Batcher>,
    /// This, for the tasks that send batches.
    pub(crate) me: Weak<Shared>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("cluster", &self.shared.config.cluster)
            .field("suppress", &self.shared.config.suppress)
            .field("suppressed", &self.suppressed_errors())
            .field("tracking", &self.shared.tracking)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for `config`; connects on first use.
    pub fn new(config: RedisConfig) -> Result<RedisBackend> {
        RedisBackend::with_clock(config, Clock::system())
    }

    /// A backend for `config` whose local copies (client-side caching)
    /// expire on `clock`.
    pub fn with_clock(config: RedisConfig, clock: Clock) -> Result<RedisBackend> {
        let tracking = config
            .client_side
            .as_ref()
            .map(|c| Arc::new(Tracking::new(c, clock, config.cluster)));
        let connector = Connector::new(&config, tracking.clone())
            .map_err(|e| Error::config(format!("invalid redis address: {e}")))?;
        Ok(RedisBackend::assemble(config, connector, tracking))
    }

    /// A backend on a redis-rs [`Client`](redis::Client) the application
    /// already has (one server; its address, credentials and TLS are the
    /// client's). `config` gives the rest ([`RedisConfig::default`], or
    /// parsed from a URL); its addresses are not used.
    ///
    /// ```
    /// use cashews_redis::{RedisBackend, RedisConfig};
    /// let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    /// let backend = RedisBackend::from_client(client, RedisConfig::default().response_timeout("250ms")?);
    /// # let _ = backend;
    /// # Ok::<(), cashews_backend::Error>(())
    /// ```
    pub fn from_client(client: redis::Client, config: RedisConfig) -> RedisBackend {
        let tracking = config
            .client_side
            .as_ref()
            .map(|c| Arc::new(Tracking::new(c, Clock::system(), false)));
        let connector = Connector::on_client(client, tracking.clone());
        RedisBackend::assemble(config, connector, tracking)
    }

    fn assemble(
        config: RedisConfig,
        connector: Connector,
        tracking: Option<Arc<Tracking>>,
    ) -> RedisBackend {
        let availability = Availability::new("redis", config.suppress, config.response_timeout);
        let batcher = config.batch.then(batch::Batcher::new);
        RedisBackend {
            shared: Arc::new_cyclic(|me| Shared {
                connector,
                config,
                availability,
                tracking,
                batcher,
                me: me.clone(),
            }),
        }
    }

    /// How many failures were turned into misses (`suppress=true`).
    pub fn suppressed_errors(&self) -> u64 {
        self.shared.availability.suppressed()
    }

    /// How many values client-side caching holds in process now (0 when it
    /// is off).
    pub fn local_len(&self) -> u64 {
        self.shared.tracking.as_ref().map_or(0, |t| t.cache.len())
    }

    /// Whether client-side caching serves reads now (tracking is on for the
    /// current connection).
    pub fn is_tracking(&self) -> bool {
        self.shared
            .tracking
            .as_ref()
            .is_some_and(|t| t.cache.is_enabled())
    }
}

impl Shared {
    /// The connection, made on first use (inside the runtime).
    pub(crate) async fn connection(&self) -> Result<Conn> {
        match self.connector.ready() {
            Some(connection) => Ok(connection),
            // Boxed: making the connection is a large future that every
            // command's future would otherwise carry.
            None => Box::pin(self.connector.connection(&self.config)).await,
        }
    }

    /// When a command starting now must have ended: `response_timeout` from
    /// now, covering connecting, redis-rs' retry and enabling tracking.
    #[inline]
    pub(crate) fn deadline(&self) -> Instant {
        self.availability.deadline()
    }

    /// Runs a command within its deadline; with `suppress`, a connection
    /// failure or timeout answers `fallback` (a miss, "not stored").
    pub(crate) fn run<'a, T, F, Fut>(
        &'a self,
        command: Command,
        key: &'a str,
        fallback: impl FnOnce() -> T + 'a,
        call: F,
    ) -> impl Future<Output = Result<T>> + 'a
    where
        F: FnOnce(Conn) -> Fut + 'a,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'a,
        T: 'a,
    {
        self.run_by(self.deadline(), command, key, fallback, call)
    }

    /// [`Shared::run`] with a deadline taken earlier (a command that also
    /// enables tracking spends one deadline on both).
    ///
    /// Not an `async fn`: the command's future is held once, inside the
    /// deadline's future, instead of once per layer.
    pub(crate) fn run_by<'a, T, F, Fut>(
        &'a self,
        deadline: Instant,
        command: Command,
        key: &'a str,
        fallback: impl FnOnce() -> T + 'a,
        call: F,
    ) -> impl Future<Output = Result<T>> + 'a
    where
        F: FnOnce(Conn) -> Fut + 'a,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'a,
        T: 'a,
    {
        self.availability
            .run_by(deadline, command, fallback, self.attempt(key, call))
    }

    /// Runs a command that has no neutral answer (a counter, a window, a
    /// lock, bits): a failure is its error even with `suppress`, since any
    /// answer would be made up.
    pub(crate) fn run_strict<'a, T, F, Fut>(
        &'a self,
        command: Command,
        key: &'a str,
        call: F,
    ) -> impl Future<Output = Result<T>> + 'a
    where
        F: FnOnce(Conn) -> Fut + 'a,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'a,
        T: 'a,
    {
        self.run_strict_by(self.deadline(), command, key, call)
    }

    pub(crate) fn run_strict_by<'a, T, F, Fut>(
        &'a self,
        deadline: Instant,
        command: Command,
        key: &'a str,
        call: F,
    ) -> impl Future<Output = Result<T>> + 'a
    where
        F: FnOnce(Conn) -> Fut + 'a,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'a,
        T: 'a,
    {
        self.availability
            .run_strict_by(deadline, command, self.attempt(key, call))
    }

    /// One command on the connection, its errors mapped (a refused
    /// connection marks the server down).
    async fn attempt<T, F, Fut>(&self, key: &str, call: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>> + Send,
    {
        let connection = self.connection().await?;
        call(connection).await.map_err(|e| {
            if e.is_connection_refusal() {
                self.availability.mark_down();
            }
            map_error(e, key)
        })
    }
}

pub(crate) fn backend_error(error: redis::RedisError) -> Error {
    let transient = error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal();
    Error::backend("redis", transient, error)
}

/// Maps redis errors to the library's by error code: data errors keep their
/// meaning (Redis's `WRONGTYPE`, and the codes our scripts reply), also
/// when they come back inside a pipeline or a transaction.
fn map_error(error: redis::RedisError, key: &str) -> Error {
    let code = error.code().map(str::to_owned).or_else(|| {
        let failures = error.clone().into_server_errors()?;
        failures
            .iter()
            .map(|(_, failure)| failure.code())
            .find(|code| [scripts::WRONG_TYPE, scripts::OVERFLOW].contains(code))
            .map(str::to_owned)
    });
    match code.as_deref() {
        Some(scripts::WRONG_TYPE) => Error::WrongType {
            key: key.to_owned(),
            expected: "another kind of value",
        },
        Some(scripts::OVERFLOW) => Error::Overflow {
            key: key.to_owned(),
        },
        _ => backend_error(error),
    }
}
