//! The connection: one server through redis-rs' connection manager, one
//! server with client-side caching through a multiplexed connection this
//! module re-makes when it breaks, a Sentinel-managed primary found again
//! when its connection breaks, or a cluster through its cluster connection,
//! re-made when nothing answers on it for two response timeouts (redis-rs'
//! cluster connection can stay stuck in its slot recovery after failovers,
//! while a new one answers at once) — behind one type.
//!
//! Client-side caching does not use the connection manager: it hands the
//! server's pushes to a channel read by another task, so a reply could reach
//! its caller before an invalidation that arrived ahead of it was applied. A
//! multiplexed connection calls the push sender on its read loop, in the
//! order the server sent pushes and replies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

use cashews_backend::{Error, Result};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisConnectionInfo, RedisFuture,
    RedisResult, Value,
};
use tokio::sync::OnceCell;

use crate::tracking::Tracking;
use crate::{backend_error, RedisConfig};

/// Makes the connection on first use and keeps it.
pub(crate) enum Connector {
    Single {
        client: Box<redis::Client>,
        connection: OnceCell<ConnectionManager>,
    },
    /// One server with client-side caching.
    Tracked {
        client: Box<redis::Client>,
        tracking: Arc<Tracking>,
        /// The current connection, until it breaks.
        current: ArcSwapOption<Current<MultiplexedConnection>>,
        /// Held while a connection is made, so only one is.
        connecting: tokio::sync::Mutex<()>,
    },
    /// A cluster through redis-rs' cluster connection, replaced when it
    /// stops answering altogether (see [`Health`]).
    Cluster(Arc<ClusterConnector>),
    /// One server found through Redis Sentinel, found again (the sentinels
    /// asked anew) when its connection breaks — after a failover, the new
    /// primary.
    Sentinel {
        /// Held while a connection is made, so only one is.
        sentinel: Box<tokio::sync::Mutex<SentinelClient>>,
        current: ArcSwapOption<Current<MultiplexedConnection>>,
        /// `wait_replicas` and the `WAIT` timeout (ms), if set.
        wait: Option<(u32, u64)>,
        /// `read_from_replicas`: the replica reads go to.
        replicas: Option<Arc<ReplicaReads>>,
    },
}

/// Keeps a cluster connection; when it breaks, makes a new one on a task of
/// its own while commands go on on the old one (a node that does not answer
/// may hold the new connection past any one command's deadline).
pub(crate) struct ClusterConnector {
    client: ClusterClient,
    current: ArcSwapOption<Current<ClusterConnection>>,
    /// Held while the first connection is made, so only one is.
    connecting: tokio::sync::Mutex<()>,
    /// Set while a replacement is being made.
    replacing: AtomicBool,
    /// Client-side caching: a new connection tracks nothing yet.
    tracking: Option<Arc<Tracking>>,
    /// How long nothing answers before failures replace the connection.
    patience: Duration,
}

impl ClusterConnector {
    /// The current connection; if it broke, a replacement is started.
    #[inline]
    fn ready(self: &Arc<Self>) -> Option<Conn> {
        let current = self.current.load();
        let current = current.as_deref()?;
        if current.health.is_broken() {
            self.replace();
        }
        Some(Conn::Cluster(
            current.connection.clone(),
            current.health.clone(),
        ))
    }

    /// Makes a new connection on a task of its own (one at a time), which
    /// becomes the current one once made.
    fn replace(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        runtime.spawn(async move {
            // Connecting to every node may wait for each one's timeout; the
            // old connection serves meanwhile.
            let made = made_on_the_side(
                "redis cluster connection",
                this.patience * 5,
                this.patience,
                this.client.get_async_connection(),
            );
            if let Some(connection) = made.await {
                this.install(connection);
            }
            this.replacing.store(false, Ordering::Release);
        });
    }

    /// Makes `connection` the current one.
    fn install(&self, connection: ClusterConnection) -> Conn {
        if let Some(tracking) = &self.tracking {
            // A new connection: tracking is off on it until turned on.
            tracking.cache.disable();
        }
        let health = Health::new(self.patience);
        self.current
            .store(Some(Current::new(connection.clone(), health.clone(), None)));
        Conn::Cluster(connection, health)
    }

    /// The first connection, made within the caller's deadline.
    async fn first(self: &Arc<Self>) -> Result<Conn> {
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.ready() {
            return Ok(connection);
        }
        let connection = self
            .client
            .get_async_connection()
            .await
            .map_err(backend_error)?;
        Ok(self.install(connection))
    }
}

