//! The simple cache strategy: serve a stored output, else compute, store and
//! return it. What `#[cache]` expands to, and what `get_or_set` runs.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{bypass_body, bypassed, is_none, Adapter, FunctionStats};
use crate::backend::SetOptions;
use crate::cache::flight::{Erased, Outcome, Role, Share, MAX_FLIGHT_WAIT};
use crate::cache::Cache;
use crate::middleware::Request;
use crate::ttl::Ttl;

/// When a computed output is stored.
pub enum Condition<R> {
    /// Always (the default; `None` is stored too).
    Always,
    /// Unless the stored part is `None` (`condition = not_none`).
    NotNone,
    /// When the function says so (`condition = path`).
    Custom(fn(&R) -> bool),
}

impl<R> fmt::Debug for Condition<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Condition::Always => "Always",
            Condition::NotNone => "NotNone",
            Condition::Custom(_) => "Custom",
        })
    }
}

/// One cached call: `Memo::new(&cache, key, ttl)`, options, then
/// [`run`](Memo::run) with the call's future.
///
/// A cache failure never fails the call: it is logged at warn and the
/// function's own output is returned.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::strategy::{Memo, Whole};
/// use cashews_core::{Cache, Ttl};
///
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// let ttl = Ttl::parse("10m")?;
/// let first: u64 = Memo::new(&cache, "answer".into(), ttl).run::<Whole>(async { 42 }).await;
/// let again: u64 = Memo::new(&cache, "answer".into(), ttl).run::<Whole>(async { 0 }).await;
/// assert_eq!((first, again), (42, 42));
/// # Ok(()) }
/// ```
pub struct Memo<'c, R> {
    cache: &'c Cache,
    key: String,
    ttl: Ttl,
    condition: Condition<R>,
    time_condition: Option<Duration>,
    lock: bool,
    protected: bool,
    tags: Vec<String>,
    stats: Option<&'static FunctionStats>,
    /// How a failed output reaches the callers waiting on this one.
    failures: Option<FailureShare<R>>,
    /// The TTL of a computed output, from the output (`None`: not stored).
    expire_with: Option<OutputFn<'c, R, Option<Ttl>>>,
    /// Whether a stored output is served; one that is not counts as missing.
    hit_if: Option<OutputFn<'c, R, bool>>,
    /// Whether this call ran the body (for `stats`).
    computed: AtomicBool,
}

/// A hook reading an output.
type OutputFn<'c, R, T> = Box<dyn Fn(&R) -> T + Send + Sync + 'c>;

/// Erases an output for waiters and gets it back as a clone.
struct FailureShare<R> {
    erase: fn(&R) -> Erased,
    restore: fn(&Erased) -> Option<R>,
}

impl<R> fmt::Debug for Memo<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("condition", &self.condition)
            .field("time_condition", &self.time_condition)
            .field("lock", &self.lock)
            .field("protected", &self.protected)
            .field("tags", &self.tags)
            .field("stats", &self.stats.map(FunctionStats::name))
            .field("share_failures", &self.failures.is_some())
            .field("expire_with", &self.expire_with.is_some())
            .field("hit_if", &self.hit_if.is_some())
            .finish()
    }
}

impl<'c, R> Memo<'c, R> {
    /// A cached call of `key` whose output lives `ttl`.
    pub fn new(cache: &'c Cache, key: String, ttl: Ttl) -> Self {
        Memo {
            cache,
            key,
            ttl,
            condition: Condition::Always,
            time_condition: None,
            lock: false,
            protected: true,
            tags: Vec::new(),
            stats: None,
            failures: None,
            expire_with: None,
            hit_if: None,
            computed: AtomicBool::new(false),
        }
    }

    /// Stores a computed output for the TTL `ttl` chooses from it (the
    /// output's own lifetime: an HTTP response's `max-age`, a token's
    /// expiry), in place of the memo's; `None` does not store it. Waiting
    /// callers get it either way.
    pub fn expire_with(mut self, ttl: impl Fn(&R) -> Option<Ttl> + Send + Sync + 'c) -> Self {
        self.expire_with = Some(Box::new(ttl));
        self
    }

    /// Serves a stored output only when `usable` says so; one it refuses
    /// (too old by the output's own measure, say) counts as missing: the
    /// call computes, once for concurrent callers, and replaces it.
    pub fn hit_if(mut self, usable: impl Fn(&R) -> bool + Send + Sync + 'c) -> Self {
        self.hit_if = Some(Box::new(usable));
        self
    }

    /// Callers waiting on this call (single flight) get a clone of its
    /// output when it is not stored — an `Err`, say — instead of each
    /// calling again. `#[cache]` turns it on when the output is
    /// `Clone + Send + Sync`.
    pub fn share_failures(mut self) -> Self
    where
        R: Clone + Send + Sync + 'static,
    {
        self.failures = Some(FailureShare {
            erase: |output| Arc::new(output.clone()),
            restore: |erased| erased.downcast_ref::<R>().cloned(),
        });
        self
    }

