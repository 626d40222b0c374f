//! Client-side caching: the local copy, the server's reports, and keeping
//! both in step with this process's own commands.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cashews_backend::backend::Kept;
use cashews_backend::memory::{LocalCache, Ticket};
use cashews_backend::Clock;
use redis::aio::AsyncPushSender;
use redis::{PushInfo, PushKind, Value};

use crate::{ClientSideConfig, Shared};

/// The local copy and what it needs to follow the server.
pub(crate) struct Tracking {
    pub(crate) cache: LocalCache,
    prefix: String,
    max_ttl: Duration,
    /// Set while a task turns tracking on or checks it, so others do not
    /// repeat it.
    enabling: AtomicBool,
    /// Cluster only: how often every primary is asked whether it tracks
    /// this client, and when next (on `clock`, ms).
    check: Option<(Duration, AtomicU64)>,
    clock: Clock,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("prefix", &self.prefix)
            .field("local", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Tracking {
    /// The local copy for `config`; `cluster`: its primaries' tracking is
    /// checked every `check_interval`.
    pub(crate) fn new(config: &ClientSideConfig, clock: Clock, cluster: bool) -> Tracking {
        Tracking {
            cache: LocalCache::new(config.local_size, clock.clone()),
            prefix: config.prefix.clone(),
            max_ttl: config.local_max_ttl,
            enabling: AtomicBool::new(false),
            check: cluster.then(|| (config.check_interval, AtomicU64::new(0))),
            clock,
        }
    }

    /// Whether the check of every primary's tracking is due; if so, the
    /// caller runs it (the next one is due an interval later).
    #[inline]
    fn check_due(&self) -> bool {
        let Some((interval, next)) = &self.check else {
            return false;
        };
        let now = self.clock.now_ms();
        let due = next.load(Ordering::Relaxed);
        now >= due
            && next
                .compare_exchange(
                    due,
                    now + interval.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Whether `key` is kept locally.
    #[inline]
    pub(crate) fn covers(&self, key: &str) -> bool {
        cashews_backend::layout::has_prefix(key, &self.prefix)
    }

    /// How long a value read with this `PTTL` may be kept locally.
    pub(crate) fn local_ttl(&self, pttl: i64) -> Option<Duration> {
        match pttl {
            -1 => Some(self.max_ttl),
            ms if ms > 0 => Some(Duration::from_millis(ms as u64).min(self.max_ttl)),
            // Gone, or expiring now.
            _ => None,
        }
    }

    /// How long a value this process wrote with `expire` may be kept locally.
    pub(crate) fn written_ttl(&self, expire: Option<Duration>) -> Duration {
        expire.map_or(self.max_ttl, |e| e.min(self.max_ttl))
    }

    /// Where redis-rs delivers the server's reports, on the connection's
    /// read loop (so a report is applied before any reply read after it is
    /// returned). When redis-rs drops it (its connection task ended), or
    /// reports the disconnection, the local copy is dropped and disabled and
    /// `broken` (the connection's flag, if any) is set.
    pub(crate) fn push_sender(
        self: &Arc<Self>,
        broken: Option<Arc<AtomicBool>>,
    ) -> impl AsyncPushSender {
        let guard = DisableOnDrop(self.clone(), broken);
        move |push: PushInfo| -> Result<(), std::convert::Infallible> {
            if push.kind == PushKind::Disconnection {
                guard.mark_broken();
            }
            guard.0.on_push(push);
            Ok(())
        }
    }

    fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.into_iter().next() {
                Some(Value::Array(keys)) | Some(Value::Set(keys)) => {
                    for key in keys {
                        match key {
                            Value::BulkString(bytes) => {
                                // Only UTF-8 keys are ever held locally.
                                if let Ok(key) = std::str::from_utf8(&bytes) {
                                    self.cache.invalidate(key);
                                }
                            }
                            Value::SimpleString(key) => self.cache.invalidate(&key),
                            _ => self.cache.flush(),
                        }
                    }
                }
                // A null report: the whole database changed (FLUSHDB, FLUSHALL).
                _ => {
                    tracing::debug!("redis reported a flush; local copy dropped");
                    self.cache.flush();
                }
            },
            PushKind::Disconnection => {
                tracing::debug!(
                    "redis connection lost; local copy dropped until tracking is on again"
                );
                self.cache.disable();
            }
            _ => {}
        }
    }

    /// `CLIENT TRACKING OFF` then `ON BCAST [PREFIX p] NOLOOP`: OFF first, as
    /// a connection that still tracks refuses the same prefix twice.
    fn enable_pipeline(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("CLIENT").arg("TRACKING").arg("OFF").ignore();
        let on = pipe.cmd("CLIENT").arg("TRACKING").arg("ON").arg("BCAST");
        if !self.prefix.is_empty() {
            on.arg("PREFIX").arg(self.prefix.as_str());
        }
        on.arg("NOLOOP").ignore();
        pipe
    }
}

/// Whether a `CLIENT TRACKINGINFO` reply says tracking is on in
/// broadcasting mode.
fn tracks(reply: &Value) -> bool {
    let is = |value: &Value, text: &str| match value {
        Value::SimpleString(s) => s == text,
        Value::BulkString(b) => b == text.as_bytes(),
        _ => false,
    };
    let bcast = |(name, flags): (&Value, &Value)| {
        is(name, "flags")
            && matches!(flags, Value::Array(flags) | Value::Set(flags)
                if flags.iter().any(|flag| is(flag, "bcast")))
    };
    match reply {
        Value::Map(fields) => fields.iter().map(|(k, v)| (k, v)).any(bcast),
        // RESP2 shape: a flat array of names and values.
        Value::Array(items) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).any(bcast),
        _ => false,
    }
}

struct DisableOnDrop(Arc<Tracking>, Option<Arc<AtomicBool>>);

impl DisableOnDrop {
    fn mark_broken(&self) {
        if let Some(broken) = &self.1 {
            broken.store(true, Ordering::Release);
        }
    }
}

/// Clears a flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Drop for DisableOnDrop {
    fn drop(&mut self) {
        self.mark_broken();
        self.0.cache.disable();
    }
}

