//! Cached calls of plain (sync) functions.
//!
//! `#[cache]` on a plain `fn` builds the same cached future as on an
//! `async fn`, with the body replaced by a [`SyncBody`] standing in for it.
//! [`drive`] polls that future on the calling thread; when the future asks
//! for the body, the body runs right there, outside any poll, so it may
//! itself call cached functions, sync or not.
//!
//! Where the future is polled:
//! - in a multi-thread tokio runtime: on this thread, inside
//!   `block_in_place` (the runtime moves its other tasks to other workers);
//! - outside any runtime: on this thread, with a small private runtime (one
//!   worker thread, made on first use and kept for the process) driving
//!   I/O and timers;
//! - in a current-thread runtime: on this thread if the key's backend runs
//!   in process (memory); otherwise the runtime's only thread would wait for
//!   I/O only it can drive, so the call runs uncached and the error is
//!   reported once. (From that runtime's `spawn_blocking` threads waiting
//!   would be safe, but they cannot be told apart from its own thread.)
//!
//! A memory hit never gets here: the generated code answers it in line.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

#[cfg(doc)]
use crate::cache::Cache;

/// The body of a plain function inside its cached future: the future asks
/// for it, [`drive`] runs it and hands the output back.
#[derive(Debug)]
pub struct SyncBody<R> {
    state: Mutex<State<R>>,
}

#[derive(Debug)]
enum State<R> {
    Idle,
    Requested(Option<Waker>),
    Done(Option<R>),
}

impl<R> Default for SyncBody<R> {
    fn default() -> Self {
        SyncBody {
            state: Mutex::new(State::Idle),
        }
    }
}

impl<R> SyncBody<R> {
    /// A body not asked for yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The future standing for the body in the cached call.
    pub fn future(&self) -> impl Future<Output = R> + Send + '_
    where
        R: Send,
    {
        std::future::poll_fn(move |cx| {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *state {
                State::Done(output) => match output.take() {
                    Some(output) => Poll::Ready(output),
                    // Polled again after it answered: never, but not a panic.
                    None => Poll::Pending,
                },
                other => {
                    *other = State::Requested(Some(cx.waker().clone()));
                    Poll::Pending
                }
            }
        })
    }

    fn requested(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(|e| e.into_inner()),
            State::Requested(_)
        )
    }

    fn complete(&self, output: R) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Requested(Some(waker)) =
            std::mem::replace(&mut *state, State::Done(Some(output)))
        {
            drop(state);
            waker.wake();
        }
    }
}

/// Runs the cached future `cached` of the plain function `function` to its
/// end on this thread, running `body` when it asks for `slot`; see the
/// module docs. `in_process`: whether the key's backend runs in process
/// ([`Cache::in_process`]).
pub fn drive<R>(
    function: &'static str,
    in_process: bool,
    slot: &SyncBody<R>,
    cached: impl Future<Output = R>,
    body: impl FnOnce() -> R,
) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| poll_here(&handle, slot, cached, body))
        }
        Ok(handle) => {
            if in_process {
                return poll_here(&handle, slot, cached, body);
            }
            report_current_thread(function);
            body()
        }
        Err(_) => match private_runtime() {
            Some(runtime) => poll_here(runtime.handle(), slot, cached, body),
            None => body(),
        },
    }
}

/// Polls `cached` on this thread until it ends, parking between wakeups;
/// the body runs between polls, outside the runtime's context.
fn poll_here<R>(
    handle: &Handle,
    slot: &SyncBody<R>,
    cached: impl Future<Output = R>,
    body: impl FnOnce() -> R,
) -> R {
    let mut cached = pin!(cached);
    let mut body = Some(body);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        let polled = {
            let _context = handle.enter();
            cached.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(output) = polled {
            return output;
        }
        if slot.requested() {
            if let Some(body) = body.take() {
                slot.complete(body());
                continue;
            }
        }
        std::thread::park();
    }
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The runtime behind plain functions' cached calls made outside any
/// runtime: one worker thread for I/O and timers.
fn private_runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cashews-sync")
                .enable_all()
                .build()
                .inspect_err(|error| {
                    tracing::error!(%error, "cannot start the runtime of plain functions' cached calls; they run uncached");
                })
                .ok()
        })
        .as_ref()
}

fn report_current_thread(function: &str) {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(
            function,
            "a cached plain function was called inside a current-thread tokio runtime on a backend that needs that runtime for its I/O: it runs uncached (waiting would deadlock). Call it from a multi-thread runtime or outside any runtime, or make it async"
        );
    }
}
