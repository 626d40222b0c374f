#![allow(dead_code)]
//! A local DynamoDB-compatible server for tests: moto's server mode, from
//! the venv `scripts/test` installs (or `CASHEWS_MOTO_SERVER`), on a free
//! loopback port, killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MotoServer {
    pub port: u16,
    child: Child,
}

fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("CASHEWS_MOTO_SERVER") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("moto-venv/bin/moto_server")
}

impl MotoServer {
    /// Starts a server and waits until it answers.
    pub fn start() -> MotoServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        MotoServer::start_on(port)
    }

    /// Starts a server on `port` (e.g. again after [`MotoServer::kill`]).
    pub fn start_on(port: u16) -> MotoServer {
        let program = program();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): scripts/test installs moto's server into target/moto-venv",
                    program.display()
                )
            });
        let server = MotoServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("moto_server did not listen on port {port}");
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `dynamodb://` URL for `table` on this server (test credentials,
    /// the table created on first use).
    pub fn url(&self, table: &str) -> String {
        format!(
            "dynamodb://test:test@{table}?region=us-east-1&endpoint={}&create_table=true",
            self.endpoint()
        )
    }

    fn signal(&self, signal: libc::c_int) -> bool {
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) == 0 }
    }

    /// Stops the server (SIGSTOP): a hung server.
    pub fn pause(&self) {
        assert!(self.signal(libc::SIGSTOP), "SIGSTOP to moto_server");
    }

    /// Resumes a paused server.
    pub fn resume(&self) {
        assert!(self.signal(libc::SIGCONT), "SIGCONT to moto_server");
    }

    /// Kills the server now (an outage).
    pub fn kill(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.kill();
    }
}
