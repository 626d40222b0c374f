#![allow(dead_code)]
//! A server process a test starts: signals for outages (a hung server, a
//! killed one) and killed when dropped, so no test leaves one behind.

use std::net::TcpListener;
use std::process::Child;

/// A free loopback port (bound and released: a server started on it at
/// once gets it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed when dropped.
pub struct ServerProcess {
    name: &'static str,
    child: Child,
}

impl ServerProcess {
    /// Wraps `child`; `name` says which server in failure messages.
    pub fn new(name: &'static str, child: Child) -> ServerProcess {
        ServerProcess { name, child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (e.g. it could not bind its port).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends `signal`; whether it was delivered.
    fn signal(&self, signal: libc::c_int) -> bool {
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) == 0 }
    }

    /// Stops the server (SIGSTOP): connections stay open, nothing answers —
    /// a hung server. Returns once every thread of the server is stopped:
    /// `kill(2)` only queues the signal, and a thread still running would
    /// answer a request sent right after it.
    pub fn pause(&self) {
        assert!(self.signal(libc::SIGSTOP), "SIGSTOP to {}", self.name);
        let since = std::time::Instant::now();
        while !self.stopped() {
            assert!(
                since.elapsed() < std::time::Duration::from_secs(10),
                "{} did not stop within 10 s of SIGSTOP",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Whether every thread of the server is stopped (state `T` in
    /// `/proc/<pid>/task/*/stat`).
    fn stopped(&self) -> bool {
        let tasks = format!("/proc/{}/task", self.child.id());
        let Ok(tasks) = std::fs::read_dir(&tasks) else {
            return false;
        };
        tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                // The state follows the command name, which is in parentheses
                // and may itself contain ") ".
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.chars().next())
                    .is_some_and(|state| state == 'T' || state == 't')
            })
        })
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        assert!(self.signal(libc::SIGCONT), "SIGCONT to {}", self.name);
    }

    /// Kills the server where it stands, paused or not: a paused server
    /// dies without answering what it holds.
    pub fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server now (an outage).
    pub fn kill(&mut self) {
        // A paused server would keep its port until it runs again.
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A program installed under the target dir by `scripts/test` (a venv's),
/// unless the environment variable `var` names it.
pub fn installed(var: &str, under_target: &str) -> std::path::PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return path.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join(under_target)
}