/// `wait_replicas` on one connection: a write is acknowledged once this
/// many replicas have it. One `WAIT` covers every write answered before it
/// was sent, so concurrent writers share it (a `WAIT` holds the connection
/// until it answers).
pub(crate) struct Waiter {
    replicas: u32,
    timeout_ms: u64,
    /// Writes answered on the connection so far.
    written: std::sync::atomic::AtomicU64,
    /// The last `WAIT`: the writes it covered, how many replicas had them,
    /// and when it answered.
    last: tokio::sync::Mutex<(u64, u32, std::time::Instant)>,
}

/// The connection a connector keeps until it breaks, and its health.
pub(crate) struct Current<C> {
    connection: C,
    health: Arc<Health>,
    /// `wait_replicas` (Sentinel only).
    wait: Option<Arc<Waiter>>,
}

impl<C> Current<C> {
    fn new(connection: C, health: Arc<Health>, wait: Option<Arc<Waiter>>) -> Arc<Current<C>> {
        Arc::new(Current {
            connection,
            health,
            wait,
        })
    }
}

/// Whether a connection is to be replaced: marked broken by how its
/// commands end ([`Watch`]), or for [`Connector::Tracked`] by its push
/// sender seeing the disconnection.
pub(crate) struct Health {
    broken: Arc<AtomicBool>,
    born: std::time::Instant,
    /// When a command last got an answer (ms after `born`).
    answered_ms: AtomicU64,
    /// A failure breaks the connection once nothing answered for this long
    /// (zero: at once).
    patience: Duration,
}

impl Health {
    fn new(patience: Duration) -> Arc<Health> {
        Arc::new(Health {
            broken: Arc::new(AtomicBool::new(false)),
            born: std::time::Instant::now(),
            answered_ms: AtomicU64::new(0),
            patience,
        })
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    fn answered(&self) {
        if !self.patience.is_zero() {
            let now = self.born.elapsed().as_millis() as u64;
            self.answered_ms.store(now, Ordering::Relaxed);
        }
    }

    fn failed(&self) {
        let silent = (self.born.elapsed().as_millis() as u64)
            .saturating_sub(self.answered_ms.load(Ordering::Relaxed));
        if silent >= self.patience.as_millis() as u64 {
            self.broken.store(true, Ordering::Release);
        }
    }
}

/// A handle on the connection (cheap to clone).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Tracked(MultiplexedConnection),
    Cluster(ClusterConnection, Arc<Health>),
    /// The connection to the primary Sentinel named (with its health and
    /// `wait_replicas`), and the replica reads go to (`read_from_replicas`).
    Sentinel(Arc<Current<MultiplexedConnection>>, Option<Arc<Replica>>),
}

/// A replica's connection (`read_from_replicas`).
pub(crate) struct Replica {
    connection: MultiplexedConnection,
    health: Arc<Health>,
    /// How long a read waits for it before going to the primary: a quarter
    /// of the deadline, so the primary can still answer.
    budget: Duration,
}

impl Replica {
    /// Runs a read on the replica (`c`, a clone of its connection): its
    /// reply, or `None` when the replica's connection failed or the replica
    /// did not answer within its budget (the read goes to the primary).
    async fn read<'c, T>(
        &self,
        c: &'c mut MultiplexedConnection,
        send: impl FnOnce(&'c mut MultiplexedConnection) -> RedisFuture<'c, T>,
    ) -> Option<RedisResult<T>> {
        let watch = Watch::new(&self.health);
        let Ok(reply) = tokio::time::timeout(self.budget, send(c)).await else {
            // A hung replica: dropped, and this read goes to the primary.
            self.health.failed();
            return None;
        };
        match watch.finish(reply) {
            Err(_) if self.health.is_broken() => None,
            reply => Some(reply),
        }
    }
}

/// `read_from_replicas`: a connection to a replica the sentinels name,
/// made (and made again when it breaks) on a task of its own, so reads go
/// to the primary until it is there.
pub(crate) struct ReplicaReads {
    /// Held while a connection is made, so only one is.
    sentinel: Arc<tokio::sync::Mutex<SentinelClient>>,
    current: ArcSwapOption<Replica>,
    config: RedisConfig,
}

impl ReplicaReads {
    /// The replica's connection, if it is made and not broken; otherwise
    /// one is started.
    fn ready(self: &Arc<Self>) -> Option<Arc<Replica>> {
        let replica = self.current.load_full().filter(|r| !r.health.is_broken());
        if replica.is_none() {
            self.connect();
        }
        replica
    }

