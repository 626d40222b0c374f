//! The DynamoDB backend against moto's server (DynamoDB's API on
//! loopback): `#[cache]` on it, rows written by something else or left
//! expired, and a server that dies, hangs and comes back. (The conformance,
//! strategy, features, HTTP and compression suites run on it too.)
#![cfg(feature = "dynamodb")]

mod support;

use support::{is_transient_backend_error, remote, within};

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::dynamodb::aws_sdk_dynamodb as sdk;
use cashews::{Cache, Command, Error};
use sdk::types::AttributeValue;
use support::moto::MotoServer;

/// The per-call deadline the caches below are set up with.
const DEADLINE: Duration = Duration::from_millis(600);

fn bound() -> Duration {
    DEADLINE * 2 + Duration::from_millis(400)
}

fn connect(server: &MotoServer) -> Cache {
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}&response_timeout={}ms&connect_timeout={}ms",
            server.url("cache"),
            DEADLINE.as_millis(),
            DEADLINE.as_millis()
        ))
        .unwrap();
    cache
}

/// A raw SDK client on the server, to write rows the backend did not.
fn raw_client(server: &MotoServer) -> sdk::Client {
    cashews::dynamodb::DynamoConfig::parse(&server.url("cache"))
        .unwrap()
        .client()
        .unwrap()
}

