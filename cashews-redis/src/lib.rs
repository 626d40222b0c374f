//! The Redis backend of [cashews](https://docs.rs/cashews):
//! `redis://[user:pass@]host:port/db?...`.
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `suppress` | `true` | a connection failure or timeout reads as a miss / `false` (logged, counted) instead of an error; data errors (a wrong type, an overflow) always surface, and so does `ping` |
//! | `connect_timeout` | `1s` | how long a connection attempt may take |
//! | `response_timeout` | `1s` | how long a command may take |
//! | `client_name` | `cashews` | `CLIENT SETNAME` of the connection |
//! | `ssl_ca_certs` | system roots | `rediss://` only: a PEM file of the CA(s) to trust |
//! | `ssl_certfile`, `ssl_keyfile` | none | `rediss://` only: a client certificate and key (PEM) for mutual TLS |
//!
//! The TLS files are read at setup, so a missing file is a configuration
//! error there, not at the first command.
//!
//! The connection is made on first use and re-made after a failure
//! (redis-rs' connection manager), so a restarted server is used again
//! without re-creating the cache.
#![warn(missing_docs)]

mod commands;
mod scripts;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cashews_core::driver::{Driver, DriverContext};
use cashews_core::url::{Params, SetupUrl};
use cashews_core::{Backend, Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

/// The `redis://` driver.
pub const DRIVER: Driver = Driver {
    name: "redis",
    #[cfg(feature = "tls")]
    schemes: &["redis", "rediss"],
    #[cfg(not(feature = "tls"))]
    schemes: &["redis"],
    connect,
};

fn connect(url: &SetupUrl, params: &mut Params<'_>, _: &DriverContext) -> Result<Arc<dyn Backend>> {
    let config = RedisConfig::from_url(url, params)?;
    Ok(Arc::new(RedisBackend::new(config)?))
}

/// Settings of a [`RedisBackend`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The URL given to redis-rs (without cashews' parameters).
    pub address: String,
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
}

impl RedisConfig {
    /// Reads the parameters of a `redis://` URL.
    pub fn from_url(url: &SetupUrl, params: &mut Params<'_>) -> Result<RedisConfig> {
        let host = if url.hosts.is_empty() {
            "127.0.0.1:6379"
        } else {
            url.hosts.as_str()
        };
        if host.contains(',') {
            return Err(Error::config(format!(
                "setup url {:?}: several hosts need a cluster backend, which this build does not have",
                url.display
            )));
        }
        let db = if url.path.is_empty() {
            "0"
        } else {
            url.path.as_str()
        };
        if db.parse::<u16>().is_err() {
            return Err(Error::config(format!(
                "setup url {:?}: the path must be a database number, got {db:?}",
                url.display
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
                return Err(Error::config(format!(
                    "setup url {:?}: {name} needs a rediss:// url",
                    url.display
                )));
            }
            std::fs::read(path).map(Some).map_err(|e| {
                Error::config(format!(
                    "setup url {:?}: cannot read {name} {path:?}: {e}",
                    url.display
                ))
            })
        };
        let ca_certs = read("ssl_ca_certs", params)?;
        let client_cert = match (read("ssl_certfile", params)?, read("ssl_keyfile", params)?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(Error::config(format!(
                    "setup url {:?}: ssl_certfile and ssl_keyfile go together",
                    url.display
                )))
            }
        };
        Ok(RedisConfig {
            ca_certs,
            client_cert,
            address: format!("{}://{auth}{host}/{db}", url.scheme),
            suppress: params.bool("suppress")?.unwrap_or(true),
            connect_timeout: params
                .duration("connect_timeout")?
                .unwrap_or(Duration::from_secs(1)),
            response_timeout: params
                .duration("response_timeout")?
                .unwrap_or(Duration::from_secs(1)),
            client_name: params.take("client_name").unwrap_or("cashews").to_owned(),
        })
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

/// A Redis server as a cache backend.
pub struct RedisBackend {
    shared: Arc<Shared>,
}

/// What the backend and its streams share.
pub(crate) struct Shared {
    client: redis::Client,
    pub(crate) config: RedisConfig,
    connection: OnceCell<ConnectionManager>,
    suppressed: AtomicU64,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("suppress", &self.shared.config.suppress)
            .field("suppressed", &self.suppressed_errors())
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for `config`; connects on first use.
    pub fn new(config: RedisConfig) -> Result<RedisBackend> {
        let client =
            client(&config).map_err(|e| Error::config(format!("invalid redis address: {e}")))?;
        Ok(RedisBackend {
            shared: Arc::new(Shared {
                client,
                config,
                connection: OnceCell::new(),
                suppressed: AtomicU64::new(0),
            }),
        })
    }

    /// How many failures were turned into misses (`suppress=true`).
    pub fn suppressed_errors(&self) -> u64 {
        self.shared.suppressed.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// The connection, made on first use (inside the runtime).
    async fn connection(&self) -> Result<ConnectionManager> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(self.config.response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(100));
                let mut manager =
                    ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                        .map_err(backend_error)?;
                let name = self.config.client_name.clone();
                // Naming the connection is best effort (it may not exist yet).
                let _ = redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(name)
                    .query_async::<()>(&mut manager)
                    .await;
                Ok::<_, Error>(manager)
            })
            .await?;
        Ok(manager.clone())
    }

    /// Runs a command; with `suppress`, a connection failure answers `fallback`.
    async fn run<T, F, Fut>(
        &self,
        command: &'static str,
        key: &str,
        fallback: impl FnOnce() -> T,
        call: F,
    ) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        let result = match self.connection().await {
            Ok(connection) => call(connection).await.map_err(|e| map_error(e, key)),
            Err(error) => Err(error),
        };
        match result {
            Err(error) if self.config.suppress && error.is_transient() && command != "ping" => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(command, %error, "redis unavailable; treated as a miss");
                Ok(fallback())
            }
            other => other,
        }
    }
}

fn client(config: &RedisConfig) -> redis::RedisResult<redis::Client> {
    #[cfg(feature = "tls")]
    if config.address.starts_with("rediss://") {
        // rustls needs a process-wide crypto provider; install ring's unless
        // the application installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if config.ca_certs.is_some() || config.client_cert.is_some() {
            let certificates = redis::TlsCertificates {
                client_tls: config.client_cert.clone().map(|(client_cert, client_key)| {
                    redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }
                }),
                root_cert: config.ca_certs.clone(),
            };
            return redis::Client::build_with_tls(config.address.as_str(), certificates);
        }
    }
    redis::Client::open(config.address.as_str())
}

fn backend_error(error: redis::RedisError) -> Error {
    let transient = error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal();
    Error::backend("redis", transient, error)
}

/// Maps redis errors to the library's: data errors keep their meaning.
fn map_error(error: redis::RedisError, key: &str) -> Error {
    let text = error.to_string();
    if error.code() == Some("WRONGTYPE")
        || text.contains("WRONGTYPE")
        || text.contains("not an integer")
    {
        return Error::WrongType {
            key: key.to_owned(),
            expected: "another kind of value",
        };
    }
    if text.contains("overflow") {
        return Error::Overflow {
            key: key.to_owned(),
        };
    }
    backend_error(error)
}
