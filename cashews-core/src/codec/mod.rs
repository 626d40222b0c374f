//! Value encoding: the [`Codec`] trait, the envelope every stored value
//! carries, and HMAC signing.
//!
//! A stored value is `envelope header | [signature] | payload`:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | magic `0xCA` (never an ASCII digit, so counters and values never mix) |
//! | 1 | format version (1) |
//! | 2 | codec id (1 = bincode, 2 = JSON) |
//! | 3 | flags (bit 0: signed) |
//! | 4.. | if signed: digest id, then the MAC (16–64 bytes) |
//!
//! The codec id tells which codec wrote a value, so a cache configured for
//! JSON still reads bincode values (and the reverse). An unknown version or
//! codec reads as a miss, never as garbage.

mod envelope;
mod sign;

pub use envelope::{parse_counter, Decoded, Miss, Serializer};
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

/// bincode 2 (serde mode), with [`DECODE_LIMIT`]. The default codec: compact
/// and fast.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bincode;

type BincodeConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
>;

const BINCODE: BincodeConfig = bincode::config::standard().with_limit::<DECODE_LIMIT>();

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

/// The codec chosen at setup (`codec=bincode|json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecKind {
    /// [`Bincode`].
    #[default]
    Bincode,
    /// [`Json`] (feature `json`).
    #[cfg(feature = "json")]
    Json,
}

impl CodecKind {
    /// The codecs compiled in, by name.
    pub fn names() -> &'static [&'static str] {
        &[
            Bincode::NAME,
            #[cfg(feature = "json")]
            Json::NAME,
        ]
    }

    /// Looks a codec up by its setup name.
    pub fn from_name(name: &str) -> Option<CodecKind> {
        match name {
            "bincode" => Some(CodecKind::Bincode),
            #[cfg(feature = "json")]
            "json" => Some(CodecKind::Json),
            _ => None,
        }
    }

    pub(crate) fn id(self) -> u8 {
        match self {
            CodecKind::Bincode => Bincode::ID,
            #[cfg(feature = "json")]
            CodecKind::Json => Json::ID,
        }
    }

    pub(crate) fn encode<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        match self {
            CodecKind::Bincode => Bincode::encode(value, out),
            #[cfg(feature = "json")]
            CodecKind::Json => Json::encode(value, out),
        }
    }

    /// Decodes with the codec named by an envelope's id; `None` if that codec
    /// is not compiled in.
    pub(crate) fn decode_by_id<T: DeserializeOwned>(
        id: u8,
        bytes: &[u8],
    ) -> Option<Result<T, BoxError>> {
        match id {
            Bincode::ID => Some(Bincode::decode(bytes)),
            #[cfg(feature = "json")]
            Json::ID => Some(Json::decode(bytes)),
            _ => None,
        }
    }
}
