//! Automatic batching of `GET`s (`batch=true`, the default).
//!
//! A `GET` is sent at once while fewer than [`IN_FLIGHT`] batched-path
//! requests are waiting for their replies; one that arrives while they are
//! waits in a queue instead. When a request ends (or its caller goes away),
//! or the queue holds [`BATCH_MAX`] calls, the queue leaves as one `MGET`,
//! each distinct key once, on a task of its own, so no caller's
//! cancellation can strand the others. There is no
//! timer: a lone call is sent as it comes, and a queue forms only while the
//! connection is busy, which is when one request for many keys costs the
//! server (and this process's wake-ups) less than one request per key.
//!
//! Every queued caller gets the reply for its key, or the batch's error. A
//! caller whose batch could not be sent (no runtime to run it on) sends its
//! own `GET`. Each caller keeps its own deadline.
//!
//! A queued batch is sent after each of its callers started, so it observes
//! every write that ended before any of them began: batching never answers
//! older data than an unbatched `GET` could.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use redis::RedisResult;
use tokio::sync::oneshot;

use crate::commands::plain_get;
use crate::connection::Conn;
use crate::Shared;

/// How many requests of the batched path may wait for replies before calls
/// queue. Up to this many concurrent calls go out exactly as unbatched
/// ones; fewer places (1 or 2) made batches larger but held calls back a
/// round trip at 4 to 32 concurrent tasks (the `redis` bench's sweep).
const IN_FLIGHT: usize = 8;

/// The most keys in one `MGET`: a full queue leaves at once, without
/// waiting for a place in flight, so a burst is neither held back nor sent
/// as one request the server must answer in one go.
const BATCH_MAX: usize = 16;

type Reply = RedisResult<Option<Bytes>>;

/// The queue of `GET`s waiting for the connection.
pub(crate) struct Batcher {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Requests sent and not yet answered.
    in_flight: usize,
    /// Calls waiting for the next batch.
    queue: Vec<Waiting>,
}

struct Waiting {
    key: Box<str>,
    reply: oneshot::Sender<Reply>,
}

impl Batcher {
    pub(crate) fn new() -> Batcher {
        Batcher {
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a counter and a queue, consistent after every step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// `GET key`: sent now, or with the next batch if the connection is busy.
    pub(crate) async fn batched_get(&self, batcher: &Batcher, mut conn: Conn, key: &str) -> Reply {
        let queued = {
            let mut state = batcher.state();
            if state.in_flight < IN_FLIGHT {
                state.in_flight += 1;
                None
            } else {
                let (reply, answer) = oneshot::channel();
                state.queue.push(Waiting {
                    key: key.into(),
                    reply,
                });
                // A full batch does not wait for a place in flight.
                let full = (state.queue.len() >= BATCH_MAX).then(|| {
                    state.in_flight += 1;
                    std::mem::take(&mut state.queue)
                });
                drop(state);
                if let Some(batch) = full {
                    self.spawn_batch(batch);
                }
                Some(answer)
            }
        };
        match queued {
            None => {
                let _sent = InFlight { shared: self };
                plain_get(&mut conn, key).await
            }
            Some(answer) => match answer.await {
                Ok(reply) => reply,
                // The batch was dropped unsent: this call goes alone.
                Err(_) => plain_get(&mut conn, key).await,
            },
        }
    }

    /// A request of the batched path ended: the queue, if any, leaves now
    /// (taking over the ended request's place in flight).
    fn request_ended(&self) {
        let Some(batcher) = &self.batcher else { return };
        let batch = {
            let mut state = batcher.state();
            if state.queue.is_empty() {
                state.in_flight -= 1;
                return;
            }
            std::mem::take(&mut state.queue)
        };
        self.spawn_batch(batch);
    }

    /// Sends `batch` on a task of its own; it holds a place in flight.
    fn spawn_batch(&self, batch: Vec<Waiting>) {
        let Some(shared) = self.me.upgrade() else {
            // The backend is being dropped: nothing will send the batch.
            drop(batch);
            if let Some(batcher) = &self.batcher {
                batcher.state().in_flight -= 1;
            }
            return;
        };
        // The place goes with the batch's future: given back when it ends,
        // and also if it is dropped without running (its runtime shut
        // down), when its callers are told to go alone.
        let place = Place { shared };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(send(place, batch));
            }
            Err(_) => {
                // No runtime to send it on: its callers are woken (their
                // replies dropped) and send their own GETs.
                drop(batch);
                drop(place);
            }
        }
    }
}

/// Counts a request in flight until it ends or its caller goes away.
struct InFlight<'a> {
    shared: &'a Shared,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared.request_ended();
    }
}

/// A batch's place in flight, given back when dropped.
struct Place {
    shared: Arc<Shared>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.shared.request_ended();
    }
}

/// Sends `batch` as one `MGET` (each distinct key once) and answers each
/// caller.
async fn send(place: Place, mut batch: Vec<Waiting>) {
    let shared = &place.shared;
    // Callers that went away (their deadline passed) are not asked for.
    batch.retain(|waiting| !waiting.reply.is_closed());
    if batch.is_empty() {
        return;
    }
    let mut slots: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut keys: Vec<&str> = Vec::with_capacity(batch.len());
    let at: Vec<usize> = batch
        .iter()
        .map(|waiting| {
            *slots.entry(&waiting.key).or_insert_with(|| {
                keys.push(&waiting.key);
                keys.len() - 1
            })
        })
        .collect();
    // Bounded like any command; every caller also keeps its own deadline.
    let reply = tokio::time::timeout_at(shared.deadline(), async {
        let mut conn = shared.connection().await.map_err(to_redis)?;
        redis::cmd("MGET")
            .arg(&keys)
            .query_async::<Vec<Option<Vec<u8>>>>(&mut conn)
            .await
    })
    .await;
    let reply = match reply {
        Ok(Ok(values)) if values.len() == keys.len() => Ok(values),
        Ok(Ok(values)) => Err(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "MGET answered another number of values than keys",
            format!("{} keys, {} values", keys.len(), values.len()),
        ))),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "MGET batch timed out",
        ))),
    };
    match reply {
        Ok(values) => {
            let values: Vec<Option<Bytes>> =
                values.into_iter().map(|v| v.map(Bytes::from)).collect();
            for (waiting, at) in batch.into_iter().zip(at) {
                // A caller that went away does not take the answer.
                let _ = waiting.reply.send(Ok(values[at].clone()));
            }
        }
        Err(error) => {
            for waiting in batch {
                let _ = waiting.reply.send(Err(error.clone()));
            }
        }
    }
}

fn to_redis(error: cashews_backend::Error) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "no connection for an MGET batch",
        error.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RedisBackend, RedisConfig};

    #[test]
    fn a_batch_dropped_before_it_ran_gives_its_place_back() {
        // No server is needed: the batch never runs.
        let backend =
            RedisBackend::new(RedisConfig::parse("redis://127.0.0.1:1/0").unwrap()).unwrap();
        let shared = &backend.shared;
        let batcher = shared.batcher.as_ref().expect("batching is on by default");
        let (reply, answer) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // The place the batch holds, then the batch: spawned, not yet
            // run when the runtime goes away.
            batcher.state().in_flight += 1;
            shared.spawn_batch(vec![Waiting {
                key: "k".into(),
                reply,
            }]);
        });
        drop(runtime);
        assert_eq!(batcher.state().in_flight, 0, "the place is given back");
        assert!(
            answer.blocking_recv().is_err(),
            "its caller is told to go alone"
        );
    }
}
