//! The `Metrics` middleware, scraped over HTTP from the `metrics` example's
//! endpoint, on every backend compiled in.

#[path = "../examples/metrics.rs"]
#[allow(dead_code)]
mod example;
mod support;

use cashews::middleware::Metrics;
use support::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

/// The value of the sample of `metric` carrying every label of `labels`.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn exercise(harness: &Harness) {
    let cache = &harness.cache;
    cache.add_middleware(Metrics);
    cache.set("m:a", &1).await.unwrap();
    cache.set("m:b", &2).await.unwrap();
    assert_eq!(cache.get::<i32>("m:a").await.unwrap(), Some(1));
    assert_eq!(cache.get::<i32>("m:none").await.unwrap(), None);
    let many = cache
        .get_many::<i32>(&["m:a", "m:b", "m:none"])
        .await
        .unwrap();
    assert_eq!(many, [Some(1), Some(2), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_in_prometheus_format() {
    let handle = example::install_recorder().unwrap();
    let mut harnesses = vec![Harness::memory("mem://")];
    #[cfg(feature = "redis")]
    harnesses.push(Harness::redis(""));
    #[cfg(feature = "disk")]
    harnesses.push(Harness::disk(""));
    for harness in &harnesses {
        exercise(harness).await;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(example::serve(listener, handle));
    let text = scrape(address).await;
    server.abort();

    for harness in &harnesses {
        let backend = harness.cache.backend_name("m:a").unwrap();
        let hits = sample(
            &text,
            "cashews_get_operation_total",
            &[("result", "hit"), ("backend", backend)],
        );
        let misses = sample(
            &text,
            "cashews_get_operation_total",
            &[("result", "miss"), ("backend", backend)],
        );
        assert_eq!((hits, misses), (Some(3.0), Some(2.0)), "{backend}\n{text}");
        let labels = [("operation", "set"), ("backend", backend)];
        assert_eq!(
            sample(&text, "cashews_operations_latency_seconds_count", &labels),
            Some(2.0),
            "{backend}\n{text}"
        );
        // A histogram: cumulative buckets up to +Inf.
        let inf = [("operation", "get"), ("backend", backend), ("le", "+Inf")];
        assert_eq!(
            sample(&text, "cashews_operations_latency_seconds_bucket", &inf),
            Some(2.0),
            "{backend}\n{text}"
        );
    }
}
