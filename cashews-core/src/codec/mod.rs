//! Value encoding: the [`Codec`] trait, the envelope every stored value
//! carries, and HMAC signing.
//!
//! A stored value is `envelope header | [signature] | payload`:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | magic `0xCA` (never an ASCII digit, so counters and values never mix) |
//! | 1 | format version (1) |
//! | 2 | codec id (1 = bincode, 2 = JSON, 3 = postcard) |
//! | 3 | flags (bit 0: signed; bits 1–2: compression, 0 none, 1 gzip, 2 zlib, 3 zstd) |
//! | 4.. | if signed: digest id, then the MAC (16–64 bytes) |
//!
//! The codec id tells which codec wrote a value, so a cache configured for
//! JSON still reads bincode values (and the reverse). An unknown version or
//! codec reads as a miss, never as garbage.

mod compress;
mod envelope;
#[cfg(feature = "python")]
mod python;
pub(crate) mod shape;
mod sign;

pub use compress::{Compression, DEFAULT_COMPRESS_MIN};
pub use envelope::{parse_counter, Decoded, Miss, Serializer};
#[cfg(feature = "python")]
pub use python::Pickler;
pub use sign::Digest;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::BoxError;

/// Limit on the bytes a decoded value may claim, so a hostile length prefix
/// cannot make the decoder allocate gigabytes.
pub const DECODE_LIMIT: usize = 256 * 1024 * 1024;

/// A serde data format used to store values.
pub trait Codec {
    /// The id written in the envelope; unique per codec.
    const ID: u8;
    /// The name used in setup URLs (`codec=...`).
    const NAME: &'static str;
    /// Appends the encoding of `value` to `out`.
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), BoxError>;
    /// Decodes a whole value from `bytes`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError>;
}

/// bincode 2 (serde mode), with [`DECODE_LIMIT`] (feature `bincode`, on by
/// default). The default codec when compiled in: compact and fast.
///
/// bincode 2 is flagged unmaintained by RustSec; a build that must pass
/// `cargo deny` without it turns default features off and stores with
/// [`Postcard`] (which reads nothing bincode wrote: keep the feature while
/// such values live).
#[cfg(feature = "bincode")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Bincode;

#[cfg(feature = "bincode")]
type BincodeConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
>;

#[cfg(feature = "bincode")]
const BINCODE: BincodeConfig = bincode::config::standard().with_limit::<DECODE_LIMIT>();

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    const ID: u8 = 1;
    const NAME: &'static str = "bincode";

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        bincode::serde::encode_into_std_write(value, out, BINCODE)?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, BINCODE)?;
        if read != bytes.len() {
            return Err(format!("{} trailing bytes after the value", bytes.len() - read).into());
        }
        Ok(value)
    }
}

/// postcard (serde, varint-compact, maintained): the second binary codec,
/// and the default when bincode is not compiled in. Lengths cannot make it
/// allocate more than the input allows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl Codec for Postcard {
    const ID: u8 = 3;
    const NAME: &'static str = "postcard";

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        let buffer = std::mem::take(out);
        *out = postcard::to_extend(value, buffer)?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
        let (value, rest) = postcard::take_from_bytes(bytes)?;
        if !rest.is_empty() {
            return Err(format!("{} trailing bytes after the value", rest.len()).into());
        }
        Ok(value)
    }
}

/// JSON (serde_json): readable in `redis-cli`, slower and larger.
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    const ID: u8 = 2;
    const NAME: &'static str = "json";

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        serde_json::to_writer(out, value)?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// The codec chosen at setup (`codec=bincode|postcard|json|cashews`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecKind {
    /// [`Bincode`] (feature `bincode`, the default).
    #[cfg(feature = "bincode")]
    Bincode,
    /// [`Postcard`].
    Postcard,
    /// [`Json`] (feature `json`).
    #[cfg(feature = "json")]
    Json,
    /// Python cashews' own stored form, without this library's envelope
    /// (feature `python`): entries are shared with Python cashews services.
    /// See the README's "Sharing a cache with Python cashews".
    #[cfg(feature = "python")]
    Cashews(Pickler),
}

/// bincode when compiled in, else postcard.
impl Default for CodecKind {
    fn default() -> Self {
        #[cfg(feature = "bincode")]
        return CodecKind::Bincode;
        #[cfg(not(feature = "bincode"))]
        return CodecKind::Postcard;
    }
}

impl CodecKind {
    /// The codecs compiled in, by name.
    pub fn names() -> &'static [&'static str] {
        &[
            #[cfg(feature = "bincode")]
            Bincode::NAME,
            Postcard::NAME,
            #[cfg(feature = "json")]
            Json::NAME,
            #[cfg(feature = "python")]
            "cashews",
        ]
    }

    /// Looks a codec up by its setup name.
    pub fn from_name(name: &str) -> Option<CodecKind> {
        match name {
            #[cfg(feature = "bincode")]
            "bincode" => Some(CodecKind::Bincode),
            "postcard" => Some(CodecKind::Postcard),
            #[cfg(feature = "json")]
            "json" => Some(CodecKind::Json),
            #[cfg(feature = "python")]
            "cashews" => Some(CodecKind::Cashews(Pickler::Pickle)),
            _ => None,
        }
    }

    /// The id written in the envelope (none for [`CodecKind::Cashews`],
    /// which writes no envelope).
    pub(crate) fn id(self) -> u8 {
        match self {
            #[cfg(feature = "bincode")]
            CodecKind::Bincode => Bincode::ID,
            CodecKind::Postcard => Postcard::ID,
            #[cfg(feature = "json")]
            CodecKind::Json => Json::ID,
            #[cfg(feature = "python")]
            CodecKind::Cashews(_) => 0,
        }
    }

    pub(crate) fn encode<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        match self {
            #[cfg(feature = "bincode")]
            CodecKind::Bincode => Bincode::encode(value, out),
            CodecKind::Postcard => Postcard::encode(value, out),
            #[cfg(feature = "json")]
            CodecKind::Json => Json::encode(value, out),
            #[cfg(feature = "python")]
            CodecKind::Cashews(_) => Err("the cashews form has no envelope".into()),
        }
    }

    /// Decodes with the codec named by an envelope's id; `None` if that codec
    /// is not compiled in.
    pub(crate) fn decode_by_id<T: DeserializeOwned>(
        id: u8,
        bytes: &[u8],
    ) -> Option<Result<T, BoxError>> {
        match id {
            #[cfg(feature = "bincode")]
            Bincode::ID => Some(Bincode::decode(bytes)),
            Postcard::ID => Some(Postcard::decode(bytes)),
            #[cfg(feature = "json")]
            Json::ID => Some(Json::decode(bytes)),
            _ => None,
        }
    }
}
