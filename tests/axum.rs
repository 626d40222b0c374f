//! HTTP response caching: real requests on loopback to an axum app behind
//! `CacheLayer`, on memory, Redis, memcached and DynamoDB.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use cashews::axum::{CacheLayer, CacheOverride};
use cashews::{Cache, Clock, Expiry, ManualClock};
use support::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How often each handler ran.
#[derive(Clone)]
struct Calls {
    slow: Arc<AtomicUsize>,
    error: Arc<AtomicUsize>,
    post: Arc<AtomicUsize>,
    stream: Arc<AtomicUsize>,
    cookie: Arc<AtomicUsize>,
    flaky: Arc<AtomicUsize>,
    /// `/flaky` answers 503 while set.
    failing: Arc<AtomicBool>,
    live: Arc<AtomicUsize>,
    /// Every `/live` call after the first waits here until 4 are inside.
    live_gate: Arc<tokio::sync::Barrier>,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            slow: Arc::default(),
            error: Arc::default(),
            post: Arc::default(),
            stream: Arc::default(),
            cookie: Arc::default(),
            flaky: Arc::default(),
            failing: Arc::default(),
            live: Arc::default(),
            live_gate: Arc::new(tokio::sync::Barrier::new(4)),
        }
    }
}

impl Calls {
    fn slow(&self) -> usize {
        self.slow.load(Ordering::SeqCst)
    }
}

async fn slow(State(calls): State<Calls>) -> String {
    let n = calls.slow.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("computed {n}")
}

async fn error(State(calls): State<Calls>) -> impl IntoResponse {
    calls.error.fetch_add(1, Ordering::SeqCst);
    (StatusCode::SERVICE_UNAVAILABLE, "busy")
}

async fn post(State(calls): State<Calls>) -> String {
    format!("posted {}", calls.post.fetch_add(1, Ordering::SeqCst) + 1)
}

async fn stream(State(calls): State<Calls>) -> Response {
    calls.stream.fetch_add(1, Ordering::SeqCst);
    let chunks = ["one ", "two ", "three"].map(|c| Ok::<_, std::io::Error>(c.to_owned()));
    Body::from_stream(futures_util::stream::iter(chunks)).into_response()
}

