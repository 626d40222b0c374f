//! The memcached backend of [cashews](https://docs.rs/cashews):
//! `memcached://host[:port][,host[:port]...]?...` (port 11211 by
//! default), over memcached's meta protocol (memcached 1.6 or later).
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `suppress` | `true` | a connection failure or timeout of a command with a neutral answer reads as a miss / `false` (logged, counted) instead of an error; counters, windows, locks, bits, sets, `ping` and `clear` return the error |
//! | `connect_timeout` | `1s` | how long a connection attempt may take |
//! | `response_timeout` | `1s` | the deadline of every command, connecting and compare-and-swap retries included |
//!
//! With several servers a key lives on one of them, chosen by rendezvous
//! hashing of the key and the `host:port` as written in the URL: stable
//! across processes and versions, and adding or removing a server moves
//! only the keys that go to it or came from it. A server that refused a
//! connection or missed a deadline is taken to be down for one
//! `response_timeout` (its commands fail at once); the others keep serving.
//!
//! # What memcached can and cannot do
//!
//! - **Atomic without a round trip more:** `get`, `get_many` (one pipeline
//!   per server), `set`, `set_many`, `delete`, `delete_many`, `exists`,
//!   `get_expire`, `get_size`, `ping`, `clear` (`flush_all` on every server:
//!   every key on them, not only this cache's).
//! - **Compare-and-swap loops** (read the item with its CAS value, write it
//!   back only if unchanged, retry otherwise, all within
//!   `response_timeout`): `set` only-if-absent / only-if-present, `incr`,
//!   `expire`, locks (`unlock` checks the token and deletes only the item it
//!   read), bits, sets, sliding windows. Each is atomic: a concurrent writer
//!   makes it retry, never lose an update.
//! - **Unsupported** (memcached cannot list keys): `scan`, `get_match`,
//!   `delete_match`, `get_keys_count` return `Error::Unsupported`; so does
//!   what is built on them (pattern invalidation).
//! - Transactions apply their writes one by one (no `MULTI`).
//!
//! # Items
//!
//! memcached counts expiry in whole seconds on a clock that ticks once a
//! second. Every item carries a 10-byte header with its kind and its exact
//! expiry (unix milliseconds, this process's clock), checked on every read;
//! memcached's own expiry is set a little later, so it frees the memory.
//! Clients on machines with skewed clocks disagree about expiry by the skew.
//! An item written by another client (no header) reads as a plain value.
//!
//! Keys memcached cannot take (longer than 250 bytes, or with a space or a
//! control character) are replaced by a 0 byte and their SHA-256, sent in
//! base64 (the `b` flag); such a key can never equal a key sent unchanged.
//! A value larger than the server's item size (`-I`, 1 MiB by default) is
//! refused by the server: the `set` returns its error.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod item;
mod pool;
mod protocol;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;

use cashews_backend::backend::{Backend, BoxStream, Expiry, SetOptions};
use cashews_backend::cas::{self, CasStore, Change, Item, Read};
use cashews_backend::driver::{Driver, DriverContext};
use cashews_backend::url::{Params, SetupUrl};
use cashews_backend::{
    bits, Availability, Clock, Command, Error, Exist, IntoTtl, NetworkParams, Result,
};

use pool::{route, CallError, Server};
use protocol::{Mode, Reply, ReplyError, Requests, WireKey};

const NAME: &str = "memcached";

/// The `memcached://` driver.
pub const DRIVER: Driver = Driver {
    name: NAME,
    schemes: &["memcached"],
    connect,
};

/// The commands memcached cannot run (it cannot list keys).
pub const UNSUPPORTED: &[Command] = &[
    Command::Scan,
    Command::GetMatch,
    Command::DeleteMatch,
    Command::GetKeysCount,
];

fn connect(
    url: &SetupUrl,
    params: &mut Params<'_>,
    ctx: &DriverContext,
) -> Result<Arc<dyn Backend>> {
    let config = MemcachedConfig::from_url(url, params)?;
    Ok(Arc::new(MemcachedBackend::with_clock(
        config,
        ctx.clock.clone(),
    )))
}

