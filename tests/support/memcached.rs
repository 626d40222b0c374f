#![allow(dead_code)]
//! A real memcached for tests: on a free loopback port, killed when dropped.

use std::process::{Command, Stdio};

use super::process::{free_port, ServerProcess};
use std::time::{Duration, Instant};

pub struct MemcachedServer {
    pub port: u16,
    process: ServerProcess,
}
impl std::ops::Deref for MemcachedServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl std::ops::DerefMut for MemcachedServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

impl MemcachedServer {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> MemcachedServer {
        let port = free_port();
        MemcachedServer::start_on(port)
    }

    /// Starts a server on `port` (e.g. again after [`MemcachedServer::kill`]).
    pub fn start_on(port: u16) -> MemcachedServer {
        let mut command = Command::new("memcached");
        command.args([
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-m",
            "64",
            "-p",
            &port.to_string(),
        ]);
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // memcached refuses to run as root without naming a user.
            command.args(["-u", "root"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached is installed (scripts/test installs it)");
        MemcachedServer {
            port,
            process: ServerProcess::new("memcached", child),
        }
        .ready()
    }

    fn ready(self) -> MemcachedServer {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut reply = [0u8; 4];
                if stream.write_all(b"mn\r\n").is_ok()
                    && stream.read(&mut reply).is_ok()
                    && reply.starts_with(b"MN")
                {
                    return self;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("memcached did not answer on port {}", self.port);
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("memcached://{}", self.address())
    }

    /// Sends raw protocol text and returns the first reply read.
    pub fn raw(&self, request: &[u8]) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut reply = vec![0u8; 64 * 1024];
        let n = stream.read(&mut reply).unwrap();
        reply.truncate(n);
        reply
    }
}