    /// When to store a computed output.
    pub fn condition(mut self, condition: Condition<R>) -> Self {
        self.condition = condition;
        self
    }

    /// Stores only outputs that took longer than `threshold` to compute.
    pub fn time_condition(mut self, threshold: impl crate::ttl::IntoTtl) -> Self {
        self.time_condition = Some(super::duration_of(threshold));
        self
    }

    /// Holds a backend lock (`lock:{key}`) while computing, so several
    /// processes sharing the backend compute once.
    pub fn lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }

    /// In-process single-flight (on by default): concurrent calls for one key
    /// compute once.
    pub fn protected(mut self, protected: bool) -> Self {
        self.protected = protected;
        self
    }

    /// Tags the stored key (see [`Cache::delete_tags`]).
    pub fn tags(mut self, tags: Vec<String>) -> Self {
        self.tags = tags;
        self
    }

    /// Counts the call's hit or miss in `stats`.
    pub fn stats(mut self, stats: &'static FunctionStats) -> Self {
        self.stats = Some(stats);
        self
    }

    /// The key this call reads and writes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Runs the call: the stored output, or `body`'s (stored per the options).
    pub async fn run<A: Adapter<R>>(self, body: impl Future<Output = R>) -> R {
        if bypassed() {
            return bypass_body(body).await;
        }
        let output = if let Some(hit) = self.read::<A>().await {
            hit
        } else if !self.protected {
            self.compute::<A>(body, true).await.0
        } else {
            single_flight(
                self.cache,
                &self.key,
                || self.read::<A>(),
                |lead| self.compute::<A>(body, lead == Lead::Flight),
                |bytes| self.decode::<A>(bytes),
                |erased| self.failures.as_ref().and_then(|f| (f.restore)(erased)),
            )
            .await
        };
        if let Some(stats) = self.stats {
            if self.computed.load(Ordering::Relaxed) {
                stats.miss();
            } else {
                stats.hit();
            }
        }
        output
    }

    async fn read<A: Adapter<R>>(&self) -> Option<R> {
        match self.cache.get::<A::Stored>(&self.key).await {
            Ok(hit) => hit
                .map(A::restore)
                .filter(|output| self.hit_if.as_ref().is_none_or(|usable| usable(output))),
            Err(error) => {
                self.cache.report_failure(
                    &error,
                    self.stats.map(FunctionStats::name),
                    &self.key,
                    "cache read failed; calling the function",
                );
                None
            }
        }
    }

    fn decode<A: Adapter<R>>(&self, bytes: &[u8]) -> Option<R> {
        self.cache
            .decode_shared::<A::Stored>(&self.key, bytes)
            .map(A::restore)
    }

    /// Computes (under the backend lock if asked and `may_lock`), stores if
    /// the conditions hold, and returns the output with its encoding for
    /// waiting callers.
    async fn compute<A: Adapter<R>>(
        &self,
        body: impl Future<Output = R>,
        may_lock: bool,
    ) -> (R, Share) {
        let guard = if self.lock && may_lock {
            self.take_lock().await
        } else {
            None
        };
        if guard.is_some() {
            // Another process may have computed while we waited for the lock.
            if let Some(hit) = self.read::<A>().await {
                release(guard).await;
                return (hit, Share::ReadAgain);
            }
        }
        self.computed.store(true, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let output = body.await;
        let elapsed = started.elapsed();
        let nothing =
            |output: &R| Share::Nothing(self.failures.as_ref().map(|f| (f.erase)(output)));
        let shared = match A::stored(&output) {
            None => nothing(&output),
            Some(stored) => match self.cache.encode(&self.key, stored) {
                Ok(bytes) => {
                    let ttl = match &self.expire_with {
                        Some(ttl_of) => ttl_of(&output),
                        None => Some(self.ttl),
                    };
                    if let (Some(ttl), true) = (ttl, self.should_store(&output, stored, elapsed)) {
                        self.store(bytes.clone(), ttl).await;
                    }
                    Share::Value(bytes)
                }
                Err(error) => {
                    tracing::warn!(key = %self.key, %error, "cannot encode the result; not cached");
                    nothing(&output)
                }
            },
        };
        release(guard).await;
        (output, shared)
    }

    fn should_store<S: serde::Serialize + ?Sized>(
        &self,
        output: &R,
        stored: &S,
        elapsed: Duration,
    ) -> bool {
        if self
            .time_condition
            .is_some_and(|threshold| elapsed <= threshold)
        {
            return false;
        }
        match &self.condition {
            Condition::Always => true,
            Condition::NotNone => !is_none(stored),
            Condition::Custom(f) => f(output),
        }
    }

    async fn store(&self, bytes: Bytes, ttl: Ttl) {
        let options = SetOptions {
            expire: ttl.duration(),
            ..SetOptions::default()
        };
        let request = Request::Set {
            key: self.key.as_str().into(),
            value: bytes,
            options,
        };
        if let Err(error) = self.cache.run_one(request).await {
            self.cache.report_failure(
                &error,
                self.stats.map(FunctionStats::name),
                &self.key,
                "cache write failed",
            );
            return;
        }
        if !self.tags.is_empty() {
            let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
            if let Err(error) = self.cache.tag(&self.key, &tags, ttl).await {
                tracing::warn!(key = %self.key, ?tags, %error, "cannot record the key under its tags");
            }
        }
    }

    async fn take_lock(&self) -> Option<crate::cache::LockGuard> {
        let Some(ttl) = self.ttl.duration() else {
            tracing::warn!(key = %self.key, "lock needs a finite ttl; computing without it");
            return None;
        };
        match self.cache.lock(&format!("lock:{}", self.key), ttl).await {
            Ok(guard) => Some(guard),
            Err(error) => {
                tracing::warn!(key = %self.key, %error, "cannot take the lock; computing without it");
                None
            }
        }
    }
}

