//! memcached's meta protocol (`mg`, `ms`, `md`, `mn`): keys as the server
//! accepts them, requests, and replies read from untrusted bytes.
//!
//! A reply that is not what the protocol allows (a line too long, a value
//! larger than announced or than [`MAX_VALUE`], an unknown code) is a
//! protocol error: the connection is dropped, never reused.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

/// The longest key memcached accepts.
pub const MAX_KEY: usize = 250;

/// The longest reply line accepted.
const MAX_LINE: usize = 8 * 1024;

/// The largest value accepted in a reply (memcached's item limit is 1 MiB
/// by default and at most 1 GiB).
pub const MAX_VALUE: usize = 1 << 30;

/// A cache key as sent to the server. A key memcached accepts as is (at
/// most 250 bytes, no space or control character) is sent unchanged; any
/// other is replaced by a 0 byte and its SHA-256, sent in base64 with the
/// `b` flag. A replaced key contains a control byte, which no key sent
/// unchanged can, so the two never collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireKey<'a> {
    /// Sent as is.
    Plain(&'a str),
    /// The base64 text of the digest.
    Hashed(String),
}

impl<'a> WireKey<'a> {
    /// The wire form of `key`.
    pub fn new(key: &'a str) -> WireKey<'a> {
        let valid =
            !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b > b' ' && b != 0x7f);
        if valid {
            return WireKey::Plain(key);
        }
        let mut raw = Vec::with_capacity(33);
        raw.push(0);
        raw.extend_from_slice(&Sha256::digest(key.as_bytes()));
        WireKey::Hashed(base64(&raw))
    }

    /// The bytes that route the key to a server.
    pub fn routing(&self) -> &[u8] {
        match self {
            WireKey::Plain(key) => key.as_bytes(),
            WireKey::Hashed(text) => text.as_bytes(),
        }
    }

    /// Writes the key and ends the line after its flags, adding the `b`
    /// flag (a base64 key) when hashed.
    fn write(&self, out: &mut Vec<u8>, flags: &[u8]) {
        match self {
            WireKey::Plain(key) => out.extend_from_slice(key.as_bytes()),
            WireKey::Hashed(text) => out.extend_from_slice(text.as_bytes()),
        }
        out.extend_from_slice(flags);
        if let WireKey::Hashed(_) = self {
            out.extend_from_slice(b" b");
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How an `ms` may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Always.
    Set,
    /// Only if the key is absent (`ME`).
    Add,
    /// Only if the item still has this CAS value (`C<cas>`).
    Cas(u64),
}

/// Appends requests to a buffer sent in one write (a pipeline: the server
/// answers each in order).
#[derive(Debug, Default)]
pub struct Requests {
    pub(crate) buf: Vec<u8>,
    pub(crate) count: usize,
}

impl Requests {
    /// `mg`: the value and its CAS value.
    pub fn get(&mut self, key: &WireKey<'_>) -> &mut Self {
        self.buf.extend_from_slice(b"mg ");
        key.write(&mut self.buf, b" v c");
        self.count += 1;
        self
    }

    /// `ms` of the concatenated `parts` with memcached's expiry `exptime`
    /// (0: none; seconds, or a unix time above 30 days).
    pub fn set(
        &mut self,
        key: &WireKey<'_>,
        parts: &[&[u8]],
        exptime: u64,
        mode: Mode,
    ) -> &mut Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let flags = match mode {
            Mode::Set => format!(" {len} T{exptime}"),
            Mode::Add => format!(" {len} T{exptime} ME"),
            Mode::Cas(cas) => format!(" {len} T{exptime} C{cas}"),
        };
        self.buf.extend_from_slice(b"ms ");
        key.write(&mut self.buf, flags.as_bytes());
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.buf.extend_from_slice(b"\r\n");
        self.count += 1;
        self
    }

    /// `md`, only if the item still has `cas` when given.
    pub fn delete(&mut self, key: &WireKey<'_>, cas: Option<u64>) -> &mut Self {
        let flags = cas.map(|cas| format!(" C{cas}")).unwrap_or_default();
        self.buf.extend_from_slice(b"md ");
        key.write(&mut self.buf, flags.as_bytes());
        self.count += 1;
        self
    }

    /// A command line with no key (`mn`, `flush_all`, `version`).
    pub fn line(&mut self, line: &str) -> &mut Self {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.count += 1;
        self
    }
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `VA`: a value and its CAS value.
    Value {
        /// The stored bytes.
        data: Bytes,
        /// The item's CAS value (`c` flag), 0 if not returned.
        cas: u64,
    },
    /// `HD`: done (or, for `mg` without `v`, found).
    Done,
    /// `EN`: a `mg` miss.
    Miss,
    /// `NF`: not found (`md`, or `ms` with a CAS of a gone item).
    NotFound,
    /// `NS`: not stored (`ms ME` of a present key).
    NotStored,
    /// `EX`: the CAS value did not match.
    Exists,
    /// `MN`, `OK`, `VERSION ...`: no data.
    Ok,
}

/// A failed read of a reply.
#[derive(Debug)]
pub enum ReplyError {
    /// The connection failed or closed.
    Io(std::io::Error),
    /// The server sent something the protocol does not allow.
    Protocol(String),
    /// The server refused the request (`CLIENT_ERROR`, `SERVER_ERROR`,
    /// `ERROR`): its message.
    Server(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Io(e) => write!(f, "connection failed: {e}"),
            ReplyError::Protocol(m) => write!(f, "malformed reply: {m}"),
            ReplyError::Server(m) => write!(f, "server refused the request: {m}"),
        }
    }
}

impl std::error::Error for ReplyError {}

