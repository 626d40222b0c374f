//! In-process single-flight: concurrent misses on one key run one computation.
//!
//! The first caller of a key becomes the leader; later callers wait for it and
//! receive the encoded value (so the value type needs no `Clone`).
//!
//! Waiters never run one after another:
//! - if the leader's call produced nothing to store (an `Err` that is not
//!   cached, a value that cannot be encoded), the waiters get a clone of its
//!   output where the caller can clone it (`Memo::share_failures`, which
//!   `#[cache]` turns on for every `Clone + Send + Sync` output); otherwise
//!   every waiter computes on its own, at once;
//! - if the leader is cancelled or panics, the waiters retry: one of them
//!   leads the next flight;
//! - a leader that has not finished after [`MAX_FLIGHT_WAIT`] no longer holds
//!   its waiters: each computes on its own.

use std::any::Any;
use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Box<str>, Arc<Flight>>>,
}

/// The longest a caller waits for another caller's computation of the same
/// key before computing on its own.
pub const MAX_FLIGHT_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(crate) struct Flight {
    result: OnceLock<Outcome>,
    done: Notify,
}

/// A leader's output, type-erased, for waiters to clone.
pub(crate) type Erased = Arc<dyn Any + Send + Sync>;

/// What a leader hands its waiters.
#[derive(Clone, Debug)]
pub(crate) enum Share {
    /// The encoded value.
    Value(Bytes),
    /// Nothing stored: the call failed (or its value cannot be encoded).
    /// Waiters clone the output if it is here, else each computes on its own.
    Nothing(Option<Erased>),
    /// The value is in the cache now (another process stored it while the
    /// leader waited for its lock): read it.
    ReadAgain,
}

/// How a flight ended, as its waiters see it.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// The leader's encoded value.
    Value(Bytes),
    /// The leader finished with nothing stored: clone its output if given,
    /// else compute alone.
    Failed(Option<Erased>),
    /// The leader was cancelled or panicked, or asks them to read again:
    /// retry.
    Abandoned,
}

pub(crate) enum Role<'f> {
    Leader(Leader<'f>),
    Waiter(Arc<Flight>),
}

/// Held by the computing caller; releases the waiters when dropped.
pub(crate) struct Leader<'f> {
    flights: &'f Flights,
    key: Box<str>,
    flight: Arc<Flight>,
}

impl Flights {
    pub(crate) fn join(&self, key: &str) -> Role<'_> {
        let mut map = self.map.lock();
        if let Some(flight) = map.get(key) {
            return Role::Waiter(flight.clone());
        }
        let flight = Arc::new(Flight::default());
        map.insert(key.into(), flight.clone());
        Role::Leader(Leader {
            flights: self,
            key: key.into(),
            flight,
        })
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.map.lock().len()
    }
}

impl Leader<'_> {
    /// Hands the leader's outcome to the waiters.
    pub(crate) fn finish(self, share: Share) {
        let _ = self.flight.result.set(match share {
            Share::Value(bytes) => Outcome::Value(bytes),
            Share::Nothing(output) => Outcome::Failed(output),
            Share::ReadAgain => Outcome::Abandoned,
        });
        // Drop does the rest.
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let _ = self.flight.result.set(Outcome::Abandoned);
        {
            let mut map = self.flights.map.lock();
            if map
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                map.remove(&self.key);
            }
        }
        self.flight.done.notify_waiters();
    }
}

impl Flight {
    /// Waits for the leader's outcome.
    pub(crate) async fn wait(&self) -> Outcome {
        loop {
            let mut notified = pin!(self.done.notified());
            notified.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_get_the_leaders_value_and_the_entry_is_removed() {
        let flights = Flights::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first caller leads")
        };
        let Role::Waiter(waiter) = flights.join("k") else {
            panic!("second caller waits")
        };
        let waiting = tokio::spawn(async move { waiter.wait().await });
        tokio::task::yield_now().await;
        leader.finish(Share::Value(Bytes::from_static(b"v")));
        assert!(matches!(
            waiting.await.unwrap(),
            Outcome::Value(v) if v == Bytes::from_static(b"v")
        ));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_waiters_to_retry() {
        let flights = Flights::default();
        let leader = flights.join("k");
        let Role::Waiter(waiter) = flights.join("k") else {
            panic!("second caller waits")
        };
        drop(leader);
        assert!(matches!(waiter.wait().await, Outcome::Abandoned));
        assert_eq!(flights.in_flight(), 0);
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "the next caller leads"
        );
    }

    #[tokio::test]
    async fn a_leader_with_nothing_to_share_says_so() {
        let flights = Flights::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first caller leads")
        };
        let Role::Waiter(waiter) = flights.join("k") else {
            panic!("second caller waits")
        };
        leader.finish(Share::Nothing(None));
        assert!(matches!(waiter.wait().await, Outcome::Failed(None)));
    }
}