/// A response that says what a shared cache may do with it: `cache-control`
/// and `vary` from the query (`?cc=no-cache&vary=cookie`).
async fn directed(
    State(calls): State<Calls>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let n = calls.slow.fetch_add(1, Ordering::SeqCst) + 1;
    let mut response = format!("directed {n}").into_response();
    for (name, key) in [(header::CACHE_CONTROL, "cc"), (header::VARY, "vary")] {
        if let Some(value) = q.get(key) {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
    }
    response
}

async fn cookie(State(calls): State<Calls>) -> impl IntoResponse {
    let n = calls.cookie.fetch_add(1, Ordering::SeqCst) + 1;
    ([(header::SET_COOKIE, format!("session={n}"))], "hello")
}

/// Succeeds (with `cache-control` from `?cc=`) until told to fail.
async fn flaky(
    State(calls): State<Calls>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let n = calls.flaky.fetch_add(1, Ordering::SeqCst) + 1;
    if calls.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let mut response = format!("flaky {n}").into_response();
    if let Some(cc) = q.get("cc") {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    response
}

/// A route that must never be cached; every call after the first waits
/// until four are running at once, so requests queued behind each other
/// never finish.
async fn live(State(calls): State<Calls>) -> String {
    let n = calls.live.fetch_add(1, Ordering::SeqCst) + 1;
    if n > 1 {
        calls.live_gate.wait().await;
    }
    format!("live {n}")
}

/// Serves the test app behind `layer` on `cache`'s URL; its address and
/// call counters.
async fn serve(layer: CacheLayer) -> (SocketAddr, Calls) {
    serve_with(layer, Calls::default()).await
}

/// As `serve`, with counters shared with another server (another process
/// on the same backend).
async fn serve_with(layer: CacheLayer, calls: Calls) -> (SocketAddr, Calls) {
    let app = Router::new()
        .route("/slow", get(slow).post(post))
        .route("/error", get(error))
        .route("/stream", get(stream))
        .route("/cookie", get(cookie))
        .route("/directed", get(directed))
        .route("/flaky", get(flaky))
        .route("/live", get(live).layer(CacheOverride::no_store()))
        .route(
            "/report",
            get(|| async { "report" }).layer(CacheOverride::ttl("1h").unwrap()),
        )
        .route(
            "/extension",
            get(|| async { (Extension(CacheOverride::no_store()), "not stored") }),
        )
        .layer(layer)
        .with_state(calls.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, calls)
}

fn layer(cache: &Cache) -> CacheLayer {
    CacheLayer::new(cache).ttl("60s").unwrap()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn x_cache(&self) -> Option<&str> {
        self.header("x-cache")
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn send(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str("Host: localhost\r\n");
    }
    if method == "POST" {
        head.push_str("Content-Length: 0\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line + 2..line + 2 + size]);
        raw = &raw[line + 2 + size + 2..];
    }
}

/// The head of a GET of `path` as `send` makes it (Host: localhost), to
/// compute its key.
fn parts(path: &str) -> axum::http::request::Parts {
    axum::http::Request::get(path)
        .header("host", "localhost")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

async fn fetch(address: SocketAddr, path: &str) -> Reply {
    send(address, "GET", path, &[]).await
}

/// Fetches `path` until a reply satisfies `done` (a background refresh
/// has landed); fails after 10 s.
async fn eventually(address: SocketAddr, path: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = fetch(address, path).await;
        if done(&reply) {
            return reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never got there: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cases, run on every backend below.
mod cases {
    use super::*;

    pub async fn miss_then_hit_with_the_same_body(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache)).await;
        let first = fetch(address, "/slow").await;
        assert_eq!((first.status, first.x_cache()), (200, Some("MISS")));
        assert_eq!(first.body, "computed 1");
        assert!(first.header("etag").is_some());
        let second = fetch(address, "/slow").await;
        assert_eq!((second.status, second.x_cache()), (200, Some("HIT")));
        assert_eq!(second.body, first.body);
        assert_eq!(second.header("etag"), first.header("etag"));
        assert_eq!(second.header("content-type"), first.header("content-type"));
        let age: u64 = second.header("age").unwrap().parse().unwrap();
        assert!(age <= 1, "{age}");
        // The origin's headers are replayed, never a rewritten Cache-Control.
        assert_eq!(second.header("cache-control"), None);
        // The query is part of the key.
        assert_eq!(fetch(address, "/slow?page=2").await.x_cache(), Some("MISS"));
        assert_eq!(calls.slow(), 2);
        // HEAD is answered from the GET entry, without a body but with the
        // GET's Content-Length.
        let head = send(address, "HEAD", "/slow", &[]).await;
        assert_eq!(
            (head.status, head.x_cache(), head.body.as_str()),
            (200, Some("HIT"), "")
        );
        assert_eq!(head.header("content-length"), Some("10"), "{head:?}");
        assert_eq!(calls.slow(), 2);
    }

    pub async fn if_none_match_answers_304_until_the_entry_goes(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache)).await;
        let first = fetch(address, "/slow").await;
        let etag = first.header("etag").unwrap().to_owned();
        let not_modified = send(address, "GET", "/slow", &[("If-None-Match", &etag)]).await;
        assert_eq!(not_modified.status, 304);
        assert_eq!(not_modified.body, "");
        assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
        assert_eq!(not_modified.x_cache(), Some("HIT"));
        assert_eq!(calls.slow(), 1, "the handler did not run");
        let other = send(address, "GET", "/slow", &[("If-None-Match", "\"other\"")]).await;
        assert_eq!((other.status, other.body.as_str()), (200, "computed 1"));
        // Once the entry is deleted its ETag is not recognised.
        if h.supports(cashews::Command::DeleteMatch) {
            assert_eq!(h.cache.delete_match("http:*").await.unwrap(), 1);
        } else {
            h.cache.clear().await.unwrap();
        }
        let after = send(address, "GET", "/slow", &[("If-None-Match", &etag)]).await;
        assert_eq!((after.status, after.body.as_str()), (200, "computed 2"));
        assert_ne!(after.header("etag"), Some(etag.as_str()));
        assert_eq!(calls.slow(), 2);
    }

    pub async fn request_cache_control(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache).honor_request_directives(true)).await;
        fetch(address, "/slow").await;
        // no-cache: not read, the fresh answer stored.
        let fresh = send(address, "GET", "/slow", &[("Cache-Control", "no-cache")]).await;
        assert_eq!(
            (fresh.x_cache(), fresh.body.as_str()),
            (Some("MISS"), "computed 2")
        );
        assert_eq!(fetch(address, "/slow").await.body, "computed 2");
        // no-store: neither read nor written.
        let fresh = send(address, "GET", "/slow", &[("Cache-Control", "no-store")]).await;
        assert_eq!(
            (fresh.x_cache(), fresh.body.as_str()),
            (Some("MISS"), "computed 3")
        );
        assert_eq!(fetch(address, "/slow").await.body, "computed 2");
        assert_eq!(calls.slow(), 3);
        // max-age=0: the stored answer is too old, and nothing is stored.
        let fresh = send(address, "GET", "/slow", &[("Cache-Control", "max-age=0")]).await;
        assert_eq!(
            (fresh.x_cache(), fresh.body.as_str()),
            (Some("MISS"), "computed 4")
        );
        assert_eq!(fetch(address, "/slow").await.body, "computed 2");
        // max-age=N caps the TTL of what is stored.
        let capped = send(
            address,
            "GET",
            "/slow?capped",
            &[("Cache-Control", "max-age=5")],
        )
        .await;
        assert_eq!(capped.x_cache(), Some("MISS"));
        let parts = parts("/slow?capped");
        let key = layer(&h.cache).key(&parts);
        match h.cache.get_expire(&key).await.unwrap() {
            Expiry::Remaining(d) => assert!(d <= Duration::from_secs(5), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    pub async fn clear_site_data_invalidates_the_entry(h: &Harness) {
        let admin = |parts: &axum::http::request::Parts| parts.headers.contains_key("x-admin");
        let (address, calls) = serve(layer(&h.cache).allow_purge(admin)).await;
        fetch(address, "/slow").await;
        // Anyone else's Clear-Site-Data changes nothing.
        let ignored = send(address, "GET", "/slow", &[("Clear-Site-Data", "\"cache\"")]).await;
        assert_eq!(ignored.x_cache(), Some("HIT"));
        let cleared = send(
            address,
            "GET",
            "/slow",
            &[("Clear-Site-Data", "\"cache\""), ("X-Admin", "1")],
        )
        .await;
        assert_eq!(
            (cleared.x_cache(), cleared.body.as_str()),
            (Some("MISS"), "computed 2")
        );
        assert_eq!(fetch(address, "/slow").await.x_cache(), Some("HIT"));
        assert_eq!(calls.slow(), 2);
    }

    /// The attempts of a hostile client on a shared entry: none changes
    /// what another client is served.
    pub async fn clients_cannot_steer_or_poison_the_shared_entry(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache)).await;
        assert_eq!(fetch(address, "/slow").await.body, "computed 1");
        for directive in ["no-cache", "max-age=0", "no-store", "max-age=1"] {
            let reply = send(address, "GET", "/slow", &[("Cache-Control", directive)]).await;
            assert_eq!(
                (reply.x_cache(), reply.body.as_str()),
                (Some("HIT"), "computed 1"),
                "{directive}"
            );
        }
        // `max-age=1` did not re-store the entry with a 1 s TTL.
        let parts = parts("/slow");
        match h
            .cache
            .get_expire(&layer(&h.cache).key(&parts))
            .await
            .unwrap()
        {
            Expiry::Remaining(d) => assert!(d > Duration::from_secs(50), "{d:?}"),
            other => panic!("{other:?}"),
        }
        // Another host has entries of its own; its purge reaches only them.
        let evil = send(
            address,
            "GET",
            "/slow",
            &[("Host", "evil.example"), ("Clear-Site-Data", "\"cache\"")],
        )
        .await;
        assert_eq!(
            (evil.x_cache(), evil.body.as_str()),
            (Some("MISS"), "computed 2")
        );
        let next = fetch(address, "/slow").await;
        assert_eq!(
            (next.x_cache(), next.body.as_str()),
            (Some("HIT"), "computed 1")
        );
        assert_eq!(calls.slow(), 2);
    }

    /// What the response says decides what is stored, and is replayed as
    /// the origin said it.
    pub async fn responses_decide_what_is_stored(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache).vary([header::ACCEPT_LANGUAGE])).await;
        // A Vary on a header the key does not include: never stored, so
        // Alice's answer never reaches Bob.
        let alice = send(
            address,
            "GET",
            "/directed?vary=cookie",
            &[("Cookie", "user=alice")],
        )
        .await;
        let bob = send(
            address,
            "GET",
            "/directed?vary=cookie",
            &[("Cookie", "user=bob")],
        )
        .await;
        assert_eq!(
            (alice.x_cache(), bob.x_cache()),
            (Some("MISS"), Some("MISS"))
        );
        assert_eq!(bob.body, "directed 2");
        // A Vary on a keyed header: stored per value.
        let path = "/directed?vary=accept-language";
        let en = send(address, "GET", path, &[("Accept-Language", "en")]).await;
        let de = send(address, "GET", path, &[("Accept-Language", "de")]).await;
        let en_again = send(address, "GET", path, &[("Accept-Language", "en")]).await;
        assert_eq!(
            (en.body.as_str(), de.body.as_str()),
            ("directed 3", "directed 4")
        );
        assert_eq!(
            (en_again.x_cache(), en_again.body.as_str()),
            (Some("HIT"), "directed 3")
        );
        // no-cache, max-age=0: not stored, and passed on as the origin said.
        for _ in 0..2 {
            let reply = fetch(address, "/directed?cc=no-cache,%20max-age=0").await;
            assert_eq!(reply.x_cache(), Some("MISS"));
            assert_eq!(reply.header("cache-control"), Some("no-cache, max-age=0"));
        }
        // s-maxage: stored, and replayed unchanged with an Age.
        let first = fetch(address, "/directed?cc=public,%20s-maxage=30").await;
        let hit = fetch(address, "/directed?cc=public,%20s-maxage=30").await;
        assert_eq!(
            (first.x_cache(), hit.x_cache()),
            (Some("MISS"), Some("HIT"))
        );
        assert_eq!(hit.header("cache-control"), Some("public, s-maxage=30"));
        assert!(hit.header("age").is_some());
        assert_eq!(calls.slow(), 7);
    }

    pub async fn clear_site_data_is_refused_without_a_purge_rule(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache).honor_request_directives(true)).await;
        fetch(address, "/slow").await;
        let refused = send(address, "GET", "/slow", &[("Clear-Site-Data", "\"cache\"")]).await;
        assert_eq!(
            (refused.x_cache(), refused.body.as_str()),
            (Some("HIT"), "computed 1")
        );
        assert_eq!(calls.slow(), 1);
    }

    pub async fn namespaces_are_cleared_alone(h: &Harness) {
        let users = layer(&h.cache).namespace("users");
        let orders = layer(&h.cache).namespace("orders");
        let (users_at, _) = serve(users.clone()).await;
        let (orders_at, _) = serve(orders.clone()).await;
        fetch(users_at, "/slow").await;
        fetch(users_at, "/slow?page=2").await;
        fetch(orders_at, "/slow").await;
        if h.supports(cashews::Command::DeleteMatch) {
            assert_eq!(users.clear_namespace().await.unwrap(), 2);
            assert_eq!(fetch(users_at, "/slow").await.x_cache(), Some("MISS"));
        } else {
            // Clearing a namespace lists its keys: refused, nothing deleted.
            assert!(matches!(
                users.clear_namespace().await,
                Err(cashews::Error::Unsupported { .. })
            ));
            assert_eq!(fetch(users_at, "/slow").await.x_cache(), Some("HIT"));
        }
        assert_eq!(fetch(orders_at, "/slow").await.x_cache(), Some("HIT"));
        // One entry by hand.
        let parts = parts("/slow");
        assert!(orders.invalidate(&parts).await.unwrap());
        assert_eq!(fetch(orders_at, "/slow").await.x_cache(), Some("MISS"));
    }

    pub async fn errors_posts_cookies_and_streams_are_not_cached(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache)).await;
        for _ in 0..2 {
            let reply = fetch(address, "/error").await;
            assert_eq!((reply.status, reply.x_cache()), (503, Some("MISS")));
            let reply = send(address, "POST", "/slow", &[]).await;
            assert_eq!(reply.x_cache(), None, "other methods pass through");
            let reply = fetch(address, "/cookie").await;
            assert_eq!(reply.x_cache(), Some("MISS"));
            let reply = fetch(address, "/stream").await;
            assert_eq!(
                (reply.body.as_str(), reply.x_cache()),
                ("one two three", Some("MISS"))
            );
        }
        assert_eq!(calls.error.load(Ordering::SeqCst), 2);
        assert_eq!(calls.post.load(Ordering::SeqCst), 2);
        assert_eq!(calls.cookie.load(Ordering::SeqCst), 2);
        assert_eq!(calls.stream.load(Ordering::SeqCst), 2);
        // Streams are stored when asked for.
        let (address, calls) =
            serve(layer(&h.cache).prefix("streams:").cache_streaming(true)).await;
        assert_eq!(fetch(address, "/stream").await.x_cache(), Some("MISS"));
        let hit = fetch(address, "/stream").await;
        assert_eq!(
            (hit.body.as_str(), hit.x_cache()),
            ("one two three", Some("HIT"))
        );
        assert_eq!(calls.stream.load(Ordering::SeqCst), 1);
    }

    pub async fn concurrent_cold_requests_run_the_handler_once(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache)).await;
        let requests: Vec<_> = (0..100)
            .map(|_| tokio::spawn(async move { fetch(address, "/slow").await }))
            .collect();
        let mut misses = 0;
        for request in requests {
            let reply = request.await.unwrap();
            assert_eq!((reply.status, reply.body.as_str()), (200, "computed 1"));
            misses += usize::from(reply.x_cache() == Some("MISS"));
        }
        assert_eq!(calls.slow(), 1);
        assert_eq!(misses, 1);
    }

    /// A second cache on the case's backend, on a clock the case moves by
    /// hand: the layer judges staleness by it.
    fn on_manual_clock(h: &Harness) -> (Cache, ManualClock) {
        let (clock, hand) = Clock::manual();
        let cache = Cache::with_clock(clock);
        cache.setup(&h.url).unwrap();
        (cache, hand)
    }

    pub async fn stale_while_revalidate_answers_at_once_and_refreshes_once(h: &Harness) {
        let (cache, hand) = on_manual_clock(h);
        let layer = CacheLayer::new(&cache)
            .ttl("10s")
            .unwrap()
            .stale_while_revalidate("60s")
            .unwrap();
        let (address, calls) = serve(layer).await;
        assert_eq!(fetch(address, "/slow").await.body, "computed 1");
        hand.advance(Duration::from_secs(11));
        // Twenty requests within the window: none waits for the 200 ms
        // handler (each is answered from the stale entry, or from the
        // refreshed one if it landed already); one refresh runs.
        let requests: Vec<_> = (0..20)
            .map(|_| tokio::spawn(async move { fetch(address, "/slow").await }))
            .collect();
        for request in requests {
            let reply = request.await.unwrap();
            let seen = (reply.x_cache(), reply.body.as_str());
            assert!(
                seen == (Some("STALE"), "computed 1") || seen == (Some("HIT"), "computed 2"),
                "{reply:?}"
            );
        }
        let refreshed = eventually(address, "/slow", |r| r.x_cache() == Some("HIT")).await;
        assert_eq!(refreshed.body, "computed 2");
        assert_eq!(calls.slow(), 2, "one background refresh");
        // Past the window: recomputed in line.
        hand.advance(Duration::from_secs(10 + 61));
        let late = fetch(address, "/slow").await;
        assert_eq!(
            (late.x_cache(), late.body.as_str()),
            (Some("MISS"), "computed 3")
        );
        // The response's own stale-while-revalidate, on a layer without one.
        let (address, calls) = serve(CacheLayer::new(&cache).prefix("own:")).await;
        let path = "/directed?cc=max-age=10,%20stale-while-revalidate=30";
        assert_eq!(fetch(address, path).await.x_cache(), Some("MISS"));
        hand.advance(Duration::from_secs(11));
        let stale = fetch(address, path).await;
        assert_eq!(
            (stale.x_cache(), stale.body.as_str()),
            (Some("STALE"), "directed 1")
        );
        eventually(address, path, |r| r.body == "directed 2").await;
        assert_eq!(calls.slow(), 2);
    }

    pub async fn stale_if_error_answers_a_failing_handler(h: &Harness) {
        let (cache, hand) = on_manual_clock(h);
        let layer = CacheLayer::new(&cache)
            .ttl("10s")
            .unwrap()
            .stale_if_error("60s")
            .unwrap();
        let (address, calls) = serve(layer).await;
        assert_eq!(fetch(address, "/flaky").await.body, "flaky 1");
        hand.advance(Duration::from_secs(11));
        calls.failing.store(true, Ordering::SeqCst);
        let stale = fetch(address, "/flaky").await;
        assert_eq!(
            (stale.status, stale.x_cache(), stale.body.as_str()),
            (200, Some("STALE"), "flaky 1")
        );
        // A success replaces it.
        calls.failing.store(false, Ordering::SeqCst);
        let fresh = fetch(address, "/flaky").await;
        assert_eq!(
            (fresh.x_cache(), fresh.body.as_str()),
            (Some("MISS"), "flaky 3")
        );
        // Past the window a failure is answered as it is.
        hand.advance(Duration::from_secs(10 + 61));
        calls.failing.store(true, Ordering::SeqCst);
        let failed = fetch(address, "/flaky").await;
        assert_eq!((failed.status, failed.x_cache()), (503, Some("MISS")));
        // The response's own window beats the layer's: 1 s here.
        calls.failing.store(false, Ordering::SeqCst);
        let path = "/flaky?cc=max-age=10,%20stale-if-error=1";
        assert_eq!(fetch(address, path).await.status, 200);
        hand.advance(Duration::from_secs(12));
        calls.failing.store(true, Ordering::SeqCst);
        assert_eq!(fetch(address, path).await.status, 503);
    }

    /// A router-wide layer, with routes overriding it.
    pub async fn routes_override_the_router_wide_layer(h: &Harness) {
        let status = header::HeaderName::from_static("x-cashews");
        let (address, calls) = serve(layer(&h.cache).status_header(status)).await;
        // no_store: never stored, and after the first answer requests go to
        // the handler at once — four must be inside together to finish,
        // which requests queued behind each other never are.
        let first = fetch(address, "/live").await;
        assert_eq!(
            (first.header("x-cashews"), first.x_cache()),
            (Some("MISS"), None)
        );
        let requests: Vec<_> = (0..4)
            .map(|_| tokio::spawn(async move { fetch(address, "/live").await }))
            .collect();
        for request in requests {
            let reply = tokio::time::timeout(Duration::from_secs(10), request)
                .await
                .expect("requests for an uncacheable route queued behind each other")
                .unwrap();
            assert_eq!(reply.header("x-cashews"), Some("MISS"));
        }
        assert_eq!(calls.live.load(Ordering::SeqCst), 5);
        // The handler's own Extension(CacheOverride) works the same.
        for _ in 0..2 {
            let reply = fetch(address, "/extension").await;
            assert_eq!(
                (reply.header("x-cashews"), reply.body.as_str()),
                (Some("MISS"), "not stored")
            );
        }
        // A TTL of its own: an hour, not the layer's minute.
        assert_eq!(
            fetch(address, "/report").await.header("x-cashews"),
            Some("MISS")
        );
        assert_eq!(
            fetch(address, "/report").await.header("x-cashews"),
            Some("HIT")
        );
        match h
            .cache
            .get_expire(&layer(&h.cache).key(&parts("/report")))
            .await
            .unwrap()
        {
            Expiry::Remaining(d) => assert!(d > Duration::from_secs(3500), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    /// Bytes in the backend that are not an entry (written by an attacker
    /// with access to the backend, or by another program) are a miss,
    /// replaced by the handler's answer.
    pub async fn a_tampered_entry_is_a_miss(h: &Harness) {
        let (address, calls) = serve(layer(&h.cache)).await;
        let key = layer(&h.cache).key(&parts("/slow"));
        for garbage in [&b"garbage"[..], &[0xCA, 1, 1, 0, 0xFF, 0xFF][..], &[][..]] {
            h.cache.set_raw(&key, garbage.to_vec()).await.unwrap();
            let reply = fetch(address, "/slow").await;
            assert_eq!((reply.status, reply.x_cache()), (200, Some("MISS")));
            assert_eq!(fetch(address, "/slow").await.x_cache(), Some("HIT"));
        }
        assert_eq!(calls.slow(), 3);
    }

    pub async fn vary_headers_and_per_request_ttl(h: &Harness) {
        let layer = layer(&h.cache)
            .vary([header::ACCEPT_LANGUAGE])
            .ttl_with(|parts| {
                (parts.uri.query() != Some("nocache")).then(|| cashews::Ttl::parse("10s").unwrap())
            });
        let (address, calls) = serve(layer).await;
        let en = send(address, "GET", "/slow", &[("Accept-Language", "en")]).await;
        let de = send(address, "GET", "/slow", &[("Accept-Language", "de")]).await;
        assert_eq!(
            (en.body.as_str(), de.body.as_str()),
            ("computed 1", "computed 2")
        );
        let en = send(address, "GET", "/slow", &[("Accept-Language", "en")]).await;
        assert_eq!(
            (en.body.as_str(), en.x_cache()),
            ("computed 1", Some("HIT"))
        );
        assert!(en.header("age").is_some());
        // Credentials make a request private: passed through, never shared.
        for n in [3, 4] {
            let private = send(address, "GET", "/slow", &[("Authorization", "Bearer t")]).await;
            assert_eq!(private.x_cache(), None);
            assert_eq!(private.body, format!("computed {n}"));
        }
        // A request the TTL function declines passes through.
        let uncached = fetch(address, "/slow?nocache").await;
        assert_eq!(uncached.x_cache(), None);
        assert_eq!(fetch(address, "/slow?nocache").await.body, "computed 6");
        assert_eq!(calls.slow(), 6);
    }
}

macro_rules! http_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        backend_suite!(cases, $backend, [$attr], $make;
            miss_then_hit_with_the_same_body, if_none_match_answers_304_until_the_entry_goes,
            request_cache_control, clear_site_data_invalidates_the_entry,
            clear_site_data_is_refused_without_a_purge_rule,
            clients_cannot_steer_or_poison_the_shared_entry, responses_decide_what_is_stored,
            namespaces_are_cleared_alone,
            errors_posts_cookies_and_streams_are_not_cached,
            concurrent_cold_requests_run_the_handler_once, vary_headers_and_per_request_ttl,
            stale_while_revalidate_answers_at_once_and_refreshes_once,
            stale_if_error_answers_a_failing_handler, routes_override_the_router_wide_layer,
            a_tampered_entry_is_a_miss);
    };
}

