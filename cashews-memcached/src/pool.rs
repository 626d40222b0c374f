//! The servers and their connections: a key's server by rendezvous
//! hashing, and a pool of idle connections per server.
//!
//! A request takes an idle connection (or makes one), writes its pipeline
//! in one write and reads one reply per request. The connection goes back
//! to the pool only after every reply was read: a call that fails, times out
//! or is cancelled drops its connection, so no later call reads its replies.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::protocol::{read_reply, Reply, ReplyError, Requests};

/// Idle connections kept per server.
const MAX_IDLE: usize = 32;

/// One memcached server.
#[derive(Debug)]
pub struct Server {
    /// `host:port`.
    pub address: String,
    /// Stable routing weight seed (hash of the address).
    seed: u64,
    idle: Mutex<Vec<Connection>>,
}

#[derive(Debug)]
struct Connection {
    stream: BufReader<TcpStream>,
    line: Vec<u8>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No connection could be made (refused, unreachable, too slow).
    Connect(std::io::Error),
    /// The request or its replies failed.
    Reply(ReplyError),
}

impl Server {
    /// A server at `address` (`host:port`).
    pub fn new(address: String) -> Server {
        Server {
            seed: fnv1a(address.as_bytes(), FNV_OFFSET),
            address,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `requests` and reads one reply each.
    pub async fn call(
        &self,
        requests: &Requests,
        connect_timeout: Duration,
    ) -> Result<Vec<Reply>, CallError> {
        let pooled = self.idle.lock().pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect(connect_timeout).await?,
        };
        let replies = connection
            .exchange(requests)
            .await
            .map_err(CallError::Reply)?;
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
        Ok(replies)
    }

    /// Drops every idle connection (after the server failed, they are
    /// likely dead too).
    pub fn forget_idle(&self) {
        self.idle.lock().clear();
    }

    async fn connect(&self, timeout: Duration) -> Result<Connection, CallError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(&self.address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(CallError::Connect(e)),
            Err(_) => {
                return Err(CallError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within connect_timeout ({timeout:?})"),
                )))
            }
        };
        stream.set_nodelay(true).map_err(CallError::Connect)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            line: Vec::new(),
        })
    }

    /// The rendezvous score of `key` on this server: a key goes to the
    /// server with the highest score, so adding or removing a server moves
    /// only the keys that go to it or came from it.
    pub fn score(&self, key: &[u8]) -> u64 {
        mix(fnv1a(key, self.seed))
    }
}

impl Connection {
    async fn exchange(&mut self, requests: &Requests) -> Result<Vec<Reply>, ReplyError> {
        self.stream.get_mut().write_all(&requests.buf).await?;
        let mut replies = Vec::with_capacity(requests.count);
        for _ in 0..requests.count {
            replies.push(read_reply(&mut self.stream, &mut self.line).await?);
        }
        Ok(replies)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a: stable across processes, versions and platforms (routing must
/// agree between every client of the servers).
fn fnv1a(data: &[u8], seed: u64) -> u64 {
    data.iter().fold(seed, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finalizer: spreads FNV's weak low bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The index of `key`'s server among `servers` (rendezvous hashing, see
/// [`Server::score`]).
pub fn route<S: AsRef<Server>>(servers: &[S], key: &[u8]) -> usize {
    if servers.len() == 1 {
        return 0;
    }
    servers
        .iter()
        .enumerate()
        .max_by_key(|(_, server)| server.as_ref().score(key))
        .map_or(0, |(index, _)| index)
}

impl AsRef<Server> for Server {
    fn as_ref(&self) -> &Server {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(addresses: &[&str]) -> Vec<Server> {
        addresses
            .iter()
            .map(|a| Server::new((*a).to_owned()))
            .collect()
    }

    #[test]
    fn routing_is_stable_and_spread() {
        let three = servers(&["a:1", "b:1", "c:1"]);
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            counts[route(&three, format!("key:{i}").as_bytes())] += 1;
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
        // Fixed values: every client, on any version, routes alike.
        assert_eq!(
            route(&three, b"user:1"),
            route(&servers(&["a:1", "b:1", "c:1"]), b"user:1")
        );
        assert_eq!(fnv1a(b"a", FNV_OFFSET), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let three = servers(&["a:1", "b:1", "c:1"]);
        let two = servers(&["a:1", "c:1"]);
        for i in 0..1000 {
            let key = format!("key:{i}");
            let before = &three[route(&three, key.as_bytes())].address;
            let after = &two[route(&two, key.as_bytes())].address;
            if before != "b:1" {
                assert_eq!(before, after, "{key}");
            }
        }
    }
}
