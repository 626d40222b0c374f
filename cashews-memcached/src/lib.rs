//! The memcached backend of [cashews](https://docs.rs/cashews):
//! `memcached://host:port[,host:port...]?...`, over memcached's meta
//! protocol (memcached 1.6 or later).
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

use cashews_backend::backend::{slide_window, Backend, BoxStream, Expiry, SetOptions};
use cashews_backend::driver::{Driver, DriverContext};
use cashews_backend::layout::parse_counter;
use cashews_backend::url::{Params, SetupUrl};
use cashews_backend::{bits, Availability, Clock, Command, Error, Exist, IntoTtl, Result};

use item::{Item, Kind};
use pool::{route, CallError, Server};
use protocol::{Mode, Reply, ReplyError, Requests, WireKey};

const NAME: &str = "memcached";

/// How many times a compare-and-swap is retried before the command fails
/// (each retry means another client wrote the key in between).
const MAX_CAS_ATTEMPTS: usize = 64;

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
        MemcachedConfig {
            servers: vec!["127.0.0.1:11211".to_owned()],
            suppress: true,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
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
    /// # Ok::<(), cashews_backend::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<MemcachedConfig> {
        let url = SetupUrl::parse(url)?;
        let mut params = url.params();
        let config = MemcachedConfig::from_url(&url, &mut params)?;
        params.finish()?;
        Ok(config)
    }

    /// Reads the parameters of a `memcached://` URL.
    pub fn from_url(url: &SetupUrl, params: &mut Params<'_>) -> Result<MemcachedConfig> {
        let invalid =
            |message: &str| Error::config(format!("setup url {:?}: {message}", url.display));
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
        if let Some(suppress) = params.bool("suppress")? {
            config.suppress = suppress;
        }
        if let Some(timeout) = params.positive_duration("connect_timeout")? {
            config.connect_timeout = timeout;
        }
        if let Some(timeout) = params.positive_duration("response_timeout")? {
            config.response_timeout = timeout;
        }
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

/// What a compare-and-swap step decides from the live item it read.
enum Change<T> {
    /// Writes the item (if it is still as read), then answers.
    Write(Item, T),
    /// Deletes the item (if it is still as read), then answers.
    Remove(T),
    /// Writes nothing.
    Keep(T),
}

/// A key's item as read: the live item, and the CAS value of whatever is
/// stored (also an expired or unreadable item, which a write replaces).
struct Slot {
    live: Option<Item>,
    cas: Option<u64>,
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

    fn expires_at(&self, now: u64, ttl: Option<Duration>) -> u64 {
        ttl.map_or(0, |ttl| {
            now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                .max(1)
        })
    }

    /// The live item in a `mg` reply.
    fn slot(&self, reply: Reply) -> Result<Slot> {
        match reply {
            Reply::Value { data, cas } => {
                let now = self.now();
                Ok(Slot {
                    live: Item::decode(data).filter(|item| item.live(now)),
                    cas: Some(cas),
                })
            }
            Reply::Miss => Ok(Slot {
                live: None,
                cas: None,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// The live item of `key`.
    async fn read(&self, node: &Node, key: &WireKey<'_>) -> Result<Slot> {
        let reply = self.call_one(node, Requests::default().get(key)).await?;
        self.slot(reply)
    }

    /// Reads `key`, lets `step` decide, and writes the change only if the
    /// item is still as read; retries when another client wrote in between.
    async fn update<T>(
        &self,
        node: &Node,
        key: &str,
        mut step: impl FnMut(Option<&Item>, u64) -> Result<Change<T>>,
    ) -> Result<T> {
        let wire = WireKey::new(key);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let slot = self.read(node, &wire).await?;
            let now = self.now();
            let mut requests = Requests::default();
            let answer = match step(slot.live.as_ref(), now)? {
                Change::Keep(answer) => return Ok(answer),
                Change::Write(item, answer) => {
                    let mode = slot.cas.map_or(Mode::Add, Mode::Cas);
                    requests.set(&wire, &item.encode(), item.exptime(now), mode);
                    answer
                }
                Change::Remove(answer) => match slot.cas {
                    None => return Ok(answer),
                    Some(cas) => {
                        requests.delete(&wire, Some(cas));
                        answer
                    }
                },
            };
            match self.call_one(node, &requests).await? {
                Reply::Done => return Ok(answer),
                // Another client wrote or deleted the key in between.
                Reply::NotStored | Reply::Exists | Reply::NotFound => continue,
                other => return Err(unexpected(&other)),
            }
        }
        Err(Error::backend(
            NAME,
            true,
            format!("{key:?} changed on every one of {MAX_CAS_ATTEMPTS} compare-and-swap attempts"),
        ))
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

fn wrong_type(key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
        expected,
    }
}

/// The live members of a set item (none when absent).
fn set_members(key: &str, item: Option<&Item>) -> Result<Vec<String>> {
    match item {
        None => Ok(Vec::new()),
        Some(item) if item.kind == Kind::Set => item::decode_set(key, &item.payload),
        Some(_) => Err(wrong_type(key, "a set")),
    }
}

/// The bytes of a bit string item (empty when absent).
fn bit_string<'i>(key: &str, item: Option<&'i Item>) -> Result<&'i [u8]> {
    match item {
        None => Ok(&[]),
        Some(item) if item.kind == Kind::Value => Ok(&item.payload),
        Some(_) => Err(wrong_type(key, "a bit string")),
    }
}

#[cashews_backend::async_trait]
impl Backend for MemcachedBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run(Command::Get, || None, async {
                let slot = self.read(node, &wire).await?;
                Ok(slot
                    .live
                    .filter(|item| item.kind == Kind::Value)
                    .map(|item| item.payload))
            })
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
                        let slot = self.slot(reply)?;
                        values.push(
                            slot.live
                                .filter(|item| item.kind == Kind::Value)
                                .map(|item| item.payload),
                        );
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
                if options.exist == Exist::Always {
                    let now = self.now();
                    let item = Item::value(value, self.expires_at(now, options.expire));
                    let mut requests = Requests::default();
                    requests.set(&wire, &item.encode(), item.exptime(now), Mode::Set);
                    return match self.call_one(node, &requests).await? {
                        Reply::Done => Ok(true),
                        other => Err(unexpected(&other)),
                    };
                }
                self.update(node, key, |live, now| {
                    let present = live.is_some();
                    let write = match options.exist {
                        Exist::IfAbsent => !present,
                        _ => present,
                    };
                    Ok(if write {
                        let at = self.expires_at(now, options.expire);
                        Change::Write(Item::value(value.clone(), at), true)
                    } else {
                        Change::Keep(false)
                    })
                })
                .await
            })
            .await
    }

    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()> {
        let wires: Vec<WireKey<'_>> = pairs.iter().map(|(k, _)| WireKey::new(k)).collect();
        let now = self.now();
        let expires_at = self.expires_at(now, expire);
        let calls = self.by_node(&wires).into_iter().map(|(node, positions)| {
            let mut requests = Requests::default();
            for position in &positions {
                let item = Item::value(pairs[*position].1.clone(), expires_at);
                requests.set(
                    &wires[*position],
                    &item.encode(),
                    item.exptime(now),
                    Mode::Set,
                );
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
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run(Command::Exists, || false, async {
                Ok(self.read(node, &wire).await?.live.is_some())
            })
            .await
    }

    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, now: u64| -> Result<Change<i64>> {
            let (current, expires_at) = match live {
                None => (0, self.expires_at(now, expire)),
                Some(item) => {
                    let current = (item.kind == Kind::Value)
                        .then(|| parse_counter(&item.payload))
                        .flatten()
                        .ok_or_else(|| wrong_type(key, "an integer"))?;
                    (current, item.expires_at)
                }
            };
            let new = current.checked_add(by).ok_or_else(|| Error::Overflow {
                key: key.to_owned(),
            })?;
            let item = Item::value(Bytes::from(new.to_string()), expires_at);
            Ok(Change::Write(item, new))
        };
        node.availability
            .run_strict(Command::Incr, self.update(node, key, step))
            .await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, now: u64| -> Result<Change<bool>> {
            Ok(match live {
                None => Change::Keep(false),
                Some(item) => {
                    let mut item = item.clone();
                    item.expires_at = self.expires_at(now, Some(ttl));
                    Change::Write(item, true)
                }
            })
        };
        node.availability
            .run(Command::Expire, || false, self.update(node, key, step))
            .await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run(Command::GetExpire, || Expiry::Missing, async {
                let slot = self.read(node, &wire).await?;
                let now = self.now();
                Ok(match slot.live {
                    None => Expiry::Missing,
                    Some(item) if item.expires_at == 0 => Expiry::NoExpiry,
                    Some(item) => Expiry::Remaining(Duration::from_millis(item.expires_at - now)),
                })
            })
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
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run(Command::GetSize, || None, async {
                let slot = self.read(node, &wire).await?;
                Ok(slot.live.map(|item| item.payload.len() as u64))
            })
            .await
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, now: u64| -> Result<Change<bool>> {
            Ok(match live {
                Some(_) => Change::Keep(false),
                None => {
                    let at = self.expires_at(now, Some(ttl));
                    Change::Write(
                        Item::value(Bytes::copy_from_slice(token.as_bytes()), at),
                        true,
                    )
                }
            })
        };
        node.availability
            .run_strict(Command::SetLock, self.update(node, key, step))
            .await
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, _now: u64| -> Result<Change<bool>> {
            Ok(match live {
                Some(item) if item.kind == Kind::Value && item.payload == token.as_bytes() => {
                    Change::Remove(true)
                }
                _ => Change::Keep(false),
            })
        };
        node.availability
            .run_strict(Command::Unlock, self.update(node, key, step))
            .await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let wire = WireKey::new(key);
        let node = self.node(&wire);
        node.availability
            .run_strict(Command::GetBits, async {
                let slot = self.read(node, &wire).await?;
                let data = bit_string(key, slot.live.as_ref())?;
                Ok(offsets.iter().map(|o| bits::read(data, *o, size)).collect())
            })
            .await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, _now: u64| -> Result<Change<Vec<u64>>> {
            let mut data = bit_string(key, live)?.to_vec();
            let values = offsets
                .iter()
                .map(|o| bits::incr(&mut data, *o, size, by))
                .collect();
            let expires_at = live.map_or(0, |item| item.expires_at);
            Ok(Change::Write(Item::value(data.into(), expires_at), values))
        };
        node.availability
            .run_strict(Command::IncrBits, self.update(node, key, step))
            .await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, now: u64| -> Result<Change<u64>> {
            let mut stamps = match live {
                None => Vec::new(),
                Some(item) if item.kind == Kind::Window => item::decode_window(key, &item.payload)?,
                Some(_) => return Err(wrong_type(key, "a sliding window")),
            };
            let (count, recorded) = slide_window(&mut stamps, start, end, max);
            if !recorded {
                return Ok(Change::Keep(count));
            }
            let item = Item {
                kind: Kind::Window,
                expires_at: self.expires_at(now, expire),
                payload: item::encode_window(&stamps),
            };
            Ok(Change::Write(item, count))
        };
        node.availability
            .run_strict(Command::SliceIncr, self.update(node, key, step))
            .await
    }

    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, now: u64| -> Result<Change<u64>> {
            let mut set = set_members(key, live)?;
            let before = set.len();
            for member in members {
                if !set.iter().any(|m| m == member) {
                    set.push((*member).to_owned());
                }
            }
            let added = (set.len() - before) as u64;
            let wanted = self.expires_at(now, expire);
            // A set only ever lives longer: no TTL stays none, and members
            // without an expiry make it persistent.
            let expires_at = match live {
                None => wanted,
                Some(item) if item.expires_at == 0 || wanted == 0 => 0,
                Some(item) => item.expires_at.max(wanted),
            };
            if added == 0 && live.is_some_and(|item| item.expires_at == expires_at) {
                return Ok(Change::Keep(0));
            }
            let item = Item {
                kind: Kind::Set,
                expires_at,
                payload: item::encode_set(&set),
            };
            Ok(Change::Write(item, added))
        };
        node.availability
            .run_strict(Command::SetAdd, self.update(node, key, step))
            .await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, _now: u64| -> Result<Change<u64>> {
            let mut set = set_members(key, live)?;
            let before = set.len();
            set.retain(|m| !members.contains(&m.as_str()));
            let removed = (before - set.len()) as u64;
            if removed == 0 {
                return Ok(Change::Keep(0));
            }
            Ok(shrunk_set(live, set, removed))
        };
        node.availability
            .run_strict(Command::SetRemove, self.update(node, key, step))
            .await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let node = self.node(&WireKey::new(key));
        let step = |live: Option<&Item>, _now: u64| -> Result<Change<Vec<String>>> {
            let mut set = set_members(key, live)?;
            let popped = set.split_off(set.len().saturating_sub(count));
            Ok(shrunk_set(live, set, popped))
        };
        node.availability
            .run_strict(Command::SetPop, self.update(node, key, step))
            .await
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

/// The change after members left a set: nothing, the smaller set, or no
/// set (an empty set is deleted).
fn shrunk_set<T>(live: Option<&Item>, set: Vec<String>, answer: T) -> Change<T> {
    match live {
        None => Change::Keep(answer),
        Some(_) if set.is_empty() => Change::Remove(answer),
        Some(item) => Change::Write(
            Item {
                kind: Kind::Set,
                expires_at: item.expires_at,
                payload: item::encode_set(&set),
            },
            answer,
        ),
    }
}