http_suite!(
    memory,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memory("mem://")
);

#[cfg(feature = "redis")]
http_suite!(
    redis,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("")
);

#[cfg(feature = "memcached")]
http_suite!(
    memcached,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memcached("")
);

#[cfg(feature = "dynamodb")]
http_suite!(
    dynamodb,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::dynamodb("")
);

/// Three processes on one Redis serve a stale entry: one background
/// refresh in all (the backend lock), not one per process.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_background_refresh_across_processes() {
    let h = Harness::redis("");
    let (clock, hand) = Clock::manual();
    let calls = Calls::default();
    let mut addresses = Vec::new();
    for _ in 0..3 {
        let cache = Cache::with_clock(clock.clone());
        cache.setup(&h.url).unwrap();
        let layer = CacheLayer::new(&cache)
            .ttl("10s")
            .unwrap()
            .stale_while_revalidate("60s")
            .unwrap();
        addresses.push(serve_with(layer, calls.clone()).await.0);
    }
    assert_eq!(fetch(addresses[0], "/slow").await.body, "computed 1");
    hand.advance(Duration::from_secs(11));
    let requests: Vec<_> = (0..15)
        .map(|n| {
            let address = addresses[n % 3];
            tokio::spawn(async move { fetch(address, "/slow").await })
        })
        .collect();
    for request in requests {
        let reply = request.await.unwrap();
        assert_ne!(reply.x_cache(), Some("MISS"), "{reply:?}");
    }
    for address in &addresses {
        let reply = eventually(*address, "/slow", |r| r.x_cache() == Some("HIT")).await;
        assert_eq!(reply.body, "computed 2");
    }
    assert_eq!(calls.slow(), 2);
}

