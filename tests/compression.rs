//! Compressed values (`compress=gzip|zlib|zstd`, `compress_min`) on every
//! backend compiled in: stored smaller, read back whole, and shared with
//! caches that do not compress.

mod support;

use cashews::Cache;
use serde::{Deserialize, Serialize};
use support::Harness;

/// A JSON-like document of about 64 KiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Document {
    rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    name: String,
    tags: Vec<String>,
}

fn document() -> Document {
    Document {
        rows: (0..600)
            .map(|id| Row {
                id,
                name: format!("customer number {id}"),
                tags: vec![
                    "active".into(),
                    "newsletter".into(),
                    format!("region-{}", id % 7),
                ],
            })
            .collect(),
    }
}

/// A second cache on the case's backend with `params` added to its URL.
fn with_params(h: &Harness, params: &str) -> Cache {
    let separator = if h.url.contains('?') { '&' } else { '?' };
    let cache = Cache::new();
    cache
        .setup(&format!("{}{separator}{params}", h.url))
        .unwrap();
    cache
}

mod cases {
    use super::*;

    pub async fn compressed_values_are_smaller_and_shared(h: &Harness) {
        let doc = document();
        let plain_size = {
            h.cache.set("plain", &doc).await.unwrap();
            h.cache.get_raw("plain").await.unwrap().unwrap().len()
        };
        assert!(plain_size > 20_000, "{plain_size}");
        let mut names = vec!["gzip", "zlib"];
        if cfg!(feature = "zstd") {
            names.push("zstd");
        }
        for name in names {
            // A memory cache is its own store: write and read through one
            // cache there; elsewhere a second cache shares the backend.
            let packing = if h.cache.in_process("x") {
                h.cache.clone()
            } else {
                with_params(h, &format!("compress={name}&compress_min=1KiB"))
            };
            if h.cache.in_process("x") {
                packing
                    .setup(&format!("mem://?compress={name}&compress_min=1KiB"))
                    .unwrap();
            }
            let key = format!("doc:{name}");
            packing.set(&key, &doc).await.unwrap();
            let stored = packing.get_raw(&key).await.unwrap().unwrap().len();
            assert!(stored * 5 < plain_size, "{name}: {stored} vs {plain_size}");
            assert_eq!(
                packing.get::<Document>(&key).await.unwrap(),
                Some(doc.clone())
            );
            // A cache that does not compress reads it, and the reverse.
            if !h.cache.in_process("x") {
                assert_eq!(
                    h.cache.get::<Document>(&key).await.unwrap(),
                    Some(doc.clone())
                );
                assert_eq!(
                    packing.get::<Document>("plain").await.unwrap(),
                    Some(doc.clone())
                );
            }
            // Below compress_min a value stays raw.
            packing.set("small", &7u64).await.unwrap();
            let small = packing.get_raw("small").await.unwrap().unwrap();
            assert_eq!(small[3] >> 1, 0, "{name}: raw");
        }
    }

    pub async fn broken_compressed_bytes_are_a_miss(h: &Harness) {
        // A gzip-flagged envelope whose payload is not gzip, and one that is
        // cut short: misses, never a panic.
        h.cache
            .set_raw("broken", vec![0xCA, 1, 1, 0b010, 1, 2, 3, 4])
            .await
            .unwrap();
        assert_eq!(h.cache.get::<Document>("broken").await.unwrap(), None);
        let packing = with_params(h, "compress=zlib&compress_min=0");
        if h.cache.in_process("x") {
            // The memory store is per cache: cut a value of this one.
            h.cache
                .setup("mem://?compress=zlib&compress_min=0")
                .unwrap();
        }
        let writer = if h.cache.in_process("x") {
            &h.cache
        } else {
            &packing
        };
        writer.set("whole", &document()).await.unwrap();
        let bytes = writer.get_raw("whole").await.unwrap().unwrap();
        writer
            .set_raw("cut", bytes[..bytes.len() / 2].to_vec())
            .await
            .unwrap();
        assert_eq!(writer.get::<Document>("cut").await.unwrap(), None);
    }
}

macro_rules! compression_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        backend_suite!(cases, $backend, [$attr], $make;
            compressed_values_are_smaller_and_shared, broken_compressed_bytes_are_a_miss);
    };
}

compression_suite!(
    memory,
    [tokio::test(start_paused = true)],
    Harness::memory("mem://")
);

#[cfg(feature = "redis")]
compression_suite!(
    redis,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("")
);

#[cfg(feature = "disk")]
compression_suite!(
    disk,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::disk("")
);

#[cfg(feature = "memcached")]
compression_suite!(
    memcached,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memcached("")
);

#[cfg(feature = "dynamodb")]
compression_suite!(
    dynamodb,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::dynamodb("")
);

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("compression.rs"), memory::CASES);
}

#[test]
fn setup_refuses_what_it_cannot_do() {
    let cache = Cache::new();
    for (url, says) in [
        ("mem://?compress=brotli", "compress"),
        ("mem://?compress_min=1KiB", "without compress"),
        ("mem://?compress=gzip&compress_min=lots", "compress_min"),
    ] {
        let error = cache.setup(url).unwrap_err().to_string();
        assert!(error.contains(says), "{url}: {error}");
    }
    if !cfg!(feature = "zstd") {
        let error = cache.setup("mem://?compress=zstd").unwrap_err().to_string();
        assert!(error.contains("feature `zstd`"), "{error}");
    }
}
