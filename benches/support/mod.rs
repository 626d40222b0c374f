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

/// The runtime of the benches that wait on I/O: two workers, as the VM's
/// two vCPUs.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
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

/// Prints `ours / theirs` for each pair of criterion ids, with the
/// absolute means (and records them, see [`record`]).
pub fn print_ratios(title: &str, pairs: &[(&str, &str)]) {
    print_header(title);
    for (ours, peer) in pairs {
        let label = format!("{ours} / {peer}");
        print_row(title, &label, mean_ns(ours), mean_ns(peer));
    }
}

/// The header of a ratio table.
pub fn print_header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "ours vs peer", "ours ns", "peer ns", "ratio"
    );
}

/// One row of a ratio table: `ours / peer` (nanoseconds each).
pub fn print_row(title: &str, label: &str, ours: Option<f64>, peer: Option<f64>) {
    match (ours, peer) {
        (Some(a), Some(b)) => {
            let ratio = a / b;
            // Small ratios keep three significant digits (0.00290x).
            let shown = if ratio < 0.01 {
                format!("{ratio:.5}")
            } else {
                format!("{ratio:.2}")
            };
            println!("{label:<44} {a:>10.1} {b:>10.1} {shown:>8}x");
            record(
                "ratios.tsv",
                &format!("{title}\t{label}\t{a:.1}\t{b:.1}\t{ratio}"),
            );
        }
        _ => println!("{label}: not measured in this run (filtered out?)"),
    }
}

/// Appends `line` to `file` in the directory named by `CASHEWS_BENCH_REPORT`
/// (set by `scripts/bench`, which turns the files into BENCHMARKS.md).
pub fn record(file: &str, line: &str) {
    let Some(dir) = std::env::var_os("CASHEWS_BENCH_REPORT") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let _ = std::fs::create_dir_all(&dir);
    use std::io::Write;
    if let Ok(mut out) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))
    {
        let _ = writeln!(out, "{line}");
    }
}

/// Runs the Python script `benches/{script}` in the bench virtualenv
/// (`target/bench-venv`, made and given `packages` with pip when missing)
/// with `args`; the JSON object it prints.
pub fn python_peer(
    script: &str,
    packages: &[&str],
    args: &[String],
) -> Result<serde_json::Value, String> {
    use std::process::Command;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let venv = target.join("bench-venv");
    let python = venv.join("bin").join("python");
    let run = |command: &mut Command| -> Result<std::process::Output, String> {
        let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(format!(
                "{command:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    };
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    for package in packages {
        let module = package
            .split(['=', '<', '>', '['])
            .next()
            .unwrap_or(package);
        if run(Command::new(&python).args(["-c", &format!("import {module}")])).is_err() {
            run(Command::new(&python).args(["-m", "pip", "install", "--quiet", package]))?;
        }
    }
    let output = run(Command::new(&python)
        .arg(root.join("benches").join(script))
        .args(args))?;
    serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())
}

/// CPU-bound threads, one per core, spinning beside a benchmark until
/// dropped: the loaded-machine variant of a bench, where a design that only
/// wins while cores sit idle (waking a thread, spinning on a lock) shows it.
pub struct Busy {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    /// One spinning thread per available core.
    pub fn every_core() -> Busy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(
                                x.wrapping_mul(6364136223846793005).wrapping_add(1),
                            );
                        }
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