impl From<std::io::Error> for ReplyError {
    fn from(e: std::io::Error) -> Self {
        ReplyError::Io(e)
    }
}

/// Reads one reply from `reader`.
pub async fn read_reply<R>(reader: &mut R, line: &mut Vec<u8>) -> Result<Reply, ReplyError>
where
    R: AsyncBufReadExt + AsyncReadExt + Unpin,
{
    line.clear();
    read_line(reader, line).await?;
    let text = std::str::from_utf8(line)
        .map_err(|_| ReplyError::Protocol("a reply line is not text".into()))?;
    let mut words = text.split(' ');
    let code = words.next().unwrap_or("");
    let reply = match code {
        "VA" => {
            let size: usize = words
                .next()
                .and_then(|s| s.parse().ok())
                .filter(|s| *s <= MAX_VALUE)
                .ok_or_else(|| ReplyError::Protocol(format!("bad value size in {text:?}")))?;
            let mut cas = 0;
            for flag in words {
                if let Some(value) = flag.strip_prefix('c') {
                    cas = value
                        .parse()
                        .map_err(|_| ReplyError::Protocol(format!("bad cas in {text:?}")))?;
                }
            }
            // Grown as bytes arrive: an announced size is not trusted with
            // an allocation up front.
            let mut data = Vec::with_capacity(size.min(64 * 1024) + 2);
            (&mut *reader)
                .take(size as u64 + 2)
                .read_to_end(&mut data)
                .await?;
            if data.len() != size + 2 {
                return Err(ReplyError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if &data[size..] != b"\r\n" {
                return Err(ReplyError::Protocol(
                    "a value is longer than its announced size".into(),
                ));
            }
            data.truncate(size);
            Reply::Value {
                data: Bytes::from(data),
                cas,
            }
        }
        "HD" => Reply::Done,
        "EN" => Reply::Miss,
        "NF" => Reply::NotFound,
        "NS" => Reply::NotStored,
        "EX" => Reply::Exists,
        "MN" | "OK" | "VERSION" => Reply::Ok,
        "CLIENT_ERROR" | "SERVER_ERROR" | "ERROR" => {
            return Err(ReplyError::Server(text.to_owned()))
        }
        _ => {
            let shown: String = text.chars().take(64).collect();
            return Err(ReplyError::Protocol(format!("unknown reply {shown:?}")));
        }
    };
    Ok(reply)
}

/// Reads a line without its `\r\n`, at most [`MAX_LINE`] bytes.
async fn read_line<R>(reader: &mut R, line: &mut Vec<u8>) -> Result<(), ReplyError>
where
    R: AsyncBufReadExt + Unpin,
{
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(ReplyError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let (taken, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if line.len() > MAX_LINE + 2 {
            return Err(ReplyError::Protocol("a reply line is too long".into()));
        }
        if done {
            if line.ends_with(b"\r\n") {
                line.truncate(line.len() - 2);
                return Ok(());
            }
            return Err(ReplyError::Protocol("a reply line ends without \\r".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_memcached_accepts_are_sent_unchanged() {
        assert_eq!(WireKey::new("user:1"), WireKey::Plain("user:1"));
        let long = "k".repeat(250);
        assert_eq!(WireKey::new(&long), WireKey::Plain(&long));
    }

    #[test]
    fn other_keys_are_hashed_and_flagged_base64() {
        for key in [
            "k".repeat(251),
            "a b".into(),
            "a\nb".into(),
            "é\u{7f}".into(),
            String::new(),
        ] {
            let WireKey::Hashed(text) = WireKey::new(&key) else {
                panic!("{key:?} is not hashed")
            };
            assert_eq!(text.len(), 44, "33 bytes in base64");
            assert!(text.starts_with('A'), "the 0 byte first");
        }
        assert_ne!(WireKey::new("a b"), WireKey::new("a  b"));
        let mut requests = Requests::default();
        requests.set(&WireKey::new("a b"), &[b"v"], 0, Mode::Add);
        let line = String::from_utf8(requests.buf).unwrap();
        assert!(line.ends_with(" 1 T0 ME b\r\nv\r\n"), "{line:?}");
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    fn parse(bytes: &[u8]) -> Result<Reply, ReplyError> {
        let mut reader = bytes;
        let mut line = Vec::new();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read_reply(&mut reader, &mut line))
    }

    #[test]
    fn replies_parse() {
        assert_eq!(
            parse(b"VA 3 c42\r\nabc\r\n").unwrap(),
            Reply::Value {
                data: Bytes::from_static(b"abc"),
                cas: 42
            }
        );
        assert_eq!(parse(b"EN\r\n").unwrap(), Reply::Miss);
        assert_eq!(parse(b"HD c1\r\n").unwrap(), Reply::Done);
        assert_eq!(parse(b"NS\r\n").unwrap(), Reply::NotStored);
        assert!(matches!(
            parse(b"SERVER_ERROR object too large for cache\r\n"),
            Err(ReplyError::Server(m)) if m.contains("too large")
        ));
    }

    #[test]
    fn hostile_replies_are_errors_not_panics() {
        for bytes in [
            &b"VA 99999999999999999999 c1\r\n"[..],
            b"VA 3 c1\r\nabcdef\r\n",
            b"VA 3 cx\r\nabc\r\n",
            b"VA 5\r\nab",
            b"WAT\r\n",
            b"HD",
            b"HD\n",
            b"\xff\xfe\r\n",
        ] {
            assert!(parse(bytes).is_err(), "{bytes:?}");
        }
        let long = vec![b'a'; MAX_LINE + 10];
        assert!(matches!(parse(&long), Err(ReplyError::Protocol(_))));
    }
}
