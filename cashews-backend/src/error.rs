//! The one error type of the library.

use std::time::Duration;

/// A boxed error from a backend's driver (redis, sqlite, io, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a cache call.
///
/// A cache miss is never an error: it is `Ok(None)`. A stored value that fails
/// to decode or to verify is a miss too (counted in `Cache::stats`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setup URL, a URL parameter or another configuration value is invalid.
    /// The message names the input and what is accepted.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A TTL could not be parsed or is out of range; `input` quotes it.
    #[error("invalid ttl {input:?}: {reason}")]
    Ttl {
        /// The rejected input, as written.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// No backend is configured for this key (no prefix matches it).
    #[error("no cache backend is configured for key {key:?}; call setup() first")]
    NotConfigured {
        /// The key that found no backend.
        key: String,
    },

    /// The backend failed to run a command.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Name of the backend (`mem`, `redis`, `disk`, ...).
        backend: &'static str,
        /// Whether retrying the same call later may succeed (connection lost, timeout).
        transient: bool,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// A value could not be encoded by the configured codec.
    #[error("cannot encode value for key {key:?}: {source}")]
    Encode {
        /// The key being written.
        key: String,
        /// The codec's error.
        #[source]
        source: BoxError,
    },

    /// A command took longer than its configured timeout.
    #[error("{command} timed out after {after:?}")]
    Timeout {
        /// The command that timed out.
        command: crate::Command,
        /// The configured limit.
        after: Duration,
    },

    /// The backend does not implement this command.
    #[error("the {backend} backend does not support {command}")]
    Unsupported {
        /// Name of the backend.
        backend: &'static str,
        /// The command it refused.
        command: crate::Command,
    },

    /// A lock is held by someone else and waiting was not allowed or timed out.
    #[error("key {key:?} is locked")]
    Locked {
        /// The locked key.
        key: String,
    },

    /// A serializable transaction read `key`, and another writer changed it
    /// before the transaction committed; nothing was written. Retry it.
    #[error("transaction conflict on key {key:?}: it changed since the transaction read it")]
    Conflict {
        /// The key that changed.
        key: String,
    },

    /// The key holds a value of another kind (for example `incr` on a struct,
    /// or `set_add` on a plain value).
    #[error("key {key:?} holds a value of another kind: {expected} expected")]
    WrongType {
        /// The key.
        key: String,
        /// The kind the command needs.
        expected: &'static str,
    },

    /// An argument is out of range (a bit field size, an offset, a count).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An integer operation would overflow `i64`.
    #[error("increment of key {key:?} would overflow")]
    Overflow {
        /// The key.
        key: String,
    },

    /// A middleware answered a command with a response of the wrong shape.
    #[error("middleware returned {got} for {command}")]
    UnexpectedResponse {
        /// The command sent.
        command: crate::Command,
        /// What came back.
        got: &'static str,
    },
}

impl Error {
    /// Whether the same call may succeed if retried later (a lost connection,
    /// a timeout). Configuration and data errors are never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Backend { transient, .. } => *transient,
            Error::Timeout { .. } | Error::Locked { .. } | Error::Conflict { .. } => true,
            _ => false,
        }
    }

    /// Builds a [`Error::Config`] from anything printable.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    /// Builds a [`Error::Backend`].
    pub fn backend(backend: &'static str, transient: bool, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend,
            transient,
            source: source.into(),
        }
    }
}
