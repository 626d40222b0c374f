//! The backend conformance suite, run on every backend compiled in.

mod support;

use support::Harness;

conformance_suite!(
    memory,
    [tokio::test(start_paused = true)],
    Harness::memory("mem://?size=1000")
);

#[cfg(feature = "redis")]
conformance_suite!(
    redis,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("")
);

#[cfg(feature = "redis")]
conformance_suite!(
    redis_client_side,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("?client_side=true")
);

#[cfg(feature = "redis")]
conformance_suite!(
    redis_cluster,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis_cluster("")
);

#[cfg(feature = "disk")]
conformance_suite!(
    disk,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::disk("")
);

#[cfg(feature = "memcached")]
conformance_suite!(
    memcached,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memcached("")
);

#[cfg(feature = "dynamodb")]
conformance_suite!(
    dynamodb,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::dynamodb("")
);

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("support/conformance.rs"), memory::CASES);
}