    fn connect(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(sentinel) = self.sentinel.clone().try_lock_owned() else {
            // Being made.
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let mut sentinel = sentinel;
            // The primary serves reads meanwhile.
            let made = made_on_the_side(
                "redis replica connection",
                4 * this.config.response_timeout,
                this.config.response_timeout,
                open_from_sentinel(&mut sentinel, &this.config),
            );
            if let Some(connection) = made.await {
                this.current.store(Some(Arc::new(Replica {
                    connection,
                    health: Health::new(Duration::ZERO),
                    budget: this.config.response_timeout / 4,
                })));
            }
            drop(sentinel);
        });
    }
}

/// A primary of a cluster, or `None` for the one server.
pub(crate) type Node = Option<(String, u16)>;

impl Connector {
    /// A connector on a redis-rs client the application made (one server).
    pub(crate) fn on_client(client: redis::Client, tracking: Option<Arc<Tracking>>) -> Connector {
        let client = Box::new(client);
        match tracking {
            Some(tracking) => Connector::Tracked {
                client,
                tracking,
                current: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
            },
            None => Connector::Single {
                client,
                connection: OnceCell::new(),
            },
        }
    }

    pub(crate) fn new(
        config: &RedisConfig,
        tracking: Option<Arc<Tracking>>,
    ) -> RedisResult<Connector> {
        #[cfg(feature = "tls")]
        if config.addresses.iter().any(|a| a.starts_with("rediss://")) {
            // rustls needs a process-wide crypto provider; install ring's
            // unless the application installed one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if let Some(sentinel) = &config.sentinel {
            let mut node = RedisConnectionInfo::default().set_db(sentinel.db);
            if let Some(username) = &sentinel.username {
                node = node.set_username(username);
            }
            if let Some(password) = &sentinel.password {
                node = node.set_password(password);
            }
            let build = |kind| {
                SentinelClient::build(
                    config.addresses.clone(),
                    sentinel.service.clone(),
                    Some(
                        SentinelNodeConnectionInfo::default()
                            .set_redis_connection_info(node.clone()),
                    ),
                    kind,
                )
            };
            let client = build(SentinelServerType::Master)?;
            let replicas = if sentinel.read_from_replicas {
                Some(Arc::new(ReplicaReads {
                    sentinel: Arc::new(tokio::sync::Mutex::new(build(
                        SentinelServerType::Replica,
                    )?)),
                    current: ArcSwapOption::empty(),
                    config: config.clone(),
                }))
            } else {
                None
            };
            // WAIT answers before the command's deadline, with a count.
            let wait = (sentinel.wait_replicas > 0).then(|| {
                let timeout_ms = (config.response_timeout.as_millis() as u64 / 4).max(1);
                (sentinel.wait_replicas, timeout_ms)
            });
            return Ok(Connector::Sentinel {
                sentinel: Box::new(tokio::sync::Mutex::new(client)),
                current: ArcSwapOption::empty(),
                wait,
                replicas,
            });
        }
        if config.cluster {
            let tracked = tracking.clone();
            let mut builder = ClusterClientBuilder::new(config.addresses.clone())
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                .retries(1)
                .max_retry_wait(100);
            if let Some(tracking) = tracking {
                builder = builder
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tracking.push_sender(None));
            }
            #[cfg(feature = "tls")]
            if let Some(certificates) = certificates(config) {
                builder = builder.certs(certificates);
            }
            return Ok(Connector::Cluster(Arc::new(ClusterConnector {
                client: builder.build()?,
                current: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
                replacing: AtomicBool::new(false),
                tracking: tracked,
                // A node lost fails the commands of its slots only: the
                // connection is replaced when nothing answers at all.
                patience: 2 * config.response_timeout,
            })));
        }
        Ok(Connector::on_client(client(config)?, tracking))
    }

    /// The connection if it is made already: no future, so callers' futures
    /// stay small (the one that makes it is large).
    #[inline]
    pub(crate) fn ready(&self) -> Option<Conn> {
        match self {
            Connector::Single { connection, .. } => connection.get().cloned().map(Conn::Single),
            Connector::Tracked { current, .. } => current
                .load()
                .as_deref()
                .filter(|c| !c.health.is_broken())
                .map(|c| Conn::Tracked(c.connection.clone())),
            Connector::Cluster(cluster) => cluster.ready(),
            Connector::Sentinel {
                current, replicas, ..
            } => current
                .load_full()
                .filter(|c| !c.health.is_broken())
                .map(|c| Conn::Sentinel(c, replicas.as_ref().and_then(ReplicaReads::ready))),
        }
    }

    /// The connection, made on first use (inside the runtime).
    pub(crate) async fn connection(&self, config: &RedisConfig) -> Result<Conn> {
        match self {
            Connector::Tracked {
                client,
                tracking,
                current,
                connecting,
            } => {
                let _connecting = connecting.lock().await;
                if let Some(connection) = self.ready() {
                    return Ok(connection);
                }
                // A new connection: tracking is off on it until turned on.
                tracking.cache.disable();
                let health = Health::new(Duration::ZERO);
                let options = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(Some(config.response_timeout))
                    .set_push_sender(tracking.push_sender(Some(health.broken.clone())));
                let connection = open_named(client, &options, config).await?;
                current.store(Some(Current::new(connection.clone(), health, None)));
                Ok(Conn::Tracked(connection))
            }
            Connector::Single { client, connection } => {
                let manager = connection
                    .get_or_try_init(|| async {
                        let options = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(config.connect_timeout))
                            .set_response_timeout(Some(config.response_timeout))
                            .set_number_of_retries(1)
                            .set_max_delay(Duration::from_millis(100));
                        let mut manager =
                            ConnectionManager::new_lazy_with_config((**client).clone(), options)
                                .map_err(backend_error)?;
                        // It may not exist yet.
                        name(&mut manager, config).await;
                        Ok::<_, Error>(manager)
                    })
                    .await?;
                Ok(Conn::Single(manager.clone()))
            }
            Connector::Sentinel {
                sentinel,
                current,
                wait,
                replicas,
            } => {
                let mut sentinel = sentinel.lock().await;
                if let Some(connection) = self.ready() {
                    return Ok(connection);
                }
                let connection = open_from_sentinel(&mut sentinel, config).await?;
                let health = Health::new(Duration::ZERO);
                let wait = wait.map(|(replicas, timeout_ms)| {
                    Arc::new(Waiter {
                        replicas,
                        timeout_ms,
                        written: Default::default(),
                        last: tokio::sync::Mutex::new((0, replicas, std::time::Instant::now())),
                    })
                });
                let primary = Current::new(connection, health, wait);
                current.store(Some(primary.clone()));
                Ok(Conn::Sentinel(
                    primary,
                    replicas.as_ref().and_then(ReplicaReads::ready),
                ))
            }
            Connector::Cluster(cluster) => cluster.first().await,
        }
    }
}

