//! Caching strategies: what the `#[cache]` family of attribute macros runs,
//! usable without macros too.
//!
//! A strategy stores part of a function's output. Which part is an
//! [`Adapter`]: [`Whole`] stores the output itself (`T`, `Option<T>`), and
//! [`OkPart`] stores the `Ok` value of a `Result` — an `Err` is returned but
//! never stored, and the error type needs no serde.

mod none;
mod simple;

pub use none::is_none;
pub use simple::{Condition, Memo};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Which part of a function's output `R` is stored.
pub trait Adapter<R> {
    /// The stored type.
    type Stored: Serialize + DeserializeOwned + Send;
    /// The part to store, or `None` if this output is not stored.
    fn stored(output: &R) -> Option<&Self::Stored>;
    /// Rebuilds an output from a stored value.
    fn restore(stored: Self::Stored) -> R;
}

/// Stores the whole output.
#[derive(Debug, Clone, Copy)]
pub struct Whole;

impl<R: Serialize + DeserializeOwned + Send> Adapter<R> for Whole {
    type Stored = R;
    fn stored(output: &R) -> Option<&R> {
        Some(output)
    }
    fn restore(stored: R) -> R {
        stored
    }
}

/// Stores the `Ok` value of a `Result`; errors are not stored.
#[derive(Debug, Clone, Copy)]
pub struct OkPart;

impl<T: Serialize + DeserializeOwned + Send, E> Adapter<Result<T, E>> for OkPart {
    type Stored = T;
    fn stored(output: &Result<T, E>) -> Option<&T> {
        output.as_ref().ok()
    }
    fn restore(stored: T) -> Result<T, E> {
        Ok(stored)
    }
}