/// Settings of a [`MemcachedBackend`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemcachedConfig {
    /// The servers, `host:port`.
    pub servers: Vec<String>,
    /// Turns connection failures into misses.
    pub suppress: bool,
    /// Timeout of a connection attempt.
    pub connect_timeout: Duration,
    /// Timeout of a command.
    pub response_timeout: Duration,
}

/// `memcached://127.0.0.1:11211` with every default.
impl Default for MemcachedConfig {
    fn default() -> Self {
        let network = NetworkParams::default();
        MemcachedConfig {
            servers: vec!["127.0.0.1:11211".to_owned()],
            suppress: network.suppress,
            connect_timeout: network.connect_timeout,
            response_timeout: network.response_timeout,
        }
    }
}

impl MemcachedConfig {
    /// The settings a `memcached://` URL names.
    ///
    /// ```
    /// let config = cashews_memcached::MemcachedConfig::parse(
    ///     "memcached://10.0.0.1:11211,10.0.0.2:11211?response_timeout=250ms",
    /// )?;
    /// assert_eq!(config.servers.len(), 2);
    /// let local = cashews_memcached::MemcachedConfig::parse("memcached://localhost")?;
    /// assert_eq!(local.servers, ["localhost:11211"]);
    /// # Ok::<(), cashews_backend::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<MemcachedConfig> {
        SetupUrl::parse_with(url, MemcachedConfig::from_url)
    }

    /// Reads the parameters of a `memcached://` URL.
    pub fn from_url(url: &SetupUrl, params: &mut Params<'_>) -> Result<MemcachedConfig> {
        let invalid = |message: &str| url.invalid(message);
        if url.userinfo.is_some() {
            return Err(invalid(
                "memcached's meta protocol has no authentication; remove user:password@",
            ));
        }
        if !url.path.is_empty() {
            return Err(invalid(
                "a memcached url has no path: memcached://host:11211[,host:port]",
            ));
        }
        let mut config = MemcachedConfig::default();
        if !url.hosts.is_empty() {
            config.servers = Vec::new();
            for host in url.hosts.split(',').map(str::trim) {
                // A host without a port is on memcached's, 11211.
                let host = match host.rsplit_once(':') {
                    Some((_, port)) if !port.contains(']') => host.to_owned(),
                    _ => format!("{host}:11211"),
                };
                let host = host.as_str();
                let valid = host
                    .rsplit_once(':')
                    .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok());
                if !valid {
                    return Err(invalid(&format!("each server is host:port, got {host:?}")));
                }
                if config.servers.iter().any(|s| s == host) {
                    return Err(invalid(&format!("server {host:?} is listed twice")));
                }
                config.servers.push(host.to_owned());
            }
        }
        let network = NetworkParams::take(params)?;
        config.suppress = network.suppress;
        config.connect_timeout = network.connect_timeout;
        config.response_timeout = network.response_timeout;
        Ok(config)
    }

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
}

/// One or more memcached servers as a cache backend.
pub struct MemcachedBackend {
    servers: Vec<Node>,
    connect_timeout: Duration,
    clock: Clock,
}

/// A server and its own outage state: one server down does not stop the
/// others.
struct Node {
    server: Server,
    availability: Availability,
}

impl std::fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field(
                "servers",
                &self
                    .servers
                    .iter()
                    .map(|n| &n.server.address)
                    .collect::<Vec<_>>(),
            )
            .field("suppressed", &self.suppressed_errors())
            .finish_non_exhaustive()
    }
}

impl MemcachedBackend {
    /// A backend for `config`; connects on first use.
    pub fn new(config: MemcachedConfig) -> MemcachedBackend {
        MemcachedBackend::with_clock(config, Clock::system())
    }

    /// A backend whose expiry is read on `clock` (unix milliseconds).
    pub fn with_clock(config: MemcachedConfig, clock: Clock) -> MemcachedBackend {
        let servers = config
            .servers
            .iter()
            .map(|address| Node {
                server: Server::new(address.clone()),
                availability: Availability::new(NAME, config.suppress, config.response_timeout),
            })
            .collect();
        MemcachedBackend {
            servers,
            connect_timeout: config.connect_timeout,
            clock,
        }
    }

