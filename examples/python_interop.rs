//! `cargo run --example python_interop --features redis,python`: a Rust
//! service sharing one Redis with the Python cashews service in
//! `examples/python_interop.py` (run either first, then the other: the
//! second one hits what the first cached). Uses `REDIS_URL` (default
//! `redis://127.0.0.1:6379/0`).

use cashews::strategy::{Limit, RateLimit};
use cashews::{cache, Cache};
use serde::{Deserialize, Serialize};

/// A Python dict `{"uid": ..., "name": ..., "tags": [...]}`.
#[derive(Serialize, Deserialize, Debug)]
struct Profile {
    uid: u64,
    name: String,
    tags: Vec<String>,
}

// The same key template as the Python function's: either language's call
// is the other's hit.
#[cache(ttl = "1h", key = "profile:{uid}")]
async fn profile(uid: u64) -> Profile {
    Profile {
        uid,
        name: "computed in Rust".into(),
        tags: vec!["rust".into()],
    }
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    // The Python side: cache.setup(url, secret="change-me", digestmod="sha256").
    cashews::setup(&format!(
        "{redis}?codec=cashews&secret=change-me&digestmod=sha256"
    ))?;
    let cache = Cache::global();
    if let Err(error) = cache.init().await {
        eprintln!("cannot reach {redis}: {error}\nstart one with: redis-server --port 6379");
        std::process::exit(1);
    }
    println!("profile(7) = {:?}", profile(7).await);
    // One counter, one rate limit (10 a minute) for both languages.
    println!("visits = {}", cache.incr("visits").await?);
    let allowed = RateLimit::new(cache, "api:alice", 10, "1m")
        .check()
        .await
        .is_ok();
    println!("api call for alice allowed: {allowed}");
    Ok(())
}
