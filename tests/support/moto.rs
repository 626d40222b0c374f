#![allow(dead_code)]
//! A local DynamoDB-compatible server for tests: moto's server mode, from
//! the venv `scripts/test` installs (or `CASHEWS_MOTO_SERVER`), on a free
//! loopback port, killed when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::process::{free_port, ServerProcess};
use std::time::{Duration, Instant};

/// moto's server application, served by one thread.
const SERIAL_SERVER: &str = "import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False)
";

pub struct MotoServer {
    pub port: u16,
    process: ServerProcess,
}
impl std::ops::Deref for MotoServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl std::ops::DerefMut for MotoServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

fn program() -> PathBuf {
    super::process::installed("CASHEWS_MOTO_SERVER", "moto-venv/bin/moto_server")
}

impl MotoServer {
    /// Starts a server and waits until it answers.
    pub fn start() -> MotoServer {
        let port = free_port();
        MotoServer::start_on(port)
    }

    /// Starts a server on `port` (e.g. again after [`MotoServer::kill`]).
    pub fn start_on(port: u16) -> MotoServer {
        let program = program();
        // moto's own `moto_server` answers requests on many threads, and
        // its DynamoDB model has no locks: two concurrent updates of one item
        // can lose one (DynamoDB never does). One request at a time, in the
        // venv's Python, makes each request atomic as in DynamoDB.
        let python = program.with_file_name("python");
        let child = Command::new(&python)
            .args(["-c", SERIAL_SERVER, "127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): scripts/test installs moto's server into target/moto-venv",
                    python.display()
                )
            });
        let server = MotoServer {
            port,
            process: ServerProcess::new("moto_server", child),
        };
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
}