    /// How many failures were turned into misses (`suppress=true`).
    pub fn suppressed_errors(&self) -> u64 {
        self.servers
            .iter()
            .map(|n| n.availability.suppressed())
            .sum()
    }

    fn node(&self, key: &WireKey<'_>) -> &Node {
        &self.servers[route(&self.servers, key.routing())]
    }

    /// Sends `requests` to `node`'s server, errors mapped.
    async fn call(&self, node: &Node, requests: &Requests) -> Result<Vec<Reply>> {
        node.server
            .call(requests, self.connect_timeout)
            .await
            .map_err(|error| {
                // Whatever failed, the idle connections may be as broken.
                node.server.forget_idle();
                let (transient, message) = match error {
                    CallError::Connect(e) => {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            node.availability.mark_down();
                        }
                        (true, format!("cannot connect: {e}"))
                    }
                    CallError::Reply(e @ ReplyError::Server(_)) => (false, e.to_string()),
                    CallError::Reply(e) => (true, e.to_string()),
                };
                Error::backend(
                    NAME,
                    transient,
                    format!("{}: {message}", node.server.address),
                )
            })
    }

    /// One request, one reply.
    async fn call_one(&self, node: &Node, requests: &Requests) -> Result<Reply> {
        let mut replies = self.call(node, requests).await?;
        Ok(replies.pop().expect("one reply per request"))
    }

    fn now(&self) -> u64 {
        self.clock.unix_ms()
    }

    /// The live item in a `mg` reply, and the CAS value of what is stored.
    fn slot(&self, reply: Reply) -> Result<Read<u64>> {
        match reply {
            Reply::Value { data, cas } => {
                let now = self.now();
                Ok(Read {
                    live: item::decode(data).filter(|item| item.live(now)),
                    version: Some(cas),
                })
            }
            Reply::Miss => Ok(Read {
                live: None,
                version: None,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// The live item of `key`.
    async fn read(&self, node: &Node, key: &WireKey<'_>) -> Result<Read<u64>> {
        let reply = self.call_one(node, Requests::default().get(key)).await?;
        self.slot(reply)
    }

    /// Reads `key`'s live item and answers from it (`fallback` when the
    /// server is down and `suppress` is on).
    async fn on_live<T>(
        &self,
        command: Command,
        key: &str,
        fallback: impl FnOnce() -> T,
        answer: impl FnOnce(Option<Item>) -> T,
    ) -> Result<T> {
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        let read = async { Ok(answer(self.read(node, &wire).await?.live)) };
        node.availability.run(command, fallback, read).await
    }

    /// `key`'s server as a compare-and-swap store.
    fn store(&self, key: &str) -> NodeStore<'_> {
        NodeStore {
            backend: self,
            node: self.node(&WireKey::new(key)),
        }
    }

    /// Groups `keys` by server: (node, positions in `keys`).
    fn by_node<'k>(&self, keys: &[WireKey<'k>]) -> Vec<(&Node, Vec<usize>)> {
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.servers.len()];
        for (position, key) in keys.iter().enumerate() {
            groups[route(&self.servers, key.routing())].push(position);
        }
        self.servers
            .iter()
            .zip(groups)
            .filter(|(_, positions)| !positions.is_empty())
            .collect()
    }

    /// Runs one request on every server (`mn`, `flush_all`).
    async fn on_every_server(&self, command: Command, line: &str) -> Result<()> {
        let calls = self.servers.iter().map(|node| {
            node.availability.run_strict(command, async move {
                match self.call_one(node, Requests::default().line(line)).await? {
                    Reply::Ok => Ok(()),
                    other => Err(unexpected(&other)),
                }
            })
        });
        join_all(calls).await.into_iter().collect()
    }
}

impl AsRef<Server> for Node {
    fn as_ref(&self) -> &Server {
        &self.server
    }
}

fn unexpected(reply: &Reply) -> Error {
    Error::backend(NAME, true, format!("unexpected reply {reply:?}"))
}

fn unsupported<T>(command: Command) -> Result<T> {
    Err(Error::Unsupported {
        backend: NAME,
        command,
    })
}

