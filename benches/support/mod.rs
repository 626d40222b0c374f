//! Helpers shared by the benches: driving ready futures without a runtime,
//! and printing ratios from criterion's own estimates.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde::{Deserialize, Serialize};

/// The value every bench caches: a small struct with a String field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Profile {
    pub id: u64,
    pub name: String,
}

/// The value for `id`.
pub fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user number {id}"),
    }
}

/// Polls a future that completes without waiting (an in-memory cache hit),
/// so no runtime overhead is measured. Panics if it would wait.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("benchmarked future was not ready"),
    }
}

/// The mean time (ns) criterion measured for `group/function` in this run.
pub fn mean_ns(id: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = dir
        .join("criterion")
        .join(id)
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

/// Prints `ours / theirs` for each pair, with the absolute means.
pub fn print_ratios(title: &str, pairs: &[(&str, &str)]) {
    println!("\n{title}");
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "ours vs peer", "ours ns", "peer ns", "ratio"
    );
    for (ours, peer) in pairs {
        match (mean_ns(ours), mean_ns(peer)) {
            (Some(a), Some(b)) => {
                let ratio = a / b;
                // Small ratios keep three significant digits (0.00290x).
                let ratio = if ratio < 0.01 {
                    format!("{ratio:.5}")
                } else {
                    format!("{ratio:.2}")
                };
                println!(
                    "{:<44} {a:>10.1} {b:>10.1} {ratio:>8}x",
                    format!("{ours} / {peer}")
                )
            }
            _ => println!("{ours} / {peer}: not measured in this run (filtered out?)"),
        }
    }
}
