#![allow(dead_code)]
//! Write traffic through an outage: tasks writing their own key in a loop,
//! and what they saw — how long until every task's writes succeeded again
//! after the outage began, and the slowest call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cashews::Cache;

/// Tasks writing `task:{n}` = an increasing number, each as fast as it can
/// (20 ms apart after an error).
pub struct Traffic {
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct Seen {
    outage: Option<Instant>,
    /// Per task: when a write started after the outage began succeeded.
    recovered: Vec<Option<Instant>>,
    /// Per task: the last value a write of it acknowledged.
    acknowledged: Vec<u64>,
    slowest: Duration,
}

/// What the traffic saw.
#[derive(Debug)]
pub struct Report {
    /// From the outage's start until every task had written again (`None`
    /// if one has not).
    pub recovery: Option<Duration>,
    pub slowest: Duration,
    /// Per task: the last value a write acknowledged.
    pub acknowledged: Vec<u64>,
}

impl Traffic {
    /// Starts `tasks` tasks writing through `cache`.
    pub fn start(cache: &Cache, tasks: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Seen {
            recovered: vec![None; tasks],
            acknowledged: vec![0; tasks],
            ..Seen::default()
        }));
        let tasks = (0..tasks)
            .map(|task| {
                let (cache, stop, shared) = (cache.clone(), stop.clone(), shared.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let started = Instant::now();
                        let written = cache.set(&key(task), &n).await;
                        let ended = Instant::now();
                        let ok = written.is_ok();
                        {
                            let mut seen = shared.lock().unwrap();
                            seen.slowest = seen.slowest.max(ended - started);
                            if ok {
                                seen.acknowledged[task] = n;
                                if seen.outage.is_some_and(|outage| started > outage) {
                                    seen.recovered[task].get_or_insert(ended);
                                }
                            }
                        }
                        if !ok {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            shared,
            tasks,
        }
    }

    /// The outage begins now.
    pub fn outage(&self) {
        self.shared.lock().unwrap().outage = Some(Instant::now());
    }

    /// Waits until every task wrote again after the outage began, at most
    /// `within`.
    pub async fn wait_for_recovery(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self
            .shared
            .lock()
            .unwrap()
            .recovered
            .iter()
            .any(Option::is_none)
        {
            assert!(
                Instant::now() < deadline,
                "writes did not succeed again within {within:?} of the outage"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the tasks; what they saw.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("no writer panicked");
        }
        let seen = self.shared.lock().unwrap();
        let outage = seen.outage.expect("an outage was marked");
        let recovery = seen
            .recovered
            .iter()
            .map(|r| r.map(|r| r - outage))
            .collect::<Option<Vec<_>>>()
            .and_then(|each| each.into_iter().max());
        Report {
            recovery,
            slowest: seen.slowest,
            acknowledged: seen.acknowledged.clone(),
        }
    }
}

/// The key task `task` writes.
pub fn key(task: usize) -> String {
    format!("task:{task}")
}
