//! The table of backends that can be set up by URL.
//!
//! A driver has a name, the URL schemes it serves and a constructor. The
//! facade crate lists the drivers compiled in (by cargo feature), so there is
//! no global registration step to forget.

use std::fmt;
use std::sync::Arc;

use crate::backend::Backend;
use crate::clock::Clock;
use crate::error::Result;
use crate::url::{Params, SetupUrl};

/// What a driver may use from the cache that sets it up.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DriverContext {
    /// The cache's clock; backends that keep time locally must use it.
    pub clock: Clock,
}

impl DriverContext {
    /// A context with `clock`.
    pub fn new(clock: Clock) -> DriverContext {
        DriverContext { clock }
    }
}

/// Builds a backend from a URL. It must take every parameter it understands
/// from `params`; the cache rejects the rest. It must do no I/O: backends
/// connect on first use (or in `Cache::init`).
pub type ConnectFn = fn(&SetupUrl, &mut Params<'_>, &DriverContext) -> Result<Arc<dyn Backend>>;

/// A backend that can be set up by URL.
#[derive(Clone, Copy)]
pub struct Driver {
    /// The backend's name (`mem`).
    pub name: &'static str,
    /// The URL schemes it serves (`["redis", "rediss"]`).
    pub schemes: &'static [&'static str],
    /// Its constructor.
    pub connect: ConnectFn,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("name", &self.name)
            .field("schemes", &self.schemes)
            .finish_non_exhaustive()
    }
}
