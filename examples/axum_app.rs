//! A slow endpoint behind `CacheLayer`, cached in Redis.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run --example axum_app --features axum,redis
//! curl -i http://127.0.0.1:3000/report          # X-Cache: MISS, after a second
//! curl -i http://127.0.0.1:3000/report          # X-Cache: HIT, at once
//! curl -i -H 'If-None-Match: "<etag>"' http://127.0.0.1:3000/report   # 304
//! sleep 10
//! curl -i http://127.0.0.1:3000/report          # X-Cache: STALE, at once (refreshing)
//! curl -i http://127.0.0.1:3000/live            # never stored
//! ```
//!
//! `REDIS_URL` chooses the server (default `redis://127.0.0.1:6379/0`),
//! `ADDR` the listening address (default `127.0.0.1:3000`).

use std::time::Duration;

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use cashews::axum::{CacheLayer, CacheOverride};
use serde::Deserialize;

#[derive(Deserialize)]
struct Report {
    region: Option<String>,
}

/// Takes a second, as a report built from a slow database would.
async fn report(Query(report): Query<Report>) -> String {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let region = report.region.as_deref().unwrap_or("all regions");
    format!("sales report for {region}\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let address = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let cache = cashews::Cache::new();
    cache.setup(&redis)?;

    // Fresh for 10 s; for a minute after that, answered at once while one
    // request refreshes it; for an hour after that, answered if the
    // handler fails.
    let app = Router::new()
        .route("/report", get(report))
        .route(
            "/live",
            get(|| async { "not cached\n" }).layer(CacheOverride::no_store()),
        )
        .layer(
            CacheLayer::new(&cache)
                .ttl("10s")?
                .stale_while_revalidate("1m")?
                .stale_if_error("1h")?,
        );

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("serving http://{}/report", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