impl Shared {
    /// The local copy, if `key` is kept locally.
    #[inline]
    pub(crate) fn tracked(&self, key: &str) -> Option<&Tracking> {
        self.tracking.as_deref().filter(|t| t.covers(key))
    }

    /// Turns tracking on for the current connection(s) if it is off (first
    /// use, or after a reconnect), giving up at `deadline` (the command's
    /// own). Reads are served from Redis meanwhile.
    pub(crate) async fn ensure_tracking(&self, deadline: tokio::time::Instant) {
        let Some(tracking) = self.tracking.as_deref() else {
            return;
        };
        let Some(epoch) = tracking.cache.disabled_epoch() else {
            if tracking.check_due() {
                self.spawn_tracking_check();
            }
            return;
        };
        if tracking.enabling.swap(true, Ordering::AcqRel) {
            return;
        }
        // Cleared however this ends, a cancelled or timed-out attempt included.
        let _enabling = ClearOnDrop(&tracking.enabling);
        let pipe = tracking.enable_pipeline();
        let result = async {
            let mut conn = self.connection().await?;
            let nodes = conn.primaries().await.map_err(crate::backend_error)?;
            for node in &nodes {
                conn.pipeline_on(node, &pipe)
                    .await
                    .map_err(crate::backend_error)?;
            }
            Ok::<_, cashews_backend::Error>(nodes.len())
        };
        match tokio::time::timeout_at(deadline, result).await {
            Ok(Ok(nodes)) => {
                if tracking.cache.enable(epoch) {
                    tracing::debug!(nodes, "redis client tracking on");
                }
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "redis client tracking not enabled; reads go to redis")
            }
            Err(_) => {
                tracing::debug!("redis client tracking not enabled in time; reads go to redis")
            }
        }
    }

    /// Asks every primary, on a task of its own, whether it tracks this
    /// client (see [`Shared::check_tracking`]).
    fn spawn_tracking_check(&self) {
        if let (Some(shared), Ok(runtime)) =
            (self.me.upgrade(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move { shared.check_tracking().await });
        }
    }

    /// Asks every primary of the cluster whether it tracks this client
    /// (`CLIENT TRACKINGINFO` on the connection reads of its keys use). A
    /// primary that does not — a node the cluster's slots moved to after
    /// tracking was turned on — would not report writes of its keys: the
    /// local copy is dropped and disabled, and the next read turns
    /// tracking on for every primary. A primary that does not answer is
    /// left alone: reads of its keys fail as well, and a connection that
    /// breaks disables the local copy by itself.
    pub(crate) async fn check_tracking(&self) {
        let Some(tracking) = self.tracking.as_deref() else {
            return;
        };
        if tracking.enabling.swap(true, Ordering::AcqRel) {
            return;
        }
        let _checking = ClearOnDrop(&tracking.enabling);
        let check = async {
            let mut conn = self.connection().await?;
            let nodes = conn.primaries().await.map_err(crate::backend_error)?;
            let info = redis::cmd("CLIENT").arg("TRACKINGINFO").clone();
            let mut untracked = Vec::new();
            for node in nodes {
                if let Ok(reply) = conn.query_on::<Value>(&node, &info).await {
                    if !tracks(&reply) {
                        untracked.push(node);
                    }
                }
            }
            Ok::<_, cashews_backend::Error>(untracked)
        };
        match tokio::time::timeout(self.config.response_timeout, check).await {
            Ok(Ok(untracked)) if !untracked.is_empty() => {
                tracing::debug!(
                    ?untracked,
                    "redis primaries do not track this client; local copy dropped until tracking is on again"
                );
                tracking.cache.disable();
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::debug!(%error, "redis client tracking not checked"),
            Err(_) => tracing::debug!("redis client tracking not checked in time"),
        }
    }

    /// Guards a write of `key`: when the write ends, completed or cancelled,
    /// the local copy is dropped, or replaced by [`WriteGuard::stored`]'s value.
    pub(crate) fn write_guard<'a>(&'a self, key: &'a str) -> WriteGuard<'a> {
        let tracking = self.tracked(key);
        WriteGuard {
            ticket: tracking.and_then(|t| t.cache.ticket(key)),
            tracking,
            key,
            value: None,
        }
    }

    /// Runs `write`, a change of `key` that leaves no value to keep locally.
    pub(crate) async fn guarded<T>(&self, key: &str, write: impl Future<Output = T>) -> T {
        let _guard = self.write_guard(key);
        write.await
    }

    /// Guards a write of every key matching `pattern`.
    pub(crate) fn wrote_matching(&self, pattern: &str) {
        if let Some(tracking) = self.tracking.as_deref() {
            tracking.cache.invalidate_match(pattern);
        }
    }

    /// Drops the whole local copy (this process flushed the database).
    pub(crate) fn wrote_everything(&self) {
        if let Some(tracking) = self.tracking.as_deref() {
            tracking.cache.flush();
        }
    }

    /// A ticket for a read of `key`, taken before it is sent.
    #[inline]
    pub(crate) fn ticket(&self, key: &str) -> Option<Ticket> {
        self.tracked(key).and_then(|t| t.cache.ticket(key))
    }

    /// Serves `key` from the local copy.
    #[inline]
    pub(crate) fn local(
        &self,
        key: &str,
        decoder: u64,
        visit: &mut dyn FnMut(&[u8], &mut Kept<'_>),
    ) -> bool {
        self.tracked(key).is_some_and(|t| {
            // Served locally, reads never reach `ensure_tracking`: the check
            // is started from here too.
            if t.check_due() {
                self.spawn_tracking_check();
            }
            t.cache.visit(key, decoder, visit)
        })
    }

    /// Stores a value read from Redis under `ticket`, with its `PTTL`.
    pub(crate) fn fill(&self, key: &str, value: &Bytes, pttl: i64, ticket: Option<Ticket>) {
        if let (Some(tracking), Some(ticket)) = (self.tracked(key), ticket) {
            if let Some(ttl) = tracking.local_ttl(pttl) {
                tracking.cache.fill(key, value.clone(), Some(ttl), ticket);
            }
        }
    }
}

/// See [`Shared::write_guard`].
pub(crate) struct WriteGuard<'a> {
    tracking: Option<&'a Tracking>,
    key: &'a str,
    ticket: Option<Ticket>,
    value: Option<(Bytes, Option<Duration>)>,
}

