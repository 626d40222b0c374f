#![allow(dead_code)]
//! A real redis-server for tests: on a free loopback port, no persistence,
//! killed when dropped.

use std::net::TcpListener;
use std::process::{Command, Stdio};

use super::process::{free_port, ServerProcess};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    process: ServerProcess,
}
impl std::ops::Deref for RedisServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        RedisServer::on_free_port(free_port, |port| {
            RedisServer::spawn(port, &["--port", &port.to_string()])
        })
    }

    /// Starts a server that also listens on the unix socket `socket`.
    pub fn start_unix(socket: &std::path::Path) -> RedisServer {
        let socket = socket.display().to_string();
        RedisServer::on_free_port(free_port, |port| {
            RedisServer::spawn(
                port,
                &[
                    "--port",
                    &port.to_string(),
                    "--unixsocket",
                    &socket,
                    "--unixsocketperm",
                    "700",
                ],
            )
        })
    }

    /// Starts a server on `port` (e.g. again after [`RedisServer::kill`]).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::spawn(port, &["--port", &port.to_string()]).ready()
    }

    /// Starts a server on `port` that writes every command to an
    /// append-only file in `dir`, synced before it answers: a server killed
    /// and started again on the same `dir` keeps every acknowledged write.
    pub fn start_durable(port: u16, dir: &std::path::Path) -> RedisServer {
        let dir = dir.display().to_string();
        let port_text = port.to_string();
        let args = [
            "--port",
            &port_text,
            "--dir",
            &dir,
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ];
        RedisServer::spawn(port, &args).ready()
    }

    /// Spawns a server on a free port with `spawn`, again on another port
    /// if the one chosen was taken meanwhile (another test's server may be
    /// given the same released port).
    fn on_free_port(
        mut port: impl FnMut() -> u16,
        mut spawn: impl FnMut(u16) -> RedisServer,
    ) -> RedisServer {
        for _ in 0..5 {
            if let Some(server) = spawn(port()).answers() {
                return server;
            }
        }
        panic!("no redis-server could start on a free port in 5 tries");
    }

    /// Waits until the server answers `PING`.
    fn ready(self) -> RedisServer {
        let port = self.port;
        self.answers()
            .unwrap_or_else(|| panic!("redis-server did not start on port {port} (taken?)"))
    }

    /// Waits until this server (not another process on its port) answers
    /// `PING`; `None` if it exited (its port was taken) or another answers.
    fn answers(mut self) -> Option<RedisServer> {
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.process.exited() {
                return None;
            }
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read(&mut reply).is_ok()
                    && reply.starts_with(b"+PONG")
                {
                    let ours = format!("process_id:{}", self.process.pid());
                    return redis_cli(port, &["INFO", "server"])
                        .contains(&ours)
                        .then_some(self);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {port}");
    }

    /// Spawns redis-server on loopback without persistence, plus `args`.
    fn spawn(port: u16, args: &[&str]) -> RedisServer {
        // A replica syncs at once and loads what it syncs straight from the
        // socket: nothing is written to the working directory (a dump.rdb
        // there would be loaded by every server started after it).
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--repl-diskless-load", "swapdb"])
            .args(args);
        RedisServer::launch(port, "redis-server", command)
    }

    /// Runs `command` (a redis-server on `port`) quietly.
    fn launch(port: u16, name: &'static str, mut command: Command) -> RedisServer {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        RedisServer {
            port,
            process: ServerProcess::new(name, child),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs `redis-cli -p <port> args..` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI in
/// a fresh directory (removed on drop).
pub struct TestCertificates {
    pub dir: std::path::PathBuf,
}

impl TestCertificates {
    pub fn create(name: &str) -> TestCertificates {
        let dir = std::env::temp_dir().join(format!("cashews-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        let run = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl is installed");
            assert!(status.success(), "openssl {args:?}");
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=cashews test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ]);
        TestCertificates { dir }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// A server speaking only TLS on its port, with `certs`' server certificate.
    pub fn start_tls(certs: &TestCertificates) -> RedisServer {
        let port = free_port();
        let tls_port = port.to_string();
        let server = RedisServer::spawn(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &tls_port,
                "--tls-cert-file",
                &certs.path("server.crt"),
                "--tls-key-file",
                &certs.path("server.key"),
                "--tls-ca-cert-file",
                &certs.path("ca.crt"),
                "--tls-auth-clients",
                "no",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server (tls) did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

/// Runs `redis-cli -p <port> args..` against a loopback server; its output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli is installed with redis-server");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A local Redis Cluster of three primaries (no replicas), made with
/// `redis-cli --cluster create`; its servers and files go when dropped.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cashews-cluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir_arg = dir.display().to_string();
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::on_free_port(cluster_port, |port| {
                    RedisServer::spawn(
                        port,
                        &[
                            "--port",
                            &port.to_string(),
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            &format!("nodes-{port}.conf"),
                            "--dir",
                            &dir_arg,
                        ],
                    )
                })
            })
            .collect();
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        redis_cli(nodes[0].port, &create);
        let cluster = RedisCluster { nodes, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster
            .nodes
            .iter()
            .all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The setup URL: every node, `cluster=true`, then `params` (`&a=b`).
    pub fn url(&self) -> String {
        format!("redis://{}?cluster=true", hosts(&self.nodes))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port whose cluster bus port (+10000) is free too; both below the
/// ephemeral range, so outgoing connections do not take them meanwhile.
fn cluster_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(Instant::now().elapsed().as_nanos() as u64);
        let port = 10_000 + (hasher.finish() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
}

/// A primary, its replica and three sentinels monitoring them as
/// `mymaster` (quorum 2, a primary is down after 1 s without answers), on
/// free loopback ports; everything goes when dropped.
pub struct SentinelGroup {
    pub primary: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<RedisServer>,
    /// The killed primary's port, held: a server another test starts there
    /// would be taken over by these sentinels as a replica.
    held: Option<TcpListener>,
    dir: std::path::PathBuf,
}

impl SentinelGroup {
    pub fn start() -> SentinelGroup {
        let dir = std::env::temp_dir().join(format!(
            "cashews-sentinel-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let dir_arg = dir.display().to_string();
        let primary = RedisServer::on_free_port(free_port, |port| {
            RedisServer::spawn(port, &["--port", &port.to_string(), "--dir", &dir_arg])
        });
        let primary_port = primary.port.to_string();
        let replica = RedisServer::on_free_port(free_port, |port| {
            let args = [
                "--port",
                &port.to_string(),
                "--dir",
                &dir_arg,
                "--replicaof",
                "127.0.0.1",
                &primary_port,
            ];
            RedisServer::spawn(port, &args)
        });
        let sentinels = (0..3)
            .map(|n| {
                RedisServer::on_free_port(free_port, |port| {
                    let conf = dir.join(format!("sentinel-{n}.conf"));
                    std::fs::write(
                        &conf,
                        format!(
                            "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor mymaster 127.0.0.1 {primary_port} 2\n\
                         sentinel down-after-milliseconds mymaster 1000\n\
                         sentinel failover-timeout mymaster 4000\n\
                         sentinel parallel-syncs mymaster 1\n",
                            dir.display()
                        ),
                    )
                    .unwrap();
                    let mut command = Command::new("redis-server");
                    command.arg(&conf).arg("--sentinel");
                    RedisServer::launch(port, "redis-sentinel", command)
                })
            })
            .collect();
        let group = SentinelGroup {
            primary,
            replica,
            sentinels,
            held: None,
            dir,
        };
        group.wait_until_ready();
        group
    }

    /// Waits until the replica is in sync and every sentinel knows the
    /// replica and the two other sentinels (a failover needs them).
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = self
                .replica
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up");
            let known = self.sentinels.iter().all(|s| {
                let replicas = s.cli(&["SENTINEL", "REPLICAS", "mymaster"]);
                let others = s.cli(&["SENTINEL", "SENTINELS", "mymaster"]);
                replicas.contains(&self.replica.port.to_string())
                    && others.matches("127.0.0.1").count() >= 2
            });
            if synced && known {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel group did not form in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the primary (SIGKILL) and holds its port.
    pub fn kill_primary(&mut self) {
        self.primary.kill_now();
        self.held = TcpListener::bind(("127.0.0.1", self.primary.port)).ok();
    }

    /// `redis+sentinel://` naming the three sentinels.
    pub fn url(&self) -> String {
        format!("redis+sentinel://{}/mymaster", hosts(&self.sentinels))
    }

    /// The port of the primary the sentinels name now.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
        reply.lines().nth(1)?.trim().parse().ok()
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `127.0.0.1:port,...` of `servers`.
fn hosts(servers: &[RedisServer]) -> String {
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    hosts.join(",")
}