#[cashews_backend::async_trait]
impl Backend for MemcachedBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.on_live(
            Command::Get,
            key,
            || None,
            |live| live.and_then(Item::into_value),
        )
        .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let wires: Vec<WireKey<'_>> = keys.iter().map(|k| WireKey::new(k)).collect();
        let calls = self.by_node(&wires).into_iter().map(|(node, positions)| {
            let wires = &wires;
            let fallback = positions.clone();
            node.availability.run(
                Command::GetMany,
                move || {
                    let count = fallback.len();
                    (fallback, vec![None; count])
                },
                async move {
                    let mut requests = Requests::default();
                    for position in &positions {
                        requests.get(&wires[*position]);
                    }
                    let replies = self.call(node, &requests).await?;
                    let mut values = Vec::with_capacity(replies.len());
                    for reply in replies {
                        values.push(self.slot(reply)?.live.and_then(Item::into_value));
                    }
                    Ok((positions, values))
                },
            )
        });
        let mut out = vec![None; keys.len()];
        for result in join_all(calls).await {
            let (positions, values) = result?;
            for (position, value) in positions.into_iter().zip(values) {
                out[position] = value;
            }
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run(Command::Set, || false, async {
                if options.exist != Exist::Always {
                    let step = cas::set_if(options.exist, value, options.expire);
                    return cas::update(&self.store(key), key, step).await;
                }
                let now = self.now();
                let item = Item::value(value, cas::expires_at(now, options.expire));
                let mut requests = Requests::default();
                item::set(&mut requests, &wire, &item, now, Mode::Set);
                match self.call_one(node, &requests).await? {
                    Reply::Done => Ok(true),
                    other => Err(unexpected(&other)),
                }
            })
            .await
    }

    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()> {
        let wires: Vec<WireKey<'_>> = pairs.iter().map(|(k, _)| WireKey::new(k)).collect();
        let now = self.now();
        let expires_at = cas::expires_at(now, expire);
        let calls = self.by_node(&wires).into_iter().map(|(node, positions)| {
            let mut requests = Requests::default();
            for position in &positions {
                let item = Item::value(pairs[*position].1.clone(), expires_at);
                item::set(&mut requests, &wires[*position], &item, now, Mode::Set);
            }
            node.availability.run(Command::SetMany, || (), async move {
                for reply in self.call(node, &requests).await? {
                    if reply != Reply::Done {
                        return Err(unexpected(&reply));
                    }
                }
                Ok(())
            })
        });
        join_all(calls).await.into_iter().collect()
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.delete_many(&[key]).await? == 1)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let wires: Vec<WireKey<'_>> = keys.iter().map(|k| WireKey::new(k)).collect();
        let command = if keys.len() == 1 {
            Command::Delete
        } else {
            Command::DeleteMany
        };
        let calls = self.by_node(&wires).into_iter().map(|(node, positions)| {
            // Read and delete in one pipeline: the read tells whether the
            // key was live (an expired item may still be stored).
            let mut requests = Requests::default();
            for position in &positions {
                requests
                    .get(&wires[*position])
                    .delete(&wires[*position], None);
            }
            node.availability.run(command, || 0, async move {
                let replies = self.call(node, &requests).await?;
                let mut deleted = 0;
                for pair in replies.chunks(2) {
                    if self.slot(pair[0].clone())?.live.is_some() {
                        deleted += 1;
                    }
                }
                Ok(deleted)
            })
        });
        let mut total = 0;
        for result in join_all(calls).await {
            total += result?;
        }
        Ok(total)
    }

    async fn delete_match(&self, _pattern: &str) -> Result<u64> {
        unsupported(Command::DeleteMatch)
    }

    fn scan(&self, _pattern: String, _batch_size: usize) -> BoxStream<'static, Result<String>> {
        cashews_backend::stream::iter_stream(std::iter::once(unsupported(Command::Scan)))
    }

    fn get_match(
        &self,
        _pattern: String,
        _batch_size: usize,
    ) -> BoxStream<'static, Result<(String, Bytes)>> {
        cashews_backend::stream::iter_stream(std::iter::once(unsupported(Command::GetMatch)))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.on_live(Command::Exists, key, || false, |live| live.is_some())
            .await
    }

    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64> {
        let step = cas::incr(key, by, expire);
        self.store(key).strict(Command::Incr, key, step).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let store = self.store(key);
        let step = cas::expire(ttl);
        store
            .node
            .availability
            .run(Command::Expire, || false, cas::update(&store, key, step))
            .await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let answer = |live: Option<Item>| cas::expiry(live.as_ref(), self.now());
        self.on_live(Command::GetExpire, key, || Expiry::Missing, answer)
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.on_every_server(Command::Ping, "mn").await
    }

    async fn clear(&self) -> Result<()> {
        self.on_every_server(Command::Clear, "flush_all").await
    }

    async fn get_keys_count(&self) -> Result<u64> {
        unsupported(Command::GetKeysCount)
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        let answer = |live: Option<Item>| live.map(|item| item.payload.len() as u64);
        self.on_live(Command::GetSize, key, || None, answer).await
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let store = self.store(key);
        let step = cas::lock(token, ttl);
        store.strict(Command::SetLock, key, step).await
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let store = self.store(key);
        store.strict(Command::Unlock, key, cas::unlock(token)).await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run_strict(Command::GetBits, async {
                let read = self.read(node, &wire).await?;
                let data = cas::bit_string(key, read.live.as_ref())?;
                Ok(offsets.iter().map(|o| bits::read(data, *o, size)).collect())
            })
            .await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let step = cas::incr_bits(key, &offsets, size, by);
        self.store(key).strict(Command::IncrBits, key, step).await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        let step = cas::slice_incr(key, start, end, max, expire);
        self.store(key).strict(Command::SliceIncr, key, step).await
    }

    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        let step = cas::set_add(key, members, expire);
        self.store(key).strict(Command::SetAdd, key, step).await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let step = cas::set_remove(key, members);
        self.store(key).strict(Command::SetRemove, key, step).await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let step = cas::set_pop(key, count);
        self.store(key).strict(Command::SetPop, key, step).await
    }

    fn unsupported(&self) -> &'static [Command] {
        UNSUPPORTED
    }

    async fn close(&self) -> Result<()> {
        for node in &self.servers {
            node.server.forget_idle();
        }
        Ok(())
    }
}

