//! `cargo run --example redis --features redis`: the quickstart on Redis.
//! Uses `REDIS_URL` (default `redis://127.0.0.1:6379/0`).

use std::time::{Duration, Instant};

use cashews::cache;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct Report {
    rows: u32,
}

#[cache(ttl = "30s", key = "report:{day}")]
async fn report(day: &str) -> Report {
    tokio::time::sleep(Duration::from_millis(100)).await; // a slow query
    Report {
        rows: day.len() as u32 * 100,
    }
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    cashews::setup(&url)?;
    if let Err(error) = cashews::Cache::global().init().await {
        eprintln!("cannot reach {url}: {error}\nstart one with: redis-server --port 6379");
        std::process::exit(1);
    }
    for attempt in ["miss", "hit"] {
        let started = Instant::now();
        let r = report("2026-11-22").await;
        println!("{attempt:<5} {:>9.2?}  {r:?}", started.elapsed());
    }
    let cache = cashews::Cache::global();
    println!(
        "ttl left: {:?}",
        cache.get_expire("report:2026-11-22").await?
    );
    println!("visits:   {}", cache.incr("visits").expire("1h").await?);
    Ok(())
}
