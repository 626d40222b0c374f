//! Streams returned by `scan` and `get_match`: a backend returns a
//! [`BoxStream`]; [`iter_stream`] makes one from items already in memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::backend::BoxStream;

/// A stream over an iterator that is already in memory.
pub fn iter_stream<'a, I>(iter: I) -> BoxStream<'a, I::Item>
where
    I: Iterator + Send + Unpin + 'a,
{
    Box::pin(IterStream(iter))
}

struct IterStream<I>(I);

impl<I: Iterator + Unpin> Stream for IterStream<I> {
    type Item = I::Item;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}