impl Conn {
    /// Whether keys may live on several nodes.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(..))
    }

    /// The nodes a keyspace-wide command (SCAN) must visit.
    pub(crate) async fn primaries(&mut self) -> RedisResult<Vec<Node>> {
        let Conn::Cluster(cluster, _) = self else {
            return Ok(vec![None]);
        };
        // CLUSTER SLOTS: [[start, end, [host, port, id, ..], replicas..], ..]
        let slots = cluster
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let mut nodes: Vec<Node> = Vec::new();
        for range in as_array(slots)? {
            let primary = as_array(range)?.into_iter().nth(2).ok_or_else(malformed)?;
            let mut fields = as_array(primary)?.into_iter();
            let host: String = redis::from_redis_value(fields.next().ok_or_else(malformed)?)?;
            let port: u16 = redis::from_redis_value(fields.next().ok_or_else(malformed)?)?;
            let node = Some((host, port));
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        Ok(nodes)
    }

    /// Runs `cmd` on `node` (a primary from [`Conn::primaries`]).
    pub(crate) async fn query_on<T: FromRedisValue>(
        &mut self,
        node: &Node,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match (self, node) {
            (Conn::Cluster(cluster, _), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = cluster.route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(value)?)
            }
            (conn, _) => cmd.query_async(conn).await,
        }
    }

    /// Runs `pipe` on `node`, in order on one connection.
    pub(crate) async fn pipeline_on(&mut self, node: &Node, pipe: &Pipeline) -> RedisResult<()> {
        match (self, node) {
            (Conn::Cluster(cluster, _), Some((host, port))) => {
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                let count = pipe.cmd_iter().count();
                cluster
                    .route_pipeline(pipe.clone(), 0, count, route)
                    .await
                    .map(drop)
            }
            (conn, _) => pipe.exec_async(conn).await,
        }
    }

    /// Splits `items` into groups whose keys share a slot (one group unless
    /// this is a cluster), keeping their order within a group.
    pub(crate) fn by_slot<T>(&self, items: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<Vec<T>> {
        if !self.is_cluster() {
            return vec![items];
        }
        let mut groups: Vec<(Slot, Vec<T>)> = Vec::new();
        for item in items {
            let slot = Slot::for_key(key(&item));
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, group)) => group.push(item),
                None => groups.push((slot, vec![item])),
            }
        }
        groups.into_iter().map(|(_, group)| group).collect()
    }
}

