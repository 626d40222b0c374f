//! Writes BENCHMARKS.md and the Redis latency chart from what the benches
//! recorded in `$CASHEWS_BENCH_REPORT` (`ratios.tsv`,
//! `redis_concurrency.csv`) during `scripts/bench`.
//!
//! Usage: `cashews-bench-report <report dir> <BENCHMARKS.md> <chart.png>`

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

struct Ratio {
    section: String,
    label: String,
    ours_ns: f64,
    peer_ns: f64,
    ratio: f64,
}

fn ratios(dir: &Path) -> Result<Vec<Ratio>, Box<dyn Error>> {
    let text = std::fs::read_to_string(dir.join("ratios.tsv"))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [section, label, ours, peer, ratio] = fields[..] else {
            return Err(format!("malformed line in ratios.tsv: {line:?}").into());
        };
        out.push(Ratio {
            section: section.to_owned(),
            label: label.to_owned(),
            ours_ns: ours.parse()?,
            peer_ns: peer.parse()?,
            ratio: ratio.parse()?,
        });
    }
    Ok(out)
}

/// A row of the concurrency sweep: tasks, cashews µs (batching on),
/// redis-rs µs, cashews µs with `batch=false`.
type SweepRow = (u32, f64, f64, f64);

fn sweep(dir: &Path) -> Result<Vec<SweepRow>, Box<dyn Error>> {
    let text = std::fs::read_to_string(dir.join("redis_concurrency.csv"))?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let [tasks, ours, peer, unbatched] = fields[..] else {
            return Err(format!("malformed line in redis_concurrency.csv: {line:?}").into());
        };
        rows.push((
            tasks.parse()?,
            ours.parse()?,
            peer.parse()?,
            unbatched.parse()?,
        ));
    }
    Ok(rows)
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_owned(), |s| s.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("unknown".to_owned(), |kb| format!("{} GiB", kb / (1 << 20)));
    let python = Path::new("target/bench-venv/bin/python");
    let python = if python.exists() {
        command(&python.display().to_string(), &["--version"])
    } else {
        "not installed".to_owned()
    };
    format!(
        "| | |\n|---|---|\n| CPU | {cpu}, {} logical CPUs |\n| memory | {memory} |\n| OS | {} |\n| Rust | {} |\n| Redis | {} |\n| Python | {python} |\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command("uname", &["-sr"]),
        command("rustc", &["-V"]),
        command("redis-server", &["--version"]),
    )
}

fn chart(rows: &[SweepRow], path: &Path) -> Result<(), Box<dyn Error>> {
    let font: &'static [u8] = Box::leak(std::fs::read(FONT)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "the chart's font could not be loaded")?;
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_tasks = rows.iter().map(|r| r.0).max().unwrap_or(1) as f64;
    let max_us = rows
        .iter()
        .map(|r| r.1.max(r.2).max(r.3))
        .fold(1.0, f64::max)
        * 1.1;
    let min_us = rows
        .iter()
        .map(|r| r.1.min(r.2).min(r.3))
        .fold(f64::MAX, f64::min)
        * 0.9;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Redis get: latency per call vs concurrent tasks",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((1f64..max_tasks).log_scale(), (min_us..max_us).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("concurrent tasks")
        .y_desc("µs per call, as a task sees it")
        .label_style(("sans-serif", 14))
        .draw()?;
    let series: [(&str, RGBColor, fn(&SweepRow) -> f64); 3] = [
        ("cashews for Rust", RGBColor(200, 80, 30), |r| r.1),
        ("cashews, batch=false", RGBColor(230, 170, 60), |r| r.3),
        ("raw redis-rs", RGBColor(40, 90, 180), |r| r.2),
    ];
    for (name, color, column) in series {
        let points: Vec<(f64, f64)> = rows.iter().map(|r| (f64::from(r.0), column(r))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, markdown, png] = &args[..] else {
        return Err("usage: cashews-bench-report <report dir> <BENCHMARKS.md> <chart.png>".into());
    };
    let dir = Path::new(dir);
    let ratios = ratios(dir)?;
    let sweep = sweep(dir).unwrap_or_default();

    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(
        out,
        "Written by `scripts/bench`, which runs every comparison bench in one go on one machine. \
         A ratio is ours / the peer's mean time per operation: **below 1 is faster**. \
         Peers run in the same run, on the same machine, against the same server or directory; \
         absolute times vary between runs (±15% on this VM), ratios much less.\n"
    )?;
    writeln!(out, "## Machine\n\n{}", machine())?;
    let mut sections: Vec<&str> = Vec::new();
    for r in &ratios {
        if !sections.contains(&r.section.as_str()) {
            sections.push(&r.section);
        }
    }
    for section in sections {
        writeln!(out, "## {section}\n")?;
        writeln!(
            out,
            "| ours vs peer | ours | peer | ratio |\n|---|---:|---:|---:|"
        )?;
        for r in ratios.iter().filter(|r| r.section == section) {
            // Rows of sizes (bytes per entry, stored sizes) are not times.
            let show = if r.label.contains("bytes") || r.label.contains("size") {
                bytes
            } else {
                human
            };
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                r.label,
                show(r.ours_ns),
                show(r.peer_ns),
                ratio(r.ratio)
            )?;
        }
        writeln!(out)?;
    }
    if !sweep.is_empty() {
        let name = Path::new(png)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("chart.png");
        match chart(&sweep, Path::new(png)) {
            Ok(()) => {}
            Err(error) => eprintln!("chart not drawn: {error}"),
        }
        writeln!(out, "## Redis latency against concurrency\n")?;
        writeln!(
            out,
            "![Redis get latency against concurrent tasks](docs/{name})\n"
        )?;
        writeln!(
            out,
            "| tasks | cashews µs | redis-rs µs | ratio | cashews `batch=false` µs | ratio |\n|---:|---:|---:|---:|---:|---:|"
        )?;
        for (tasks, ours, peer, unbatched) in &sweep {
            writeln!(
                out,
                "| {tasks} | {ours:.1} | {peer:.1} | {:.2}× | {unbatched:.1} | {:.2}× |",
                ours / peer,
                unbatched / peer
            )?;
        }
        writeln!(out)?;
    }
    // Hand-written analysis kept beside the generated tables.
    let profiles = Path::new(markdown)
        .parent()
        .unwrap_or(Path::new("."))
        .join("docs/benchmark-profiles.md");
    if let Ok(text) = std::fs::read_to_string(&profiles) {
        writeln!(out, "{}", text.trim_end())?;
    }
    std::fs::write(markdown, out)?;
    Ok(())
}

/// A byte count.
fn bytes(n: f64) -> String {
    format!("{n:.0} B")
}

/// Nanoseconds as ns, µs or ms.
fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

/// A ratio with two decimals, or three significant digits when small.
fn ratio(r: f64) -> String {
    if r < 0.01 {
        format!("{r:.5}×")
    } else {
        format!("{r:.2}×")
    }
}
