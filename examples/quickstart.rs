//! `cargo run --example quickstart`: configure `mem://`, cache a slow async
//! function with `#[cache]`, and see a miss, a hit and an expiry with their
//! timings; then the same with explicit `get` / `set`.

use std::time::{Duration, Instant};

use cashews::cache;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    languages: Vec<String>,
}

struct User {
    id: u64,
}

#[derive(Debug)]
struct ApiError;

/// A deliberately slow "database" lookup, cached for 300 ms per user.
#[cache(ttl = "300ms", key = "user:{user.id}")]
async fn profile(user: &User) -> Result<Profile, ApiError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(Profile {
        id: user.id,
        name: format!("user-{}", user.id),
        languages: vec!["rust".into(), "python".into()],
    })
}

async fn timed(label: &str, user: &User) -> Duration {
    let started = Instant::now();
    let p = profile(user).await.expect("the lookup cannot fail");
    let took = started.elapsed();
    println!("{label:<14} {took:>10.2?}  {p:?}");
    took
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::setup("mem://?size=10000&check_interval=100ms")?;
    let cache = cashews::Cache::global();
    let user = User { id: 7 };

    let miss = timed("first call", &user).await;
    let hit = timed("second call", &user).await;
    println!("remaining      {:?}", cache.get_expire("user:7").await?);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = timed("after the ttl", &user).await;

    // The same cache, used directly.
    cache.set("greeting", &"hello").expire("1m").await?;
    let greeting: Option<String> = cache.get("greeting").await?;
    let missing: Option<String> = cache.get("nothing-here").await?;
    println!("get/set        {greeting:?}, a missing key reads {missing:?}");

    println!(
        "\nsummary: miss {miss:.2?}, hit {hit:.2?} ({:.0}x faster), after expiry {expired:.2?} (recomputed)",
        miss.as_secs_f64() / hit.as_secs_f64().max(1e-9)
    );
    assert!(
        hit < miss && expired > hit,
        "a hit is served from the cache"
    );
    Ok(())
}