fn as_array(value: Value) -> RedisResult<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        _ => Err(malformed()),
    }
}

fn malformed() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "unexpected CLUSTER SLOTS reply"))
}

/// A multiplexed connection to `client`'s server, named `client_name`.
async fn open_named(
    client: &redis::Client,
    options: &AsyncConnectionConfig,
    config: &RedisConfig,
) -> Result<MultiplexedConnection> {
    let mut connection = client
        .get_multiplexed_async_connection_with_config(options)
        .await
        .map_err(backend_error)?;
    name(&mut connection, config).await;
    Ok(connection)
}

/// A connection to the server `sentinel` names (its service's primary, or
/// a replica), named `client_name`.
async fn open_from_sentinel(
    sentinel: &mut SentinelClient,
    config: &RedisConfig,
) -> Result<MultiplexedConnection> {
    // None to be had (a primary is being elected, or the sentinels are out
    // of reach): an outage, transient.
    let client = sentinel
        .async_get_client()
        .await
        .map_err(|e| Error::backend("redis", true, e))?;
    let options = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout));
    open_named(&client, &options, config).await
}

/// Makes a connection (`make`, `what` in logs) on a task of its own, for at
/// most `budget`: the connection, or `None` — after a failure, once `pause`
/// has passed, so a failing server is not asked again at once.
async fn made_on_the_side<C, E: std::fmt::Display>(
    what: &str,
    budget: Duration,
    pause: Duration,
    make: impl std::future::Future<Output = std::result::Result<C, E>>,
) -> Option<C> {
    match tokio::time::timeout(budget, make).await {
        Ok(Ok(connection)) => {
            tracing::debug!("{what} made");
            Some(connection)
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "{what} not made");
            tokio::time::sleep(pause).await;
            None
        }
        Err(_) => {
            tracing::debug!("{what} not made in time");
            None
        }
    }
}

/// `CLIENT SETNAME client_name`, best effort.
async fn name(connection: &mut impl ConnectionLike, config: &RedisConfig) {
    let _ = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(&config.client_name)
        .query_async::<()>(connection)
        .await;
}

/// Reports how a command on a Sentinel or cluster connection ended to its
/// [`Health`]: answered, or failed for the connection's sake (the server
/// gone, a timeout, a primary demoted to replica), or abandoned after
/// waiting a quarter second (a hung server, left by the caller's deadline).
struct Watch {
    health: Arc<Health>,
    started: std::time::Instant,
    armed: bool,
}

impl Watch {
    fn new(health: &Arc<Health>) -> Watch {
        Watch {
            health: health.clone(),
            started: std::time::Instant::now(),
            armed: true,
        }
    }

    fn finish<T>(mut self, result: RedisResult<T>) -> RedisResult<T> {
        match &result {
            Err(error)
                if error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_timeout()
                    || error.is_unrecoverable_error()
                    || error.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) =>
            {
                self.health.failed()
            }
            _ => self.health.answered(),
        }
        self.armed = false;
        result
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.armed && self.started.elapsed() >= SLOW_ABANDONED {
            self.health.failed();
        }
    }
}

impl Waiter {
    /// Waits until `replicas` replicas have the write just answered on `c`
    /// (and every one before it); an error if fewer have it in time (the
    /// write is on the primary, but a failover could lose it).
    async fn replicated(
        &self,
        c: &mut MultiplexedConnection,
        health: &Arc<Health>,
    ) -> RedisResult<()> {
        let mine = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        let mut last = self.last.lock().await;
        // Replicas missing a moment ago: refused at once rather than each
        // write holding the connection for another WAIT.
        let missing =
            last.1 < self.replicas && last.2.elapsed() < Duration::from_millis(4 * self.timeout_ms);
        if last.0 < mine && !missing {
            let covered = self.written.load(Ordering::Acquire);
            let watch = Watch::new(health);
            let acknowledged: u32 = watch.finish(
                redis::cmd("WAIT")
                    .arg(self.replicas)
                    .arg(self.timeout_ms)
                    .query_async(c)
                    .await,
            )?;
            *last = (covered, acknowledged, std::time::Instant::now());
        }
        let acknowledged = last.1;
        if acknowledged >= self.replicas {
            return Ok(());
        }
        // Not an outage of the primary (reads go on): not transient.
        Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "not acknowledged",
            format!(
                "written on the primary, but only {acknowledged} of the {} replicas wait_replicas asks for acknowledged the writes (WAIT, {} ms)",
                self.replicas, self.timeout_ms
            ),
        )))
    }
}

