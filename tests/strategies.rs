//! The strategies' plain API, on every backend compiled in.

mod support;

use support::Harness;

strategy_suite!(
    memory,
    [tokio::test(start_paused = true)],
    Harness::memory("mem://?size=10000")
);

#[cfg(feature = "redis")]
strategy_suite!(
    redis,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("")
);

#[cfg(feature = "redis")]
strategy_suite!(
    redis_client_side,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("?client_side=true")
);

#[cfg(feature = "redis")]
strategy_suite!(
    redis_cluster,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis_cluster("")
);

#[cfg(feature = "disk")]
strategy_suite!(
    disk,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::disk("")
);

#[cfg(feature = "memcached")]
strategy_suite!(
    memcached,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memcached("")
);

#[cfg(feature = "dynamodb")]
strategy_suite!(
    dynamodb,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::dynamodb("")
);

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("support/strategies.rs"), memory::CASES);
}
