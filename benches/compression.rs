//! Compressed values on Redis: stored size and `set`/`get` time of a 64 KiB
//! JSON-like document, raw and with each compression, in one run (ratios
//! against raw).
//!
//! `cargo bench --bench compression --features redis,compress,zstd`

mod support;

#[path = "../tests/support/process.rs"]
mod process;
#[path = "../tests/support/redis.rs"]
mod redis_server;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use support::{print_header, print_row, record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    name: String,
    email: String,
    tags: Vec<String>,
    score: f64,
}

/// About 64 KiB once encoded.
fn document() -> Vec<Row> {
    (0..910)
        .map(|id| Row {
            id,
            name: format!("customer number {id}"),
            email: format!("customer.{id}@example.com"),
            tags: vec!["active".into(), format!("region-{}", id % 7)],
            score: id as f64 * 1.5,
        })
        .collect()
}

const ROUNDS: u32 = 300;

fn main() {
    let server = redis_server::RedisServer::start();
    let runtime = support::runtime();
    let doc = document();
    let mut results = Vec::new();
    for name in ["raw", "gzip", "zlib", "zstd"] {
        if name == "zstd" && !cfg!(feature = "zstd") {
            continue;
        }
        let cache = cashews::Cache::new();
        let url = match name {
            "raw" => server.url(),
            other => format!("{}?compress={other}", server.url()),
        };
        cache.setup(&url).unwrap();
        let key = format!("doc:{name}");
        let (size, set_ns, get_ns) = runtime.block_on(async {
            cache.set(&key, &doc).await.unwrap();
            let size = cache.get_raw(&key).await.unwrap().unwrap().len();
            let started = Instant::now();
            for _ in 0..ROUNDS {
                cache.set(&key, &doc).await.unwrap();
            }
            let set_ns = started.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
            let started = Instant::now();
            for _ in 0..ROUNDS {
                let back: Vec<Row> = cache.get(&key).await.unwrap().unwrap();
                assert_eq!(back.len(), doc.len());
            }
            let get_ns = started.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
            (size, set_ns, get_ns)
        });
        println!("{name:<5} stored {size:>6} bytes");
        record(
            "compression.tsv",
            &format!("{name}\t{size}\t{set_ns:.0}\t{get_ns:.0}"),
        );
        results.push((name, size, set_ns, get_ns));
    }
    let (_, raw_size, raw_set, raw_get) = results[0];
    let title = "compression on Redis, 64 KiB document (vs raw)";
    print_header(title);
    for (name, size, set_ns, get_ns) in &results[1..] {
        print_row(
            title,
            &format!("{name} size / raw size"),
            Some(*size as f64),
            Some(raw_size as f64),
        );
        print_row(
            title,
            &format!("{name} set / raw set"),
            Some(*set_ns),
            Some(raw_set),
        );
        print_row(
            title,
            &format!("{name} get / raw get"),
            Some(*get_ns),
            Some(raw_get),
        );
    }
}
