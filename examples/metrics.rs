//! Cache metrics in the Prometheus text format.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! curl http://127.0.0.1:9898/metrics
//! ```
//!
//! The `Metrics` middleware records into the `metrics` facade; any recorder
//! collects it. Here `metrics-exporter-prometheus` renders it, served by a
//! minimal HTTP responder (the exporter's own listener needs hyper).

use std::error::Error;

use cashews::middleware::Metrics;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Latency buckets, in seconds: memory hits land in the first, Redis and
/// disk round trips in the middle.
const BUCKETS: &[f64] = &[
    0.000_005, 0.000_025, 0.000_1, 0.000_5, 0.001, 0.005, 0.025, 0.1, 0.5,
];

/// Installs the process-wide Prometheus recorder.
pub fn install_recorder() -> Result<PrometheusHandle, Box<dyn Error>> {
    Ok(PrometheusBuilder::new()
        .set_buckets(BUCKETS)?
        .install_recorder()?)
}

/// Answers every HTTP request on `listener` with the rendered metrics.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let handle = handle.clone();
        tokio::spawn(async move {
            // Read the request head (its content does not matter here).
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let body = handle.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let handle = install_recorder()?;
    let cache = cashews::Cache::new();
    cache.setup("mem://")?;
    cache.add_middleware(Metrics);

    cache.set("user:1", &"Ann").expire("1h").await?;
    let _: Option<String> = cache.get("user:1").await?;
    let _: Option<String> = cache.get("user:2").await?;

    let listener = TcpListener::bind("127.0.0.1:9898").await?;
    println!("metrics at http://{}/metrics", listener.local_addr()?);
    serve(listener, handle).await?;
    Ok(())
}
