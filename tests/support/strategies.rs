//! Strategy behaviour, backend-neutral: every backend runs these cases.
//! Time passes through the harness (paused tokio time on `mem://`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cashews::strategy::{
    BloomFilter, CircuitBreaker, CircuitOpen, DualBloom, Early, Failover, Hit, Limit, Locked,
    OkPart, RateLimit, RateLimited, SliceRateLimit, Soft, Whole,
};
use cashews::{Error, Ttl};

use super::Harness;

fn ttl(text: &str) -> Ttl {
    Ttl::parse(text).unwrap()
}

#[derive(Debug, PartialEq)]
pub enum Failure {
    Upstream,
    Limited,
    Open,
    Locked,
    /// Another error of the cache.
    Cache(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::Locked { .. } => Failure::Locked,
            other => Failure::Cache(other.to_string()),
        }
    }
}

impl From<RateLimited> for Failure {
    fn from(_: RateLimited) -> Self {
        Failure::Limited
    }
}

impl From<CircuitOpen> for Failure {
    fn from(_: CircuitOpen) -> Self {
        Failure::Open
    }
}

/// Lets spawned background work run.
async fn settle(h: &Harness) {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    h.let_background_finish().await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

pub async fn failover_serves_the_last_success_on_failure(h: &Harness) {
    let c = &h.cache;
    let call = |result: Result<u32, Failure>| {
        Failover::new(c, "fo", ttl("1h")).run::<OkPart>(async move { result })
    };
    assert_eq!(
        call(Err(Failure::Upstream)).await,
        Err(Failure::Upstream),
        "nothing stored yet"
    );
    assert_eq!(call(Ok(1)).await, Ok(1));
    assert_eq!(call(Ok(2)).await, Ok(2), "always calls");
    assert_eq!(
        call(Err(Failure::Upstream)).await,
        Ok(2),
        "the last success"
    );
    // `on` chooses which failures fail over.
    let only_limited = Failover::new(c, "fo", ttl("1h"))
        .on(|r: &Result<u32, Failure>| matches!(r, Err(Failure::Limited)));
    assert_eq!(
        only_limited
            .run::<OkPart>(async { Err(Failure::Upstream) })
            .await,
        Err(Failure::Upstream)
    );
    let only_limited = Failover::new(c, "fo", ttl("1h"))
        .on(|r: &Result<u32, Failure>| matches!(r, Err(Failure::Limited)));
    assert_eq!(
        only_limited
            .run::<OkPart>(async { Err(Failure::Limited) })
            .await,
        Ok(2)
    );
}

pub async fn hit_recomputes_after_cache_hits(h: &Harness) {
    let c = &h.cache;
    let calls = AtomicUsize::new(0);
    let call = || {
        Hit::new(c, "hits", ttl("1h"), 3)
            .run::<Whole>(async { calls.fetch_add(1, Ordering::SeqCst) as u32 })
    };
    assert_eq!(call().await, 0, "miss: computed");
    for _ in 0..3 {
        assert_eq!(call().await, 0, "served for three hits");
    }
    assert_eq!(call().await, 1, "the fourth hit recomputes");
    assert_eq!(call().await, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

pub async fn hit_refreshes_in_the_background_at_update_after(h: &Harness) {
    let c = &h.cache;
    let version = Arc::new(AtomicUsize::new(0));
    let call = || {
        let v = version.clone();
        let refresh: cashews::strategy::Refresh<u32> =
            Box::new(move || Box::pin(async move { v.fetch_add(1, Ordering::SeqCst) as u32 + 1 }));
        Hit::new(c, "upd", ttl("1h"), 10)
            .update_after(2)
            .refresh(refresh)
            .run::<Whole>(async { 0u32 })
    };
    assert_eq!(call().await, 0);
    assert_eq!(call().await, 0, "hit 1");
    assert_eq!(
        call().await,
        0,
        "hit 2 starts a refresh but answers at once"
    );
    settle(h).await;
    assert_eq!(version.load(Ordering::SeqCst), 1, "refreshed once");
    assert_eq!(call().await, 1, "the refreshed value");
}

pub async fn early_refreshes_once_and_answers_at_once(h: &Harness) {
    let c = &h.cache;
    let refreshes = Arc::new(AtomicUsize::new(0));
    // The refresh ends when the test says so, however slow the backend.
    let (release, released) = tokio::sync::watch::channel(false);
    let call = |value: u32| {
        let r = refreshes.clone();
        let mut released = released.clone();
        let refresh: cashews::strategy::Refresh<u32> = Box::new(move || {
            Box::pin(async move {
                r.fetch_add(1, Ordering::SeqCst);
                let _ = released.wait_for(|done| *done).await;
                100
            })
        });
        Early::new(c, "early", ttl("1h"), h.secs(60.0))
            .refresh(refresh)
            .run::<Whole>(async move { value })
    };
    assert_eq!(call(1).await, 1, "miss: computed in line");
    assert_eq!(call(2).await, 1, "fresh");
    h.advance(h.secs(61.0)).await;
    for _ in 0..20 {
        assert_eq!(call(3).await, 1, "stale, answered at once while refreshing");
    }
    release.send(true).unwrap();
    settle(h).await;
    h.advance(Duration::from_millis(200)).await;
    settle(h).await;
    assert_eq!(refreshes.load(Ordering::SeqCst), 1, "exactly one refresh");
    assert_eq!(call(4).await, 100, "the refreshed value");
}

pub async fn early_without_refresher_recomputes_in_line(h: &Harness) {
    let c = &h.cache;
    let call = |value: u32| {
        Early::new(c, "early2", ttl("1h"), h.secs(10.0)).run::<Whole>(async move { value })
    };
    assert_eq!(call(1).await, 1);
    h.advance(h.secs(11.0)).await;
    assert_eq!(call(2).await, 1, "the caller still gets the current value");
    assert_eq!(call(3).await, 2, "which was refreshed in line");
}

pub async fn soft_serves_stale_values_on_failure_until_ttl(h: &Harness) {
    let c = &h.cache;
    let call = |result: Result<u32, Failure>| {
        Soft::new(c, "soft", h.ttl(10.0), h.secs(2.0)).run::<OkPart>(async move { result })
    };
    assert_eq!(call(Ok(1)).await, Ok(1));
    assert_eq!(call(Ok(2)).await, Ok(1), "fresh for soft_ttl");
    h.advance(h.secs(3.0)).await;
    assert_eq!(
        call(Ok(3)).await,
        Ok(3),
        "recomputed in line after soft_ttl"
    );
    h.advance(h.secs(3.0)).await;
    assert_eq!(
        call(Err(Failure::Upstream)).await,
        Ok(3),
        "a failure serves the stale value"
    );
    h.advance(h.secs(10.0)).await;
    assert_eq!(
        call(Err(Failure::Upstream)).await,
        Err(Failure::Upstream),
        "not after ttl"
    );
}

pub async fn locked_runs_one_at_a_time_or_fails_without_waiting(h: &Harness) {
    let c = &h.cache;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for _ in 0..5 {
        let (c, running, most) = (c.clone(), running.clone(), most.clone());
        calls.push(tokio::spawn(async move {
            Locked::new(&c, "job", ttl("10s"))
                .run(
                    async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<(), Failure>(())
                    },
                    |_| Err(Failure::Locked),
                )
                .await
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(()));
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two at once");
    let guard = c.lock("locked:busy", "10s").await.unwrap();
    let rejected = Locked::new(c, "busy", ttl("10s"))
        .wait(Duration::ZERO)
        .run(async { Ok::<(), Failure>(()) }, |e: Error| {
            assert!(matches!(e, Error::Locked { .. }));
            Err(Failure::Locked)
        })
        .await;
    assert_eq!(rejected, Err(Failure::Locked));
    guard.release().await.unwrap();
}

pub async fn rate_limit_fixed_window_with_ban(h: &Harness) {
    let c = &h.cache;
    let call = || {
        RateLimit::new(c, "rl", 2, Duration::from_millis(500))
            .ban(Duration::from_secs(1))
            .run(async { Ok::<(), Failure>(()) }, |l| Err(l.into()))
    };
    let mut results = Vec::new();
    for (at_ms, wait_ms) in [
        (0, 0),
        (0, 0),
        (0, 0),
        (300, 300),
        (300, 0),
        (600, 300),
        (600, 0),
        (1200, 600),
    ] {
        let _ = at_ms;
        h.advance(Duration::from_millis(wait_ms)).await;
        results.push(call().await.is_ok());
    }
    assert_eq!(
        results,
        [true, true, false, false, false, false, false, true]
    );
}

pub async fn slice_rate_limit_sliding_window(h: &Harness) {
    let c = &h.cache;
    let call = || {
        SliceRateLimit::new(c, "srl", 2, Duration::from_secs(1))
            .run(async { Ok::<(), Failure>(()) }, |l| Err(l.into()))
    };
    assert_eq!(call().await, Ok(()));
    h.advance(Duration::from_millis(600)).await;
    assert_eq!(call().await, Ok(()));
    assert_eq!(
        call().await,
        Err(Failure::Limited),
        "two in the last second"
    );
    h.advance(Duration::from_millis(500)).await;
    assert_eq!(
        call().await,
        Err(Failure::Limited),
        "the first call left, the rejected one counts"
    );
    h.advance(Duration::from_millis(600)).await;
    assert_eq!(
        call().await,
        Ok(()),
        "the calls at 0.6 s left the window; the one at 1.1 s is in it"
    );
    assert_eq!(call().await, Err(Failure::Limited));
}

pub async fn circuit_breaker_opens_half_opens_and_closes(h: &Harness) {
    let c = &h.cache;
    let calls = &AtomicUsize::new(0);
    let call = |fail: bool| {
        CircuitBreaker::new(c, "cb", 50.0, h.secs(10.0), h.secs(5.0))
            .min_calls(4)
            .half_open_ttl(h.secs(5.0))
            .run(
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if fail {
                        Err(Failure::Upstream)
                    } else {
                        Ok(())
                    }
                },
                |r: &Result<(), Failure>| r.is_err(),
                |open| Err(open.into()),
            )
    };
    assert_eq!(call(false).await, Ok(()));
    assert_eq!(call(true).await, Err(Failure::Upstream));
    assert_eq!(call(false).await, Ok(()));
    assert_eq!(
        call(true).await,
        Err(Failure::Upstream),
        "2 of 4 failed: opens"
    );
    assert_eq!(call(false).await, Err(Failure::Open));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "an open circuit does not call"
    );
    h.advance(h.secs(6.0)).await;
    // Half-open: one trial goes through; its failure opens the circuit again.
    assert_eq!(call(true).await, Err(Failure::Upstream));
    assert_eq!(call(false).await, Err(Failure::Open));
    h.advance(h.secs(6.0)).await;
    assert_eq!(
        call(false).await,
        Ok(()),
        "a successful trial closes the circuit"
    );
    assert_eq!(call(true).await, Err(Failure::Upstream));
    assert_eq!(call(false).await, Ok(()), "closed: counting starts afresh");
}

pub async fn half_open_lets_a_bounded_number_of_trials_through(h: &Harness) {
    let c = &h.cache;
    let breaker = || {
        CircuitBreaker::new(c, "cb2", 10.0, h.secs(10.0), h.secs(1.0))
            .half_open_ttl(h.secs(10.0))
            .half_open_calls(2)
    };
    let fail = |r: &Result<(), Failure>| r.is_err();
    assert!(breaker()
        .run(async { Err(Failure::Upstream) }, fail, |o| Err(o.into()))
        .await
        .is_err());
    h.advance(h.secs(2.0)).await;
    // Two trials start concurrently; a third is rejected; none is a coin flip.
    let slow = || async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    };
    let (a, b, third) = tokio::join!(
        breaker().run(slow(), fail, |o| Err(o.into())),
        breaker().run(slow(), fail, |o| Err(o.into())),
        breaker().run(slow(), fail, |o| Err(o.into())),
    );
    let results = [a, b, third];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        2,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Err(Failure::Open)).count(),
        1
    );
}

