//! Tags, transactions, middlewares and scopes, run on every backend compiled in.

mod support;

use support::Harness;

features_suite!(
    memory,
    [tokio::test(start_paused = true)],
    Harness::memory("mem://?size=1000")
);

#[cfg(feature = "redis")]
features_suite!(
    redis,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("")
);

#[cfg(feature = "redis")]
features_suite!(
    redis_client_side,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("?client_side=true")
);

#[cfg(feature = "redis")]
features_suite!(
    redis_cluster,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis_cluster("")
);

#[cfg(feature = "disk")]
features_suite!(
    disk,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::disk("")
);

#[cfg(feature = "memcached")]
features_suite!(
    memcached,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memcached("")
);

#[cfg(feature = "dynamodb")]
features_suite!(
    dynamodb,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::dynamodb("")
);

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("support/features.rs"), memory::CASES);
}
