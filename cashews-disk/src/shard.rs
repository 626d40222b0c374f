//! A shard's thread: it owns the shard's connection and runs the commands
//! sent to it in order, and purges expired rows (and side files no row
//! names) when idle for `check_interval`. It ends when the backend is dropped.
//! Callers may run a command on their own thread instead, with the shard's
//! connection when the thread is not using it ([`Shard::here`]), or with an
//! idle read-only connection ([`Shard::read`]). The thread also runs the
//! write-ahead log's checkpoints.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use cashews_backend::{Clock, Error, Result};
use tokio::sync::oneshot;

use crate::db::{Db, Reader};
use crate::DiskConfig;

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// The most idle read-only connections a shard keeps (more are opened
/// while more threads read at once, and closed after).
const IDLE_READERS: usize = 8;

/// A handle on a shard's thread, and its read-only connections.
pub(crate) struct Shard {
    jobs: mpsc::Sender<Job>,
    db: Arc<Mutex<Db>>,
    path: PathBuf,
    readers: Mutex<Vec<Reader>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Opens shard `n` of `config.directory` on a new thread.
    pub(crate) fn open(n: u16, config: &DiskConfig, clock: Clock) -> Result<Shard> {
        let path = config.directory.join(format!("shard-{n:03}.db"));
        let db = Arc::new(Mutex::new(Db::open(n, &path, config, clock)?));
        let (jobs, queue) = mpsc::channel::<Job>();
        let (interval, grace) = (config.check_interval, config.orphan_grace);
        let thread_db = db.clone();
        std::thread::Builder::new()
            .name(format!("cashews-disk-{n}"))
            .spawn(move || run(&thread_db, &queue, interval, grace))
            .map_err(|e| Error::backend("disk", false, e))?;
        Ok(Shard {
            jobs,
            db,
            path,
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `read` on this thread with an idle read-only connection (opened
    /// if none is idle); `None` if none could be opened.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Reader) -> R) -> Option<R> {
        let idle = lock(&self.readers).pop();
        let reader = match idle {
            Some(reader) => reader,
            None => Reader::open(&self.path).ok()?,
        };
        let out = read(&reader);
        let mut readers = lock(&self.readers);
        if readers.len() < IDLE_READERS {
            readers.push(reader);
        }
        Some(out)
    }

    /// Runs `command` on this thread with the shard's connection, if the
    /// shard's thread is not using it, no other process holds the write
    /// lock (it never waits for either) and no checkpoint is overdue
    /// ([`Db::checkpoint_overdue`]); `None` otherwise, with nothing
    /// changed. Runs what the thread would run, in one transaction, so
    /// commands keep their atomicity; the order among concurrent commands
    /// of this process is, as on the thread, the order they took the lock.
    pub(crate) fn here<R>(&self, command: impl FnOnce(&mut Db) -> Result<R>) -> Option<Result<R>> {
        let mut db = match self.db.try_lock() {
            Ok(db) => db,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if db.checkpoint_overdue() {
            return None;
        }
        // As on the thread, a panic in a command is its caller's error.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.here(command)))
            .unwrap_or_else(|_| {
                db.leave_here();
                Some(Err(Error::backend("disk", false, "the command panicked")))
            });
        if db.checkpoint_due() {
            // The thread checkpoints when it next runs: wake it.
            drop(self.call(|_| Ok(())));
        }
        result
    }

    /// Runs `f` on the shard's thread; its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<R> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<R>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.jobs.send(Box::new(move |db: &mut Db| {
            // The caller may have gone (a cancelled future); the work stands.
            let _ = reply.send(f(db));
        }));
        async move {
            sent.map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        }
    }
}

fn stopped() -> Error {
    Error::backend("disk", false, "the shard's thread has stopped")
}

/// A mutex's guard; a panic that poisoned it left consistent data (every
/// command is one transaction), so the guard is taken anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(db: &Mutex<Db>, queue: &mpsc::Receiver<Job>, interval: Option<Duration>, grace: Duration) {
    let mut next_purge = interval.map(|i| Instant::now() + i);
    loop {
        let job = match next_purge {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => queue.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match job {
            // A panic in a command must not take the shard down: its caller
            // sees the dropped reply as an error.
            Ok(job) => {
                let mut db = lock(db);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut db)));
                if db.checkpoint_due() {
                    if let Err(error) = db.checkpoint() {
                        tracing::warn!(%error, "disk cache: checkpointing the write-ahead log failed");
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if let (Some(at), Some(interval)) = (next_purge, interval) {
            if Instant::now() >= at {
                let mut db = lock(db);
                if let Err(error) = db.purge_expired() {
                    tracing::warn!(%error, "disk cache: purging expired rows failed");
                }
                match db.sweep_orphans(grace) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(n, "disk cache: removed orphaned side files"),
                    Err(error) => tracing::warn!(%error, "disk cache: sweeping side files failed"),
                }
                next_purge = Some(Instant::now() + interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cashews_backend::SetOptions;

    /// The shard's thread never runs (a machine too busy to schedule it):
    /// commands stop running on the caller once a checkpoint is overdue,
    /// so the write-ahead log does not grow without bound.
    #[test]
    fn commands_wait_for_the_thread_once_a_checkpoint_is_overdue() {
        let dir = std::env::temp_dir().join(format!("cashews-shard-lag-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::files::prepare_directory(&dir).unwrap();
        let config = DiskConfig::new(&dir);
        let path = dir.join("shard-000.db");
        let db = Db::open(0, &path, &config, Clock::system()).unwrap();
        let (jobs, _queue) = mpsc::channel::<Job>();
        let shard = Shard {
            jobs,
            db: Arc::new(Mutex::new(db)),
            path,
            readers: Mutex::new(Vec::new()),
        };
        let run_here = (0..1000)
            .take_while(|i| {
                shard
                    .here(|db| db.set(&format!("key:{i}"), b"v", SetOptions::default()))
                    .is_some()
            })
            .count();
        assert!(lock(&shard.db).checkpoint_overdue());
        assert!(run_here < 1000, "{run_here} commands ran on the caller");
        // Once the thread checkpoints, commands run on the caller again.
        lock(&shard.db).checkpoint().unwrap();
        assert!(shard
            .here(|db| db.set("after", b"v", SetOptions::default()))
            .is_some());
        drop(shard);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