/// Whether a command may write (anything not known to only read), so a
/// `wait_replicas` connection waits for its replicas after it.
fn writes(cmd: &Cmd) -> bool {
    const READS: &[&[u8]] = &[
        b"GET",
        b"MGET",
        b"EXISTS",
        b"PTTL",
        b"TTL",
        b"SCAN",
        b"SMEMBERS",
        b"SCARD",
        b"SISMEMBER",
        b"DBSIZE",
        b"MEMORY",
        b"PING",
        b"TYPE",
        b"STRLEN",
        b"ZCOUNT",
        b"CLIENT",
        b"INFO",
        b"ROLE",
    ];
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => !READS.iter().any(|r| name.eq_ignore_ascii_case(r)),
        _ => true,
    }
}

/// A command abandoned after this long counts as a failure of its connection.
const SLOW_ABANDONED: Duration = Duration::from_millis(250);

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Tracked(c) => c.req_packed_command(cmd),
            Conn::Cluster(c, health) => {
                let watch = Watch::new(health);
                let reply = c.req_packed_command(cmd);
                Box::pin(async move { watch.finish(reply.await) })
            }
            Conn::Sentinel(primary, replica) => {
                let writes = writes(cmd);
                Box::pin(async move {
                    if let Some(replica) = replica.as_ref().filter(|_| !writes) {
                        let mut c = replica.connection.clone();
                        if let Some(reply) =
                            replica.read(&mut c, |c| c.req_packed_command(cmd)).await
                        {
                            return reply;
                        }
                    }
                    let mut c = primary.connection.clone();
                    let health = &primary.health;
                    let reply = Watch::new(health).finish(c.req_packed_command(cmd).await)?;
                    if let Some(wait) = primary.wait.as_ref().filter(|_| writes) {
                        wait.replicated(&mut c, health).await?;
                    }
                    Ok(reply)
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Tracked(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c, health) => {
                let watch = Watch::new(health);
                let replies = c.req_packed_commands(pipeline, offset, count);
                Box::pin(async move { watch.finish(replies.await) })
            }
            Conn::Sentinel(primary, replica) => {
                let writes = pipeline.cmd_iter().any(writes);
                Box::pin(async move {
                    if let Some(replica) = replica.as_ref().filter(|_| !writes) {
                        let mut c = replica.connection.clone();
                        let on_replica = replica
                            .read(&mut c, |c| c.req_packed_commands(pipeline, offset, count))
                            .await;
                        if let Some(replies) = on_replica {
                            return replies;
                        }
                    }
                    let mut c = primary.connection.clone();
                    let health = &primary.health;
                    let replies = Watch::new(health)
                        .finish(c.req_packed_commands(pipeline, offset, count).await)?;
                    if let Some(wait) = primary.wait.as_ref().filter(|_| writes) {
                        wait.replicated(&mut c, health).await?;
                    }
                    Ok(replies)
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Tracked(c) => c.get_db(),
            Conn::Cluster(c, _) => c.get_db(),
            Conn::Sentinel(primary, _) => primary.connection.get_db(),
        }
    }
}

#[cfg(feature = "tls")]
fn certificates(config: &RedisConfig) -> Option<redis::TlsCertificates> {
    if config.ca_certs.is_none() && config.client_cert.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls: config.client_cert.clone().map(|(client_cert, client_key)| {
            redis::ClientTlsConfig {
                client_cert,
                client_key,
            }
        }),
        root_cert: config.ca_certs.clone(),
    })
}

fn client(config: &RedisConfig) -> RedisResult<redis::Client> {
    let address = config.addresses[0].as_str();
    #[cfg(feature = "tls")]
    if address.starts_with("rediss://") {
        if let Some(certificates) = certificates(config) {
            return redis::Client::build_with_tls(address, certificates);
        }
    }
    redis::Client::open(address)
}