/// One server as a compare-and-swap store (memcached's CAS values).
struct NodeStore<'a> {
    backend: &'a MemcachedBackend,
    node: &'a Node,
}

impl NodeStore<'_> {
    /// Runs a compare-and-swap command with no neutral answer.
    async fn strict<T: Send>(
        &self,
        command: Command,
        key: &str,
        step: impl FnMut(Option<&Item>, u64) -> Result<Change<T>> + Send,
    ) -> Result<T> {
        self.node
            .availability
            .run_strict(command, cas::update(self, key, step))
            .await
    }
}

#[cashews_backend::async_trait]
impl CasStore for NodeStore<'_> {
    type Version = u64;

    fn name(&self) -> &'static str {
        NAME
    }

    fn now(&self) -> u64 {
        self.backend.now()
    }

    async fn read(&self, key: &str) -> Result<Read<u64>> {
        self.backend.read(self.node, &WireKey::new(key)).await
    }

    async fn write(&self, key: &str, item: &Item, now: u64, expected: Option<u64>) -> Result<bool> {
        let mode = expected.map_or(Mode::Add, Mode::Cas);
        let mut requests = Requests::default();
        let wire = WireKey::new(key);
        item::set(&mut requests, &wire, item, now, mode);
        match self.backend.call_one(self.node, &requests).await? {
            Reply::Done => Ok(true),
            // Another client wrote or deleted the key in between.
            Reply::NotStored | Reply::Exists | Reply::NotFound => Ok(false),
            other => Err(unexpected(&other)),
        }
    }

    async fn remove(&self, key: &str, expected: u64) -> Result<bool> {
        let mut requests = Requests::default();
        requests.delete(&WireKey::new(key), Some(expected));
        match self.backend.call_one(self.node, &requests).await? {
            Reply::Done | Reply::NotFound => Ok(true),
            Reply::Exists => Ok(false),
            other => Err(unexpected(&other)),
        }
    }
}
