//! Streams returned by `scan` and `get_match`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

pub use cashews_backend::stream::iter_stream;

use crate::backend::BoxStream;
use crate::error::Result;

/// The stream of a `scan` or `get_match`: implements [`Stream`], and offers
/// [`next`](Self::next) and [`try_collect`](Self::try_collect) so no stream
/// utility crate is needed.
pub struct ResultStream<'a, T> {
    inner: BoxStream<'a, Result<T>>,
}

impl<'a, T> ResultStream<'a, T> {
    pub(crate) fn new(inner: BoxStream<'a, Result<T>>) -> Self {
        ResultStream { inner }
    }

    /// The next item, or `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await
    }

    /// Every item, or the first error.
    pub async fn try_collect(mut self) -> Result<Vec<T>> {
        let mut items = Vec::new();
        while let Some(item) = self.next().await {
            items.push(item?);
        }
        Ok(items)
    }
}

impl<T> Stream for ResultStream<'_, T> {
    type Item = Result<T>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T> fmt::Debug for ResultStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultStream").finish_non_exhaustive()
    }
}

/// The items of `streams`, one stream after the other.
pub(crate) fn concat<T: Send + 'static>(
    streams: Vec<BoxStream<'static, T>>,
) -> BoxStream<'static, T> {
    Box::pin(Concat {
        streams: streams.into_iter().collect(),
    })
}

struct Concat<T> {
    streams: std::collections::VecDeque<BoxStream<'static, T>>,
}

impl<T> Stream for Concat<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        while let Some(first) = self.streams.front_mut() {
            match first.as_mut().poll_next(cx) {
                Poll::Ready(None) => {
                    self.streams.pop_front();
                }
                other => return other,
            }
        }
        Poll::Ready(None)
    }
}

/// Maps the `Ok` items of `stream`, dropping those `f` returns `None` for;
/// errors pass through.
pub(crate) fn filter_map<T, U, F>(
    stream: BoxStream<'static, Result<T>>,
    f: F,
) -> impl Stream<Item = Result<U>> + Send + 'static
where
    T: 'static,
    U: Send + 'static,
    F: FnMut(T) -> Option<U> + Send + Unpin + 'static,
{
    FilterMap { stream, f }
}

struct FilterMap<T, F> {
    stream: BoxStream<'static, Result<T>>,
    f: F,
}

impl<T, U, F: FnMut(T) -> Option<U> + Unpin> Stream for FilterMap<T, F> {
    type Item = Result<U>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<U>>> {
        loop {
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(item))) => {
                    if let Some(mapped) = (self.f)(item) {
                        return Poll::Ready(Some(Ok(mapped)));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