/// A hung (SIGSTOP) or dead (killed) Redis never fails a request nor holds
/// it much past the per-call deadline: the handler answers. Stale serving
/// needs the backend, so it degrades to the handler too.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_answers_through_a_hung_or_dead_backend() {
    let mut server = support::redis::RedisServer::start();
    let (clock, hand) = Clock::manual();
    let cache = Cache::with_clock(clock);
    cache
        .setup(&format!(
            "{}?response_timeout=400ms&connect_timeout=400ms",
            server.url()
        ))
        .unwrap();
    let layer = CacheLayer::new(&cache)
        .ttl("10s")
        .unwrap()
        .stale_while_revalidate("60s")
        .unwrap()
        .stale_if_error("60s")
        .unwrap();
    let (address, calls) = serve(layer).await;
    assert_eq!(fetch(address, "/slow").await.x_cache(), Some("MISS"));
    // Each request: at most two deadlines, the 200 ms handler and slack.
    let bound = Duration::from_millis(2 * 400 + 200 + 600);
    let timed = |path: &'static str| async move {
        let started = std::time::Instant::now();
        let reply = fetch(address, path).await;
        let took = started.elapsed();
        assert!(took <= bound, "{path} took {took:?} ({reply:?})");
        reply
    };
    server.pause();
    for _ in 0..3 {
        let reply = timed("/slow").await;
        assert_eq!((reply.status, reply.x_cache()), (200, Some("MISS")));
        assert!(reply.body.starts_with("computed "), "{reply:?}");
    }
    server.resume();
    // Back: an entry answers again — the first, or one the server took in
    // from its socket buffer once it resumed (a whole response either way).
    let reply = eventually(address, "/slow", |r| r.x_cache() == Some("HIT")).await;
    assert!(reply.body.starts_with("computed "), "{reply:?}");
    hand.advance(Duration::from_secs(11));
    assert_eq!(timed("/slow").await.x_cache(), Some("STALE"));
    let before = calls.slow();
    server.kill();
    for _ in 0..3 {
        let reply = timed("/slow").await;
        assert_eq!((reply.status, reply.x_cache()), (200, Some("MISS")));
    }
    assert!(calls.slow() >= before + 3);
    // With the backend gone there is no stale entry to serve: a failing
    // handler's answer goes to the client.
    calls.failing.store(true, Ordering::SeqCst);
    let failed = timed("/flaky").await;
    assert_eq!(failed.status, 503);
}

static HANDLER_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
});
static USER_CALLS: AtomicUsize = AtomicUsize::new(0);

/// `#[cache]` on a plain handler: extractors are arguments like any other
/// (named, not destructured), and the output must be serde.
#[cashews::cache(ttl = "1m", key = "user:{id.0}", cache = HANDLER_CACHE)]
async fn user(id: axum::extract::Path<u64>) -> String {
    let n = USER_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("user {} (call {n})", id.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_attribute_on_a_handler() {
    let app = Router::new().route("/users/{id}", get(user));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(fetch(address, "/users/7").await.body, "user 7 (call 1)");
    assert_eq!(fetch(address, "/users/7").await.body, "user 7 (call 1)");
    assert_eq!(fetch(address, "/users/8").await.body, "user 8 (call 2)");
    assert_eq!(
        HANDLER_CACHE
            .get::<String>("user:7")
            .await
            .unwrap()
            .as_deref(),
        Some("user 7 (call 1)")
    );
}

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("axum.rs"), memory::CASES);
}