/// Turns on [`Memo::share_failures`] where the output type allows it, by
/// autoref specialisation: `(&&ShareProbe::<R>::new()).share(memo)`. Used by
/// generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct ShareProbe<R>(PhantomData<fn() -> R>);

impl<R> ShareProbe<R> {
    #[doc(hidden)]
    pub fn new() -> Self {
        ShareProbe(PhantomData)
    }
}

impl<R> Default for ShareProbe<R> {
    fn default() -> Self {
        ShareProbe::new()
    }
}

/// The output can be cloned and sent: waiters share a failed output.
#[doc(hidden)]
pub trait ShareClonedFailures<'c, R> {
    fn share(&self, memo: Memo<'c, R>) -> Memo<'c, R>;
}

impl<'c, R: Clone + Send + Sync + 'static> ShareClonedFailures<'c, R> for &ShareProbe<R> {
    #[inline]
    fn share(&self, memo: Memo<'c, R>) -> Memo<'c, R> {
        memo.share_failures()
    }
}

/// Any other output: waiters of a failed call compute on their own.
#[doc(hidden)]
pub trait ShareNoFailures<'c, R> {
    fn share(&self, memo: Memo<'c, R>) -> Memo<'c, R>;
}

impl<'c, R> ShareNoFailures<'c, R> for ShareProbe<R> {
    #[inline]
    fn share(&self, memo: Memo<'c, R>) -> Memo<'c, R> {
        memo
    }
}

/// Who computes in [`single_flight`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lead {
    /// The flight's leader: the only caller computing in this process, which
    /// may also take a cross-process lock.
    Flight,
    /// A caller computing on its own after the leader shared nothing or took
    /// too long: others compute at the same time, so it takes no lock that
    /// would make them queue.
    Alone,
}

/// In-process single-flight around a computation: the first caller of `key`
/// leads (reads again, then computes); the others wait and `decode` the
/// leader's shared bytes. When the leader stored nothing (its call failed),
/// they `restore` a clone of its output if it sent one; otherwise, and when
/// it has not finished within [`MAX_FLIGHT_WAIT`], they compute on their
/// own, all at once — never one after another. When the leader is
/// cancelled, or found the value stored by another process, they read again
/// (and one leads the next flight if it is not there).
pub(crate) async fn single_flight<R, ReadFut, ComputeFut>(
    cache: &Cache,
    key: &str,
    read: impl Fn() -> ReadFut,
    compute: impl FnOnce(Lead) -> ComputeFut,
    decode: impl Fn(&[u8]) -> Option<R>,
    restore: impl Fn(&Erased) -> Option<R>,
) -> R
where
    ReadFut: Future<Output = Option<R>>,
    ComputeFut: Future<Output = (R, Share)>,
{
    let mut compute = Some(compute);
    loop {
        match cache.join_flight(key) {
            Role::Leader(leader) => {
                // A flight may have finished between the caller's read and the join.
                if let Some(hit) = read().await {
                    return hit;
                }
                let compute = compute.take().expect("a call leads at most once");
                let (output, shared) = compute(Lead::Flight).await;
                leader.finish(shared);
                return output;
            }
            Role::Waiter(flight) => {
                match tokio::time::timeout(MAX_FLIGHT_WAIT, flight.wait()).await {
                    Ok(Outcome::Value(bytes)) => {
                        if let Some(output) = decode(&bytes) {
                            return output;
                        }
                    }
                    Ok(Outcome::Failed(output)) => {
                        if let Some(output) = output.as_ref().and_then(&restore) {
                            return output;
                        }
                        let compute = compute.take().expect("a call computes at most once");
                        return compute(Lead::Alone).await.0;
                    }
                    Err(_) => {
                        let compute = compute.take().expect("a call computes at most once");
                        return compute(Lead::Alone).await.0;
                    }
                    Ok(Outcome::Abandoned) => {}
                }
                if let Some(hit) = read().await {
                    return hit;
                }
            }
        }
    }
}

async fn release(guard: Option<crate::cache::LockGuard>) {
    if let Some(guard) = guard {
        if let Err(error) = guard.release().await {
            tracing::warn!(%error, "cannot release the lock; it expires with its ttl");
        }
    }
}
