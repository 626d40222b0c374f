//! `iterator`: cache the items of a stream and replay them.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::Adapter;
use crate::backend::BoxFuture;
use crate::cache::Cache;
use crate::ttl::Ttl;

/// A stream whose items are served from `iter:{key}` when stored, else
/// passed through from the inner stream and stored when it ends.
///
/// - Every item replays, whatever its value (the end is the stream's end,
///   not a "falsy" item).
/// - A stream that yields an item the adapter does not store (an `Err` with
///   [`super::OkPart`]) is not cached at all: a partial list is never replayed.
/// - A stored list that no longer decodes ends the replay and is deleted.
pub struct CachedStream<S, F, A> {
    cache: Cache,
    key: String,
    ttl: Ttl,
    /// Makes the inner stream, on a miss only (its side effects too).
    make: Option<F>,
    inner: Option<Pin<Box<S>>>,
    state: State,
    _adapter: PhantomData<fn() -> A>,
}

enum State {
    Start,
    Reading(BoxFuture<'static, Option<Vec<Vec<u8>>>>),
    Replay(std::vec::IntoIter<Vec<u8>>),
    Live {
        collected: Vec<Vec<u8>>,
        storable: bool,
    },
    Storing(BoxFuture<'static, ()>),
    Done,
}

impl<S, F, A> std::fmt::Debug for CachedStream<S, F, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStream")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<S, F, A> CachedStream<S, F, A>
where
    S: Stream,
    F: FnOnce() -> S,
    A: Adapter<S::Item>,
{
    /// Caches at `iter:{key}` for `ttl` the items of the stream `make`
    /// returns; `make` is called only on a miss.
    pub fn new(cache: Cache, key: &str, ttl: Ttl, make: F) -> Self {
        CachedStream {
            cache,
            key: format!("iter:{key}"),
            ttl,
            make: Some(make),
            inner: None,
            state: State::Start,
            _adapter: PhantomData,
        }
    }
}

impl<S, F, A> Unpin for CachedStream<S, F, A> {}

impl<S, F, A> Stream for CachedStream<S, F, A>
where
    S: Stream,
    F: FnOnce() -> S,
    A: Adapter<S::Item>,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Start => {
                    let (cache, key) = (this.cache.clone(), this.key.clone());
                    this.state = State::Reading(Box::pin(async move {
                        match cache.get::<Vec<Vec<u8>>>(&key).await {
                            Ok(items) => items,
                            Err(error) => {
                                tracing::warn!(key, %error, "cache read failed; streaming from the source");
                                None
                            }
                        }
                    }));
                }
                State::Reading(read) => match read.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(items)) => this.state = State::Replay(items.into_iter()),
                    Poll::Ready(None) => {
                        this.inner = this.make.take().map(|make| Box::pin(make()));
                        this.state = State::Live {
                            collected: Vec::new(),
                            storable: true,
                        }
                    }
                },
                State::Replay(items) => {
                    let Some(bytes) = items.next() else {
                        this.state = State::Done;
                        continue;
                    };
                    if let Some(item) = this.decode(&bytes) {
                        return Poll::Ready(Some(A::restore(item)));
                    }
                    let (cache, key) = (this.cache.clone(), this.key.clone());
                    tracing::debug!(key, "a stored stream no longer decodes; deleted");
                    this.state = State::Storing(Box::pin(async move {
                        let _ = cache.delete(&key).await;
                    }));
                    this.inner = None;
                }
                State::Live {
                    collected,
                    storable,
                } => {
                    let Some(inner) = this.inner.as_mut() else {
                        this.state = State::Done;
                        continue;
                    };
                    match inner.as_mut().poll_next(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(item)) => {
                            if *storable {
                                match A::stored(&item)
                                    .map(|value| this.cache.encode(&this.key, value))
                                {
                                    Some(Ok(bytes)) => collected.push(bytes.to_vec()),
                                    _ => *storable = false,
                                }
                            }
                            return Poll::Ready(Some(item));
                        }
                        Poll::Ready(None) => {
                            let items = std::mem::take(collected);
                            if !*storable {
                                this.state = State::Done;
                                continue;
                            }
                            let (cache, key, ttl) =
                                (this.cache.clone(), this.key.clone(), this.ttl);
                            this.state = State::Storing(Box::pin(async move {
                                if let Err(error) = cache.set(&key, &items).expire(ttl).await {
                                    tracing::warn!(key, %error, "cannot store the stream");
                                }
                            }));
                        }
                    }
                }
                State::Storing(store) => match store.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => this.state = State::Done,
                },
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl<S, F, A> CachedStream<S, F, A>
where
    S: Stream,
    A: Adapter<S::Item>,
{
    fn decode(&self, bytes: &[u8]) -> Option<A::Stored> {
        self.cache.decode_shared(&self.key, bytes)
    }
}