async fn put_row(client: &sdk::Client, row: &[(&str, AttributeValue)]) {
    let item: HashMap<String, AttributeValue> = row
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    client
        .put_item()
        .table_name("cache")
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn b(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(sdk::primitives::Blob::new(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decorated_functions_cache_on_dynamodb() {
    let server = MotoServer::start();
    let cache = connect(&server);
    remote::decorated_calls_run_once(&cache).await;
    // A long key is hashed into DynamoDB's 2048-byte limit.
    let long = "k".repeat(5000);
    cache.set(&long, &1u8).await.unwrap();
    assert_eq!(cache.get::<u8>(&long).await.unwrap(), Some(1));
    assert!(cache.supports("any", Command::Scan).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_expired_and_tampered_rows_are_misses_or_clear_errors() {
    let server = MotoServer::start();
    let cache = connect(&server);
    cache.ping().await.unwrap(); // creates the table
    let raw = raw_client(&server);
    // Another shape: a string value, an unknown kind, a counter that is not
    // a number, an expiry that is not a number.
    put_row(&raw, &[("key", s("text")), ("value", s("hello"))]).await;
    put_row(
        &raw,
        &[("key", s("kind")), ("value", b(b"x")), ("kind", n(9))],
    )
    .await;
    put_row(&raw, &[("key", s("count")), ("count", n("1.5"))]).await;
    put_row(
        &raw,
        &[
            ("key", s("when")),
            ("value", b(b"x")),
            ("expires_ms", s("soon")),
        ],
    )
    .await;
    for key in ["text", "kind", "count", "when"] {
        assert_eq!(cache.get_raw(key).await.unwrap(), None, "{key}");
        assert!(!cache.exists(key).await.unwrap(), "{key}");
        // ...and the next write replaces it.
        assert!(
            cache.set(key, &1u8).only_if_absent().await.unwrap(),
            "{key}"
        );
        assert_eq!(cache.get::<u8>(key).await.unwrap(), Some(1), "{key}");
    }
    // A row DynamoDB has not deleted yet, an hour past its expiry: absent
    // for every command.
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 3_600_000;
    put_row(
        &raw,
        &[
            ("key", s("old")),
            ("count", n(41)),
            ("expires_ms", n(past)),
            ("expires_at", n(past / 1000)),
        ],
    )
    .await;
    assert_eq!(cache.get_raw("old").await.unwrap(), None);
    assert_eq!(
        cache.incr("old").await.unwrap(),
        1,
        "an expired counter starts afresh"
    );
    put_row(
        &raw,
        &[
            ("key", s("lock")),
            ("value", b(b"t")),
            ("expires_ms", n(past)),
        ],
    )
    .await;
    assert!(cache.set_lock("lock", "mine", "10s").await.unwrap());
    // A set whose bytes are cut short: an error naming the key, no panic.
    put_row(
        &raw,
        &[
            ("key", s("tags")),
            ("value", b(&[0, 0, 0, 200, b'x'])),
            ("kind", n(2)),
        ],
    )
    .await;
    assert!(matches!(
        cache.set_add("tags", &["a"], None::<u64>).await,
        Err(Error::WrongType { key, .. }) if key == "tags"
    ));
    // Garbage under a cached function's key is a miss, then replaced.
    put_row(&raw, &[("key", s("profile:9")), ("value", b(&[0, 1, 2]))]).await;
    let calls = AtomicUsize::new(0);
    assert_eq!(remote::profile(&cache, &calls, 9).await.id, 9);
    assert_eq!(remote::profile(&cache, &calls, 9).await.id, 9);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_item_size_is_an_error() {
    let server = MotoServer::start();
    // A long deadline: moto takes its time over half a megabyte.
    let cache = Cache::new();
    cache
        .setup(&format!("{}&response_timeout=10s", server.url("cache")))
        .unwrap();
    // DynamoDB's items are at most 400 KB.
    let refused = cache.set_raw("big", vec![7u8; 500 * 1024]).await;
    assert!(
        matches!(&refused, Err(error @ Error::Backend { .. }) if !error.is_transient()),
        "{refused:?}"
    );
    assert_eq!(cache.get_raw("big").await.unwrap(), None);
    cache.set("after", &1u8).await.unwrap();
    assert_eq!(cache.get::<u8>("after").await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_a_miss_then_used_again_when_it_returns() {
    let mut server = MotoServer::start();
    let port = server.port;
    let cache = connect(&server);
    cache.set("k", &1u32).await.unwrap();
    server.kill();
    remote::a_dead_backend_answers(&cache, bound()).await;
    // moto comes back empty, without the table: it is made again.
    let _server = MotoServer::start_on(port);
    remote::recovers("the restart", || async {
        cache.set("k", &3u32).await.unwrap_or(false)
    })
    .await;
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_meets_its_deadline_on_a_hung_server() {
    let server = MotoServer::start();
    let cache = connect(&server);
    cache.set("k", &1u32).await.unwrap();
    server.pause();
    let got = within("get", bound(), cache.get::<u32>("k")).await;
    assert_eq!(got.unwrap(), None);
    let set = within("set", bound(), cache.set("k2", &2u32).into_future()).await;
    assert!(!set.unwrap());
    let incr = within("incr", bound(), cache.incr("n").into_future()).await;
    assert!(is_transient_backend_error(incr));
    let many = within("get_many", bound(), cache.get_many::<u32>(&["a", "b"])).await;
    assert_eq!(many.unwrap(), vec![None, None]);
    server.resume();
    remote::recovers("the hang", || async {
        cache.get::<u32>("k").await.unwrap() == Some(1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_on_the_applications_own_client() {
    use cashews::dynamodb::{DynamoBackend, DynamoConfig};
    let server = MotoServer::start();
    // The application's client (here made from a URL; aws-config's in an
    // application) and the table's settings.
    let client = raw_client(&server);
    let config = DynamoConfig::parse("dynamodb://shared?create_table=true").unwrap();
    let backend: std::sync::Arc<dyn cashews::backend::Backend> =
        std::sync::Arc::new(DynamoBackend::from_client(client.clone(), config));
    let cache = Cache::new();
    cache.add_backend("", backend, cashews::codec::Serializer::default());
    cache.set("k", &41u32).await.unwrap();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(41));
    let tables = client.list_tables().send().await.unwrap();
    assert!(tables.table_names().iter().any(|t| t == "shared"));
}

#[test]
fn bad_urls_are_clear_errors() {
    for (url, says) in [
        ("dynamodb://a?region=x", "table"),
        ("dynamodb://cache/x?region=x", "no path"),
        ("dynamodb://cache?region=x&endpoint=localhost", "http://"),
        ("dynamodb://idonly@cache?region=x", "ACCESS_KEY_ID:SECRET"),
        (
            "dynamodb://k:s@cache?region=x&response_timeout=0",
            "response_timeout",
        ),
        ("dynamodb://k:s@cache?region=x&table=y", "table"),
    ] {
        let error = Cache::new().setup(url).unwrap_err().to_string();
        assert!(error.contains(says), "{url}: {error}");
    }
}