impl WriteGuard<'_> {
    /// The write stored `value` with `expire`: keep it locally.
    pub(crate) fn stored(&mut self, value: Bytes, expire: Option<Duration>) {
        if let Some(tracking) = self.tracking {
            self.value = Some((value, Some(tracking.written_ttl(expire))));
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if let Some(tracking) = self.tracking {
            tracking
                .cache
                .wrote(self.key, self.value.take(), self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking(prefix: &str) -> Arc<Tracking> {
        let config = ClientSideConfig {
            prefix: prefix.to_owned(),
            local_max_ttl: Duration::from_secs(60),
            ..ClientSideConfig::default()
        };
        let tracking = Arc::new(Tracking::new(&config, Clock::system(), false));
        let epoch = tracking.cache.disabled_epoch().unwrap();
        assert!(tracking.cache.enable(epoch));
        tracking
    }

    fn hold(tracking: &Tracking, key: &str) {
        let ticket = tracking.cache.ticket(key);
        tracking
            .cache
            .wrote(key, Some((Bytes::from_static(b"v"), None)), ticket);
    }

    fn push(kind: PushKind, data: Vec<Value>) -> PushInfo {
        PushInfo { kind, data }
    }

    #[test]
    fn the_ttl_of_a_local_copy_is_the_servers_capped() {
        let t = tracking("");
        assert_eq!(t.local_ttl(-1), Some(Duration::from_secs(60)));
        assert_eq!(t.local_ttl(1500), Some(Duration::from_millis(1500)));
        assert_eq!(t.local_ttl(90_000), Some(Duration::from_secs(60)));
        assert_eq!(t.local_ttl(-2), None, "gone");
        assert_eq!(t.local_ttl(0), None, "expiring");
        assert_eq!(t.written_ttl(None), Duration::from_secs(60));
        assert_eq!(
            t.written_ttl(Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn reports_drop_keys_or_everything() {
        let t = tracking("p:");
        assert!(t.covers("p:1") && !t.covers("q:1"));
        for key in ["p:1", "p:2", "p:3"] {
            hold(&t, key);
        }
        let broken = Arc::new(AtomicBool::new(false));
        let sender = t.push_sender(Some(broken.clone()));
        let key = |k: &str| Value::BulkString(k.as_bytes().to_vec());
        sender
            .send(push(
                PushKind::Invalidate,
                vec![Value::Array(vec![key("p:1")])],
            ))
            .unwrap();
        assert!(t.cache.get("p:1").is_none());
        assert!(t.cache.get("p:2").is_some());
        // FLUSHDB: a null report.
        sender
            .send(push(PushKind::Invalidate, vec![Value::Nil]))
            .unwrap();
        assert!(t.cache.is_empty());
        assert!(t.cache.is_enabled());
        hold(&t, "p:2");
        assert!(!broken.load(Ordering::Acquire));
        sender.send(push(PushKind::Disconnection, vec![])).unwrap();
        assert!(t.cache.is_empty());
        assert!(!t.cache.is_enabled(), "off until tracking is on again");
        assert!(broken.load(Ordering::Acquire), "the connection is re-made");
    }

    #[test]
    fn dropping_the_report_channel_disables_the_local_copy() {
        let t = tracking("");
        hold(&t, "k");
        let broken = Arc::new(AtomicBool::new(false));
        drop(t.push_sender(Some(broken.clone())));
        assert!(t.cache.is_empty());
        assert!(!t.cache.is_enabled());
        assert!(broken.load(Ordering::Acquire));
    }

    #[test]
    fn a_tracking_report_counts_only_when_broadcasting() {
        let text = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let info = |flags: &[&str]| {
            Value::Map(vec![
                (
                    Value::SimpleString("flags".into()),
                    Value::Set(flags.iter().map(|f| text(f)).collect()),
                ),
                (text("redirect"), Value::Int(-1)),
                (text("prefixes"), Value::Array(vec![])),
            ])
        };
        assert!(tracks(&info(&["on", "bcast", "noloop"])));
        assert!(!tracks(&info(&["off"])));
        assert!(
            !tracks(&info(&["on"])),
            "tracking without BCAST is not ours"
        );
        let resp2 = Value::Array(vec![
            text("flags"),
            Value::Array(vec![text("on"), text("bcast")]),
            text("redirect"),
            Value::Int(-1),
        ]);
        assert!(tracks(&resp2));
        assert!(!tracks(&Value::Nil));
        assert!(!tracks(&Value::Array(vec![text("flags")])));
    }

    #[test]
    fn the_check_is_due_once_per_interval_and_only_on_a_cluster() {
        let (clock, time) = Clock::manual();
        let config = ClientSideConfig {
            check_interval: Duration::from_secs(1),
            ..ClientSideConfig::default()
        };
        let cluster = Tracking::new(&config, clock.clone(), true);
        assert!(cluster.check_due(), "the first check is due at once");
        assert!(!cluster.check_due(), "one caller runs it");
        time.advance(Duration::from_millis(999));
        assert!(!cluster.check_due());
        time.advance(Duration::from_millis(1));
        assert!(cluster.check_due());
        assert!(!cluster.check_due());
        let single = Tracking::new(&config, clock, false);
        assert!(!single.check_due());
    }

    #[test]
    fn enabling_turns_tracking_off_then_on_with_the_prefix() {
        let packed = |t: &Tracking| {
            String::from_utf8_lossy(&t.enable_pipeline().get_packed_pipeline()).into_owned()
        };
        let with = packed(&tracking("p:"));
        assert!(with.contains("OFF") && with.contains("BCAST") && with.contains("PREFIX"));
        assert!(with.contains("NOLOOP"));
        assert!(!packed(&tracking("")).contains("PREFIX"));
    }
}
