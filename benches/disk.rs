//! cashews' `disk://` (8 shards) against Python diskcache's FanoutCache (8
//! shards) on this machine, in one run: get hits, sets and deletes of the
//! same bytes under the same keys. The Python side runs in a virtualenv under
//! `target/bench-venv`, made (and diskcache installed with pip) when missing.
//!
//! `cargo bench --bench disk --features disk`

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use support::{mean_ns, profile, Profile};

const KEYS: u64 = 1000;

fn main() {
    let dir = std::env::temp_dir().join(format!("cashews-bench-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = cashews::Cache::new();
    cache
        .setup(&format!("disk://?directory={}&shards=8", dir.display()))
        .unwrap();
    let value = profile(7);
    let value_len = runtime.block_on(async {
        for i in 0..KEYS {
            cache.set(&format!("key:{i}"), &value).await.unwrap();
        }
        cache.get_raw("key:0").await.unwrap().unwrap().len()
    });

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("disk");
    let mut i = 0u64;
    group.bench_function("get_cashews", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let cache = &cache;
            async move { cache.get::<Profile>(&key).await.unwrap() }
        })
    });
    group.bench_function("set_cashews", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let (cache, value) = (&cache, &value);
            async move { cache.set(&key, value).await.unwrap() }
        })
    });
    group.bench_function("delete_cashews", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let cache = &cache;
            async move { cache.delete(&key).await.unwrap() }
        })
    });
    group.finish();
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);

    println!("\ndisk: cashews disk:// vs Python diskcache FanoutCache (8 shards each)");
    let peer = match diskcache(value_len, KEYS, 20_000) {
        Ok(peer) => peer,
        Err(why) => {
            println!("diskcache not measured: {why}");
            return;
        }
    };
    println!(
        "{:<10} {:>12} {:>14} {:>8}",
        "operation", "cashews ns", "diskcache ns", "ratio"
    );
    for op in ["get", "set", "delete"] {
        let ours = mean_ns(&format!("disk/{op}_cashews"));
        let theirs = peer[op].as_f64();
        match (ours, theirs) {
            (Some(a), Some(b)) => println!("{op:<10} {a:>12.0} {b:>14.0} {:>7.2}x", a / b),
            _ => println!("{op}: not measured in this run (filtered out?)"),
        }
    }
}

/// Runs benches/diskcache_peer.py in the bench virtualenv; its JSON result.
fn diskcache(value_len: usize, keys: u64, n: u64) -> Result<serde_json::Value, String> {
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
    if run(Command::new(&python).args(["-c", "import diskcache"])).is_err() {
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "diskcache"]))?;
    }
    let output = run(Command::new(&python)
        .arg(root.join("benches").join("diskcache_peer.py"))
        .args([value_len.to_string(), keys.to_string(), n.to_string()]))?;
    serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())
}
