//! The connection: one server through redis-rs' connection manager, one
//! server with client-side caching through a multiplexed connection this
//! module re-makes when it breaks, or a cluster through its cluster
//! connection, behind one type.
//!
//! Client-side caching does not use the connection manager: it hands the
//! server's pushes to a channel read by another task, so a reply could reach
//! its caller before an invalidation that arrived ahead of it was applied. A
//! multiplexed connection calls the push sender on its read loop, in the
//! order the server sent pushes and replies.

use std::sync::atomic::{AtomicBool, Ordering};
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
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value,
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
        current: ArcSwapOption<Current>,
        /// Held while a connection is made, so only one is.
        connecting: tokio::sync::Mutex<()>,
    },
    Cluster {
        client: Box<ClusterClient>,
        connection: OnceCell<ClusterConnection>,
    },
}

/// A connection of [`Connector::Tracked`] and whether it broke (its push
/// sender saw the disconnection, or was dropped with it).
pub(crate) struct Current {
    connection: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

/// A handle on the connection (cheap to clone).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Tracked(MultiplexedConnection),
    Cluster(ClusterConnection),
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
        if config.cluster {
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
            return Ok(Connector::Cluster {
                client: Box::new(builder.build()?),
                connection: OnceCell::new(),
            });
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
                .filter(|c| !c.broken.load(Ordering::Acquire))
                .map(|c| Conn::Tracked(c.connection.clone())),
            Connector::Cluster { connection, .. } => connection.get().cloned().map(Conn::Cluster),
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
                let broken = Arc::new(AtomicBool::new(false));
                let options = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(Some(config.response_timeout))
                    .set_push_sender(tracking.push_sender(Some(broken.clone())));
                let mut connection = client
                    .get_multiplexed_async_connection_with_config(&options)
                    .await
                    .map_err(backend_error)?;
                // Naming the connection is best effort.
                let _ = redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(&config.client_name)
                    .query_async::<()>(&mut connection)
                    .await;
                current.store(Some(Arc::new(Current {
                    connection: connection.clone(),
                    broken,
                })));
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
                        // Naming the connection is best effort (it may not exist yet).
                        let _ = redis::cmd("CLIENT")
                            .arg("SETNAME")
                            .arg(&config.client_name)
                            .query_async::<()>(&mut manager)
                            .await;
                        Ok::<_, Error>(manager)
                    })
                    .await?;
                Ok(Conn::Single(manager.clone()))
            }
            Connector::Cluster { client, connection } => {
                let cluster = connection
                    .get_or_try_init(|| async {
                        client.get_async_connection().await.map_err(backend_error)
                    })
                    .await?;
                Ok(Conn::Cluster(cluster.clone()))
            }
        }
    }
}

impl Conn {
    /// Whether keys may live on several nodes.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// The nodes a keyspace-wide command (SCAN) must visit.
    pub(crate) async fn primaries(&mut self) -> RedisResult<Vec<Node>> {
        let Conn::Cluster(cluster) = self else {
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
            (Conn::Cluster(cluster), Some((host, port))) => {
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
            (Conn::Cluster(cluster), Some((host, port))) => {
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

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Tracked(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
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
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Tracked(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
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
