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

/// A local Redis Cluster of three primaries, with `replicas` replicas
/// each, made with `redis-cli --cluster create`; its servers and files go
/// when dropped.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
    /// Killed nodes' ports and bus ports, held: a server another test
    /// starts there would be greeted by this cluster's gossip.
    held: Vec<TcpListener>,
}

impl RedisCluster {
    /// Three primaries, no replicas.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(0)
    }

    /// Three primaries with `replicas` replicas each. A node is failed
    /// after 1 s without answers, and any replica may take over (however
    /// long it was cut off from its primary).
    pub fn start_with(replicas: usize) -> RedisCluster {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cashews-cluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| RedisCluster::node(&dir))
            .collect();
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.extend(["--cluster-replicas".to_owned(), replicas.to_string()]);
        create.push("--cluster-yes".to_owned());
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        redis_cli(nodes[0].port, &create);
        let cluster = RedisCluster {
            nodes,
            dir,
            held: Vec::new(),
        };
        cluster.wait_until_ok("the cluster did not form");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.nodes.iter().all(|n| {
            let info = n.cli(&["INFO", "replication"]);
            info.contains("role:master") || info.contains("master_link_status:up")
        }) {
            assert!(Instant::now() < deadline, "the replicas did not sync");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// A cluster-enabled server keeping its node file in `dir`, not yet
    /// part of a cluster.
    fn node(dir: &std::path::Path) -> RedisServer {
        RedisCluster::node_on(dir, cluster_port)
    }

    /// [`RedisCluster::node`] on a port from `port`.
    fn node_on(dir: &std::path::Path, port: impl FnMut() -> u16) -> RedisServer {
        let dir = dir.display().to_string();
        RedisServer::on_free_port(port, |port| {
            RedisServer::spawn(
                port,
                &[
                    "--port",
                    &port.to_string(),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-replica-validity-factor",
                    "0",
                    "--dir",
                    &dir,
                ],
            )
        })
    }

    /// Adds an empty primary to the cluster and moves the slot of `key`
    /// (and its keys) to it, as a resharding does; the new node's port.
    pub fn move_slot_to_new_node(&mut self, key: &str) -> u16 {
        let new = RedisCluster::node(&self.dir);
        let from = self.primary_of(key);
        let add = [
            "--cluster",
            "add-node",
            &format!("127.0.0.1:{}", new.port),
            &format!("127.0.0.1:{from}"),
        ];
        redis_cli(from, &add);
        let new_id = new.cli(&["CLUSTER", "MYID"]).trim().to_owned();
        let from_id = redis_cli(from, &["CLUSTER", "MYID"]).trim().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .live()
            .all(|n| n.cli(&["CLUSTER", "NODES"]).contains(&new_id))
        {
            assert!(Instant::now() < deadline, "the new node was not met");
            std::thread::sleep(Duration::from_millis(50));
        }
        let slot = redis_cli(from, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .to_owned();
        new.cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        redis_cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &new_id]);
        let keys = redis_cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1000"]);
        let keys: Vec<&str> = keys.split_whitespace().collect();
        if !keys.is_empty() {
            let port = new.port.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            redis_cli(from, &migrate);
        }
        let port = new.port;
        self.nodes.push(new);
        for node in self.live() {
            if node.cli(&["ROLE"]).starts_with("master") {
                node.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &new_id]);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .live()
            .any(|n| RedisCluster::serving_on(n, key) != Some(port))
        {
            assert!(Instant::now() < deadline, "the slot did not move");
            std::thread::sleep(Duration::from_millis(50));
        }
        port
    }

    /// Waits until every live node says the cluster is ok.
    fn wait_until_ok(&self, failure: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .live()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "{failure} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes not killed.
    fn live(&self) -> impl Iterator<Item = &RedisServer> {
        let held: Vec<u16> = self
            .held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        self.nodes.iter().filter(move |n| !held.contains(&n.port))
    }

    /// The port of the primary serving `key`, as a live node sees it.
    pub fn primary_of(&self, key: &str) -> u16 {
        self.serving(key)
            .unwrap_or_else(|| panic!("no primary serves {key}"))
    }

    /// The primary serving `key`, unless it failed and none took over yet.
    fn serving(&self, key: &str) -> Option<u16> {
        RedisCluster::serving_on(self.live().next().expect("a live node"), key)
    }

    /// The primary serving `key` as `node` sees it.
    fn serving_on(node: &RedisServer, key: &str) -> Option<u16> {
        let slot: u16 = node
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap();
        node.cli(&["CLUSTER", "NODES"]).lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let serves = fields.len() > 8
                && fields[2].contains("master")
                && !fields[2].contains("fail")
                && fields[8..].iter().any(|range| {
                    let (start, end) = range.split_once('-').unwrap_or((range, range));
                    match (start.parse::<u16>(), end.parse::<u16>()) {
                        (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                        _ => false,
                    }
                });
            let port = fields.get(1)?.split(['@', ':']).nth(1)?;
            serves.then(|| port.parse().ok()).flatten()
        })
    }

    /// Kills (SIGKILL) the primary serving `key` and holds its ports; its
    /// port.
    pub fn kill_primary_of(&mut self, key: &str) -> u16 {
        let port = self.primary_of(key);
        let node = self.nodes.iter_mut().find(|n| n.port == port).unwrap();
        node.kill_now();
        for port in [port, port + 10_000] {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                self.held.push(listener);
            }
        }
        port
    }

    /// Starts the killed node on `port` again, with its node file: it
    /// rejoins the cluster as a replica of the node that took over. Returns
    /// once it is in sync.
    pub fn restart(&mut self, port: u16) {
        self.held
            .retain(|l| ![port, port + 10_000].contains(&l.local_addr().unwrap().port()));
        let node = RedisCluster::node_on(&self.dir, || port);
        let index = self.nodes.iter().position(|n| n.port == port).unwrap();
        self.nodes[index] = node;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.nodes[index]
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(
                Instant::now() < deadline,
                "the restarted node did not sync as a replica"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_until_ok("the cluster was not ok after a node came back");
    }

    /// Waits until a replica has taken over from the killed primary that
    /// served `key` (`old`) and the cluster is ok again.
    pub fn wait_for_failover(&self, key: &str, old: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.serving(key).is_none_or(|port| port == old) {
            assert!(
                Instant::now() < deadline,
                "no replica took over within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_until_ok("the cluster was not ok after the failover");
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

    /// Kills (SIGKILL) whichever server the sentinels name as primary now,
    /// holds its port, and waits until the other is promoted; the killed
    /// one's port.
    pub fn fail_over(&mut self) -> u16 {
        let port = self.primary_port().expect("the sentinels name a primary");
        let (killed, other) = if port == self.primary.port {
            (&mut self.primary, self.replica.port)
        } else {
            (&mut self.replica, self.primary.port)
        };
        killed.kill_now();
        self.held = TcpListener::bind(("127.0.0.1", port)).ok();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.primary_port() != Some(other) {
            assert!(Instant::now() < deadline, "no failover within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        port
    }

    /// Starts the server killed on `port` again, as a replica of the new
    /// primary (as the sentinels would make it, after a while). Returns
    /// once it is in sync.
    pub fn restart(&mut self, port: u16) {
        self.held = None;
        let primary = self.primary_port().expect("the sentinels name a primary");
        let args = [
            "--port",
            &port.to_string(),
            "--replicaof",
            "127.0.0.1",
            &primary.to_string(),
        ];
        let server = RedisServer::spawn(port, &args).ready();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(
                Instant::now() < deadline,
                "the restarted server did not become a replica in sync"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if port == self.primary.port {
            self.primary = server;
        } else {
            self.replica = server;
        }
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
