//! The README's minimal example, run on every backend compiled in. The
//! program below is the README's, line for line but for the setup URL
//! (checked by `the_copy_is_the_readme_example`).

mod support;

use cashews::cache;
use serde::{Deserialize, Serialize};

// README example: begin
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Profile {
    id: u64,
    name: String,
}

struct User {
    id: u64,
}

#[derive(Debug)]
struct ApiError;

// The key template is checked by the compiler: `{user.idd}` would not build.
#[rustfmt::skip]
#[cache(ttl = "3h", key = "user:{user.id}")]
async fn profile(user: &User) -> Result<Profile, ApiError> {
    Ok(Profile { id: user.id, name: "Ann".into() }) // a slow lookup, once per 3 hours
}

#[rustfmt::skip]
async fn main(url: &str) -> cashews::Result<()> {
    cashews::setup(url)?;
    let ann = profile(&User { id: 1 }).await.unwrap(); // computed and stored
    let again = profile(&User { id: 1 }).await.unwrap(); // served from the cache
    assert_eq!(ann, again);

    // The same cache, used directly.
    let cache = cashews::Cache::global();
    assert_eq!(cache.get::<Profile>("user:1").await?, Some(ann));
    cache.set("greeting", &"hello").expire("20h").await?;

    // Computed once, even under concurrent calls, then served from the cache.
    let n: u64 = cache.get_or_set("answer", || async { 42 }).expire("10m").await?;
    assert_eq!(n, 42);

    // Counters and locks work the same on every backend.
    assert_eq!(cache.incr("visits").expire("1d").await?, 1);
    let guard = cache.lock("report", "30s").await?;
    guard.release().await?;
    assert!(cache.delete("user:1").await?);
    Ok(())
}
// README example: end

/// One test, the backends in turn: the example sets up the global cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs_on_every_backend() {
    main("mem://?size=10000").await.unwrap();
    #[cfg(feature = "redis")]
    {
        let server = support::redis::RedisServer::start();
        main(&server.url()).await.unwrap();
    }
    #[cfg(feature = "disk")]
    {
        let dir = support::TempDir::new("readme");
        main(&format!("disk://?directory={}", dir.path.display()))
            .await
            .unwrap();
    }
    #[cfg(feature = "memcached")]
    {
        let server = support::memcached::MemcachedServer::start();
        main(&server.url()).await.unwrap();
    }
    #[cfg(feature = "dynamodb")]
    {
        let server = support::moto::MotoServer::start();
        main(&server.url("cache")).await.unwrap();
    }
}

#[test]
fn the_copy_is_the_readme_example() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## A minimal example\n\n```rust\n")
        .expect("the README has its minimal example");
    let block = &readme[start..];
    let block = &block[block.find("```rust\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let this = include_str!("readme.rs");
    let copy = &this[this.find("// README example: begin\n").unwrap() + 25..];
    let copy = &copy[..copy.find("// README example: end").unwrap()];
    // (rustfmt keeps its hands off the copy, as off the README.)
    let copy = copy.replace("#[rustfmt::skip]\n", "");
    // The README's program starts with its imports and a `#[tokio::main]`
    // main with a fixed URL; the copy takes the URL as an argument.
    let readme_program = block
        .replace("use cashews::cache;\nuse serde::{Deserialize, Serialize};\n\n", "")
        .replace(
            "#[tokio::main]\nasync fn main() -> cashews::Result<()> {\n    cashews::setup(\"mem://?size=10000\")?;",
            "async fn main(url: &str) -> cashews::Result<()> {\n    cashews::setup(url)?;",
        );
    assert_eq!(
        readme_program, copy,
        "tests/readme.rs must follow the README example"
    );
}
