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

#[cfg(feature = "redis")]
conformance_suite!(
    redis_cluster_after_failover,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis_cluster_failed_over("").await
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

/// The README's "What each backend can do" table is what each backend
/// compiled in says (`Backend::unsupported`), and every command the table
/// does not list runs everywhere. `unsupported_commands_say_so` checks that
/// the refused commands really refuse; the other cases, that the rest work.
#[test]
fn the_capability_table_is_what_the_backends_do() {
    use cashews::{Cache, Command};
    let readme = include_str!("../README.md");
    let table = &readme[readme
        .find("### What each backend can do")
        .expect("the README has the capability table")..];
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let header = &rows[0];
    assert_eq!(header[0], "command");
    let dir = support::TempDir::new("capabilities");
    let urls = [
        ("mem", "mem://".to_owned()),
        ("redis", "redis://127.0.0.1:1/0".to_owned()),
        ("disk", format!("disk://?directory={}", dir.path.display())),
        ("memcached", "memcached://127.0.0.1:1".to_owned()),
        (
            "dynamodb",
            "dynamodb://k:s@cache?region=us-east-1".to_owned(),
        ),
    ];
    let mut checked = 0;
    for (column, name) in header.iter().enumerate().skip(1) {
        let (_, url) = urls
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no url for column {name}"));
        let cache = Cache::new();
        if cache.setup(url).is_err() {
            continue; // not compiled in
        }
        checked += 1;
        for command in Command::ALL {
            let row = rows
                .iter()
                .skip(2)
                .find(|row| row[0] == format!("`{}`", command.name()));
            let expected = row.is_none_or(|row| row[column].starts_with("yes"));
            assert_eq!(
                cache.supports("k", *command).unwrap(),
                expected,
                "{name}: {command:?} (the README says {})",
                if expected { "yes" } else { "no" }
            );
        }
    }
    assert!(checked >= 1);
}