pub async fn bloom_filters(h: &Harness) {
    let c = &h.cache;
    let filter = BloomFilter::new(c, "users", 1000, 1.0);
    for name in ["ann", "bob", "eve"] {
        filter.add(name).await.unwrap();
    }
    for name in ["ann", "bob", "eve"] {
        assert!(filter.contains(name).await.unwrap(), "{name}");
    }
    let mut false_positives = 0;
    for i in 0..1000 {
        false_positives += usize::from(filter.contains(&format!("other-{i}")).await.unwrap());
    }
    assert!(
        false_positives <= 5,
        "{false_positives} false positives of 1000"
    );

    let asked = AtomicUsize::new(0);
    let dual = DualBloom::new(c, "known", 1000, 1.0);
    let ask = |answer: bool| {
        let asked = &asked;
        async move {
            asked.fetch_add(1, Ordering::SeqCst);
            answer
        }
    };
    assert!(dual.run("x", ask(true)).await);
    assert!(!dual.run("y", ask(false)).await);
    assert!(dual.run("x", ask(false)).await, "remembered");
    assert!(!dual.run("y", ask(true)).await, "remembered");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

pub async fn invalidate_after_success_only(h: &Harness) {
    let c = &h.cache;
    for key in ["user:1:profile", "user:1:orders", "user:2:profile"] {
        c.set(key, &1).await.unwrap();
    }
    let failed: Result<(), Failure> =
        cashews::strategy::invalidate(c, "user:1:*", async { Err(Failure::Upstream) }, |r| {
            r.is_ok()
        })
        .await;
    assert!(failed.is_err());
    for key in ["user:1:profile", "user:1:orders", "user:2:profile"] {
        assert!(
            c.exists(key).await.unwrap(),
            "a failed call invalidates nothing"
        );
    }
    // One key: a plain delete, on every backend.
    let ok: Result<(), Failure> =
        cashews::strategy::invalidate(c, "user:1:orders", async { Ok(()) }, |r| r.is_ok()).await;
    assert!(ok.is_ok());
    assert!(!c.exists("user:1:orders").await.unwrap());
    assert!(c.exists("user:1:profile").await.unwrap());
    if !h.supports(cashews::Command::DeleteMatch) {
        return;
    }
    let ok: Result<(), Failure> =
        cashews::strategy::invalidate(c, "user:1:*", async { Ok(()) }, |r| r.is_ok()).await;
    assert!(ok.is_ok());
    assert!(c.exists("user:2:profile").await.unwrap());
    assert!(!c.exists("user:1:profile").await.unwrap());
}
