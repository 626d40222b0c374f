//! In-process single-flight: concurrent misses on one key run one computation.
//!
//! The first caller of a key becomes the leader; later callers wait for it and
//! receive the encoded value (so the value type needs no `Clone`). If the
//! leader fails, is cancelled or panics, the waiters are released with
//! nothing and retry — one of them becomes the next leader — so there is
//! still at most one computation at a time per key.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Box<str>, Arc<Flight>>>,
}

#[derive(Debug, Default)]
pub(crate) struct Flight {
    result: OnceLock<Option<Bytes>>,
    done: Notify,
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
    /// Hands the encoded value (or `None`: "retry") to the waiters.
    pub(crate) fn finish(self, value: Option<Bytes>) {
        let _ = self.flight.result.set(value);
        // Drop does the rest.
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let _ = self.flight.result.set(None);
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
    /// Waits for the leader; `None` means it produced nothing to share.
    pub(crate) async fn wait(&self) -> Option<Bytes> {
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
        leader.finish(Some(Bytes::from_static(b"v")));
        assert_eq!(waiting.await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_waiters_with_nothing() {
        let flights = Flights::default();
        let leader = flights.join("k");
        let Role::Waiter(waiter) = flights.join("k") else {
            panic!("second caller waits")
        };
        drop(leader);
        assert_eq!(waiter.wait().await, None);
        assert_eq!(flights.in_flight(), 0);
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "the next caller leads"
        );
    }
}
