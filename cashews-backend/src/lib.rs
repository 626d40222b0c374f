//! What a **cashews** backend is made of: the [`Backend`] trait and its
//! contract, the [`Driver`] that builds a backend from a setup URL, URL
//! parameters, glob patterns, bit fields, streams, clocks, the command
//! table, the storage layout the cache expects, and the in-process
//! [`MemoryBackend`] (also the local tier of remote backends).
//!
//! Applications use the `cashews` crate; a backend author depends on this
//! crate only (`cashews::backend` re-exports it).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod availability;
pub mod backend;
pub mod bits;
pub mod cas;
pub mod clock;
pub mod command;
pub mod driver;
pub mod error;
pub mod glob;
pub mod layout;
pub mod memory;
pub mod response;
pub mod stream;
pub mod ttl;
pub mod url;

/// Write a [`Backend`] impl as `async fn`s under `#[async_trait]`
/// (`#[cashews::backend::async_trait]`): one boxed future per call, as the
/// trait object needs.
pub use async_trait::async_trait;
pub use availability::{Availability, NetworkParams};
pub use backend::{
    AnyValue, Backend, BoxFuture, BoxStream, Exist, Expiry, SetOptions, ValueStore, Write,
};
pub use clock::{Clock, ManualClock};
pub use command::{dispatch, Command, CommandSet, Request};
pub use driver::{Driver, DriverContext};
pub use error::{BoxError, Error, Result};
pub use memory::{MemoryBackend, MemoryConfig};
pub use response::Response;
pub use ttl::{ExpireAt, IntoExpireAt, IntoTtl, ResultTtl, Ttl};
