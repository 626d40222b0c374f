//! The result of a [`Request`](crate::command::Request): a
//! [`Response`], and typed accessors for its payload.

use bytes::Bytes;

use crate::backend::{BoxStream, Expiry};
use crate::command::Command;
use crate::error::{Error, Result};

/// The result of a [`Request`](crate::command::Request).
#[non_exhaustive]
pub enum Response {
    /// `get`, `get_raw`.
    Value(Option<Bytes>),
    /// `get_many`, aligned with the keys.
    Values(Vec<Option<Bytes>>),
    /// `set`, `delete`, `exists`, `expire`, locks.
    Bool(bool),
    /// `incr`.
    Int(i64),
    /// `delete_many`, `delete_match`, `get_keys_count`, `slice_incr`, `set_add`, `set_remove`.
    Count(u64),
    /// `get_expire`.
    Expiry(Expiry),
    /// `get_size`.
    Size(Option<u64>),
    /// `get_bits`, `incr_bits`.
    Fields(Vec<u64>),
    /// `set_pop`.
    Members(Vec<String>),
    /// `scan`.
    Keys(BoxStream<'static, Result<String>>),
    /// `get_match`.
    Entries(BoxStream<'static, Result<(String, Bytes)>>),
    /// `set_many`, `apply`, `ping`, `clear`.
    Unit,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Response::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Response::Values(v) => f.debug_tuple("Values").field(v).finish(),
            Response::Bool(v) => f.debug_tuple("Bool").field(v).finish(),
            Response::Int(v) => f.debug_tuple("Int").field(v).finish(),
            Response::Count(v) => f.debug_tuple("Count").field(v).finish(),
            Response::Expiry(v) => f.debug_tuple("Expiry").field(v).finish(),
            Response::Size(v) => f.debug_tuple("Size").field(v).finish(),
            Response::Fields(v) => f.debug_tuple("Fields").field(v).finish(),
            Response::Members(v) => f.debug_tuple("Members").field(v).finish(),
            Response::Keys(_) => f.write_str("Keys(..)"),
            Response::Entries(_) => f.write_str("Entries(..)"),
            Response::Unit => f.write_str("Unit"),
        }
    }
}

macro_rules! accessors {
    ($($name:ident => $variant:ident($t:ty)),* $(,)?) => {
        impl Response {
            fn kind(&self) -> &'static str {
                match self {
                    $(Response::$variant(..) => stringify!($variant),)*
                    Response::Unit => "Unit",
                }
            }
            $(
                #[doc = concat!("The `", stringify!($variant), "` payload, or an error naming what came instead.")]
                pub fn $name(self, command: Command) -> Result<$t> {
                    match self {
                        Response::$variant(v) => Ok(v),
                        other => Err(Error::UnexpectedResponse { command, got: other.kind() }),
                    }
                }
            )*
            /// Checks the response is `Unit`.
            pub fn into_unit(self, command: Command) -> Result<()> {
                match self {
                    Response::Unit => Ok(()),
                    other => Err(Error::UnexpectedResponse { command, got: other.kind() }),
                }
            }
        }
    };
}

accessors! {
    into_value => Value(Option<Bytes>),
    into_values => Values(Vec<Option<Bytes>>),
    into_bool => Bool(bool),
    into_int => Int(i64),
    into_count => Count(u64),
    into_expiry => Expiry(Expiry),
    into_size => Size(Option<u64>),
    into_fields => Fields(Vec<u64>),
    into_members => Members(Vec<String>),
    into_keys => Keys(BoxStream<'static, Result<String>>),
    into_entries => Entries(BoxStream<'static, Result<(String, Bytes)>>),
}
