//! `cargo run --example quickstart`: configure `mem://`, store and read a typed
//! struct, see a miss, a hit and an expiry with their timings.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    languages: Vec<String>,
}

/// A deliberately slow "database" lookup.
async fn load_profile(id: u64) -> Profile {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Profile {
        id,
        name: format!("user-{id}"),
        languages: vec!["rust".into(), "python".into()],
    }
}

/// Read-through: the cache first, the database on a miss.
async fn profile(id: u64) -> cashews::Result<(Profile, &'static str)> {
    let key = format!("profile:{id}");
    let cache = cashews::cache();
    if let Some(found) = cache.get::<Profile>(&key).await? {
        return Ok((found, "hit"));
    }
    let loaded = load_profile(id).await;
    cache.set(&key, &loaded).expire("300ms").await?;
    Ok((loaded, "miss"))
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::setup("mem://?size=10000&check_interval=100ms")?;

    let mut timings = Vec::new();
    for step in ["first call", "second call"] {
        let started = Instant::now();
        let (p, outcome) = profile(7).await?;
        let took = started.elapsed();
        println!("{step:<12} {outcome:<4} {took:>10.2?}  {p:?}");
        timings.push((outcome, took));
    }

    let expire = cashews::cache().get_expire("profile:7").await?;
    println!("remaining    {expire:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    let (_, outcome) = profile(7).await?;
    println!(
        "after ttl    {outcome:<4} {:>10.2?}  (the value expired after 300ms)",
        started.elapsed()
    );
    timings.push((outcome, started.elapsed()));

    let miss = timings[0].1;
    let hit = timings[1].1;
    println!(
        "\nsummary: miss {miss:.2?}, hit {hit:.2?} ({:.0}x faster), outcomes {:?}",
        miss.as_secs_f64() / hit.as_secs_f64().max(1e-9),
        timings.iter().map(|(o, _)| *o).collect::<Vec<_>>()
    );
    assert_eq!(
        timings.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        ["miss", "hit", "miss"]
    );
    Ok(())
}
