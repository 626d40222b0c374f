//! The background task that purges expired entries and the tag records of
//! evicted keys.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::store::Store;
use crate::clock::Clock;

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const STOPPED: u8 = 2;

/// Starts the sweep with the first command run inside a tokio runtime (setup
/// itself does no I/O and may run outside one) and stops it on close or drop.
#[derive(Debug)]
pub(super) struct Sweeper {
    interval: Option<Duration>,
    state: AtomicU8,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Sweeper {
    pub(super) fn new(interval: Option<Duration>) -> Sweeper {
        Sweeper {
            state: AtomicU8::new(if interval.is_some() { IDLE } else { STOPPED }),
            interval,
            stop: Mutex::new(None),
        }
    }

    #[inline]
    pub(super) fn ensure_started(&self, store: &Arc<Store>, clock: &Clock) {
        if self.state.load(Ordering::Relaxed) == IDLE {
            self.start(store, clock);
        }
    }

    #[cold]
    fn start(&self, store: &Arc<Store>, clock: &Clock) {
        let (Some(interval), Ok(runtime)) = (self.interval, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let mut stop = self.stop.lock();
        if self
            .state
            .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let (tx, rx) = oneshot::channel();
        *stop = Some(tx);
        runtime.spawn(sweep(Arc::downgrade(store), clock.clone(), interval, rx));
    }

    pub(super) fn stop(&self) {
        let mut stop = self.stop.lock();
        self.state.store(STOPPED, Ordering::Release);
        stop.take();
    }
}

async fn sweep(
    store: Weak<Store>,
    clock: Clock,
    interval: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let mut sleep = pin!(clock.sleep(interval));
        // Dropping the sender (close or drop of the backend) ends the task at once.
        let stopped = poll_fn(|cx| {
            if std::pin::Pin::new(&mut stop).poll(cx).is_ready() {
                Poll::Ready(true)
            } else {
                sleep.as_mut().poll(cx).map(|()| false)
            }
        })
        .await;
        let Some(store) = store.upgrade().filter(|_| !stopped) else {
            return;
        };
        let now = clock.now_ms();
        let purged = store.purge_expired(now);
        if purged > 0 {
            tracing::trace!(purged, "memory backend purged expired entries");
        }
        let cleaned = store.forget_evicted_tags(now);
        if cleaned > 0 {
            tracing::trace!(
                cleaned,
                "memory backend dropped tag records of evicted keys"
            );
        }
    }
}
