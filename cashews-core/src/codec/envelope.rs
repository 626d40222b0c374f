//! Turning typed values into stored bytes and back.

use bytes::Bytes;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Serialize;

use super::compress::{decompress, Compression, Inflate};
use super::sign::{Digest, Signer};
use super::{CodecKind, DECODE_LIMIT};
use crate::error::{Error, Result};
pub use crate::layout::parse_counter;

const MAGIC: u8 = 0xCA;
const VERSION: u8 = 1;
const FLAG_SIGNED: u8 = 1;
/// Bits 1–2 of the flags: the payload's compression (0: none).
const COMPRESSION_SHIFT: u8 = 1;
const COMPRESSION_MASK: u8 = 0b11;
/// Flags this version knows; a value with others is from a later one.
const KNOWN_FLAGS: u8 = FLAG_SIGNED | (COMPRESSION_MASK << COMPRESSION_SHIFT);
const HEADER_LEN: usize = 4;

/// Why a stored value was not returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Miss {
    /// Not written by this library (no envelope, and not an integer counter).
    Foreign,
    /// Our envelope, but another format version or a codec not compiled in.
    UnknownFormat,
    /// A secret is configured but the value carries no signature.
    Unsigned,
    /// The signature does not match (tampered, another key, another digest or secret).
    BadSignature,
    /// A valid envelope whose payload does not decode as the requested type
    /// (for example the struct changed between deploys). Such values are deleted.
    Corrupt,
}

/// The result of decoding stored bytes.
#[derive(Debug)]
pub enum Decoded<T> {
    /// The value.
    Value(T),
    /// The bytes are not a usable value; reads as a cache miss.
    Miss(Miss),
}

/// Encodes values into enveloped (and optionally signed) bytes, and back.
#[derive(Clone, Debug, Default)]
pub struct Serializer {
    codec: CodecKind,
    signer: Option<Signer>,
    /// How payloads of at least `.1` bytes are compressed.
    compression: Option<(Compression, usize)>,
}

impl Serializer {
    /// A serializer writing with `codec`, unsigned.
    pub fn new(codec: CodecKind) -> Serializer {
        Serializer {
            codec,
            signer: None,
            compression: None,
        }
    }

    /// Compresses payloads of at least `min` bytes with `compression` (when
    /// that makes them smaller). Values are read whatever their
    /// compression, so caches with and without it share values.
    pub fn with_compression(mut self, compression: Compression, min: usize) -> Serializer {
        self.compression = Some((compression, min));
        self
    }

    /// How values are compressed, and from what size.
    pub fn compression(&self) -> Option<(Compression, usize)> {
        self.compression
    }

    /// Signs every value with an HMAC keyed by `secret`.
    pub fn with_secret(mut self, secret: &[u8], digest: Digest) -> Serializer {
        self.signer = Some(Signer::new(secret, digest));
        self
    }

    /// The codec values are written with.
    pub fn codec(&self) -> CodecKind {
        self.codec
    }

    /// Whether values are signed.
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// Encodes `value` to be stored under `key` (the key is part of the signature).
    pub fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        #[cfg(feature = "python")]
        if let CodecKind::Cashews(pickler) = self.codec {
            return super::python::encode(
                pickler,
                self.signer.as_ref(),
                self.compression,
                key,
                value,
            );
        }
        let mac_len = self.signer.as_ref().map_or(0, |s| s.digest.mac_len());
        let mut out = Vec::with_capacity(64);
        let flags = if self.signer.is_some() {
            FLAG_SIGNED
        } else {
            0
        };
        out.extend_from_slice(&[MAGIC, VERSION, self.codec.id(), flags]);
        if let Some(signer) = &self.signer {
            out.push(signer.digest.id());
            out.resize(HEADER_LEN + 1 + mac_len, 0);
        }
        let payload_start = out.len();
        self.codec
            .encode(value, &mut out)
            .map_err(|source| Error::Encode {
                key: key.to_owned(),
                source,
            })?;
        if let Some((compression, min)) = self.compression {
            let raw = &out[payload_start..];
            if raw.len() >= min {
                match compression.compress(raw) {
                    Ok(packed) if packed.len() < raw.len() => {
                        out.truncate(payload_start);
                        out.extend_from_slice(&packed);
                        out[3] |= compression.id() << COMPRESSION_SHIFT;
                    }
                    Ok(_) => {} // no smaller: stored raw
                    Err(error) => {
                        tracing::warn!(key, %error, "cannot compress; the value is stored raw")
                    }
                }
            }
        }
        if let Some(signer) = &self.signer {
            let (head, payload) = out.split_at_mut(HEADER_LEN + 1 + mac_len);
            let (header, mac) = head.split_at_mut(HEADER_LEN + 1);
            signer.sign(key, header, payload, mac);
        }
        Ok(Bytes::from(out))
    }

    /// Decodes bytes stored under `key` as a `T`.
    pub fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Decoded<T> {
        #[cfg(feature = "python")]
        if let CodecKind::Cashews(pickler) = self.codec {
            return super::python::decode(pickler, self.signer.as_ref(), key, bytes);
        }
        if bytes.len() < HEADER_LEN || bytes[0] != MAGIC {
            return self.decode_counter(bytes);
        }
        if bytes[1] != VERSION {
            return Decoded::Miss(Miss::UnknownFormat);
        }
        if bytes[3] & !KNOWN_FLAGS != 0 {
            return Decoded::Miss(Miss::UnknownFormat);
        }
        let (codec_id, signed) = (bytes[2], bytes[3] & FLAG_SIGNED != 0);
        let compression = (bytes[3] >> COMPRESSION_SHIFT) & COMPRESSION_MASK;
        let payload = match (&self.signer, signed) {
            (Some(_), false) => return Decoded::Miss(Miss::Unsigned),
            (Some(signer), true) => {
                let mac_end = HEADER_LEN + 1 + signer.digest.mac_len();
                if bytes.len() < mac_end || bytes[HEADER_LEN] != signer.digest.id() {
                    return Decoded::Miss(Miss::BadSignature);
                }
                let (header, rest) = bytes.split_at(HEADER_LEN + 1);
                let (tag, payload) = rest.split_at(signer.digest.mac_len());
                if !signer.verify(key, header, payload, tag) {
                    return Decoded::Miss(Miss::BadSignature);
                }
                payload
            }
            // Without a secret nothing is verified; the signature is skipped.
            (None, true) => {
                let Some(len) = bytes.get(HEADER_LEN).and_then(|id| mac_len_of(*id)) else {
                    return Decoded::Miss(Miss::UnknownFormat);
                };
                match bytes.get(HEADER_LEN + 1 + len..) {
                    Some(payload) => payload,
                    None => return Decoded::Miss(Miss::Corrupt),
                }
            }
            (None, false) => &bytes[HEADER_LEN..],
        };
        let inflated;
        let payload = if compression == 0 {
            payload
        } else {
            match decompress(compression, payload, DECODE_LIMIT) {
                Ok(data) => {
                    inflated = data;
                    &inflated[..]
                }
                Err(Inflate::Unknown) => return Decoded::Miss(Miss::UnknownFormat),
                Err(Inflate::Corrupt) => return Decoded::Miss(Miss::Corrupt),
            }
        };
        match CodecKind::decode_by_id(codec_id, payload) {
            None => Decoded::Miss(Miss::UnknownFormat),
            Some(Ok(value)) => Decoded::Value(value),
            Some(Err(_)) => Decoded::Miss(Miss::Corrupt),
        }
    }

    /// Integers written by `incr` are stored as plain decimal text (the form
    /// Redis' `INCRBY` needs). They carry no signature, so with a secret they
    /// are not accepted by a typed read; read them with `Cache::get_counter`.
    fn decode_counter<T: DeserializeOwned>(&self, bytes: &[u8]) -> Decoded<T> {
        if self.signer.is_some() {
            return Decoded::Miss(Miss::Unsigned);
        }
        let Some(n) = parse_counter(bytes) else {
            return Decoded::Miss(Miss::Foreign);
        };
        let de: serde::de::value::I64Deserializer<serde::de::value::Error> = n.into_deserializer();
        match T::deserialize(de) {
            Ok(value) => Decoded::Value(value),
            Err(_) => Decoded::Miss(Miss::Foreign),
        }
    }
}

fn mac_len_of(digest_id: u8) -> Option<usize> {
    [Digest::Sha256, Digest::Sha512, Digest::Sha1, Digest::Md5]
        .into_iter()
        .find(|d| d.id() == digest_id)
        .map(Digest::mac_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct User {
        id: u64,
        name: String,
    }

    fn user() -> User {
        User {
            id: 7,
            name: "ann".into(),
        }
    }

    fn value<T: std::fmt::Debug>(d: Decoded<T>) -> T {
        match d {
            Decoded::Value(v) => v,
            Decoded::Miss(m) => panic!("miss: {m:?}"),
        }
    }

    fn miss<T: std::fmt::Debug>(d: Decoded<T>) -> Miss {
        match d {
            Decoded::Miss(m) => m,
            Decoded::Value(v) => panic!("unexpected value {v:?}"),
        }
    }

    #[test]
    fn round_trip_unsigned_and_signed() {
        for s in [
            Serializer::default(),
            Serializer::default().with_secret(b"s3cret", Digest::Sha256),
            Serializer::default().with_secret(b"s3cret", Digest::Md5),
            Serializer::default().with_secret(b"s3cret", Digest::Sha512),
            Serializer::default().with_secret(b"s3cret", Digest::Sha1),
        ] {
            let bytes = s.encode("k", &user()).unwrap();
            assert_eq!(bytes[0], MAGIC);
            assert_eq!(value::<User>(s.decode("k", &bytes)), user());
            assert_eq!(
                value::<i64>(s.decode("n", &s.encode("n", &-5i64).unwrap())),
                -5
            );
        }
    }

    #[test]
    fn signatures_bind_key_value_digest_and_secret() {
        let s = Serializer::default().with_secret(b"s3cret", Digest::Sha256);
        let mut bytes = s.encode("k", &user()).unwrap().to_vec();
        assert_eq!(miss(s.decode::<User>("other", &bytes)), Miss::BadSignature);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(miss(s.decode::<User>("k", &bytes)), Miss::BadSignature);
        let md5 = Serializer::default().with_secret(b"s3cret", Digest::Md5);
        let good = s.encode("k", &user()).unwrap();
        assert_eq!(miss(md5.decode::<User>("k", &good)), Miss::BadSignature);
        let other = Serializer::default().with_secret(b"different", Digest::Sha256);
        assert_eq!(miss(other.decode::<User>("k", &good)), Miss::BadSignature);
        let plain = Serializer::default().encode("k", &user()).unwrap();
        assert_eq!(miss(s.decode::<User>("k", &plain)), Miss::Unsigned);
        // Truncated signatures never panic.
        for cut in 0..good.len() {
            let _ = s.decode::<User>("k", &good[..cut]);
            let _ = Serializer::default().decode::<User>("k", &good[..cut]);
        }
    }

    #[test]
    fn counters_and_foreign_bytes() {
        let s = Serializer::default();
        assert_eq!(value::<i64>(s.decode("c", b"-42")), -42);
        assert_eq!(value::<u32>(s.decode("c", b"42")), 42);
        assert_eq!(miss(s.decode::<u32>("c", b"-42")), Miss::Foreign);
        assert_eq!(miss(s.decode::<String>("c", b"hello")), Miss::Foreign);
        assert_eq!(miss(s.decode::<i64>("c", b"")), Miss::Foreign);
        let signed = Serializer::default().with_secret(b"x", Digest::Sha256);
        assert_eq!(miss(signed.decode::<i64>("c", b"42")), Miss::Unsigned);
    }

    #[test]
    fn changed_type_is_corrupt() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct UserV2 {
            id: u64,
            name: String,
            email: String,
        }
        let s = Serializer::default();
        let bytes = s.encode("k", &user()).unwrap();
        assert_eq!(miss(s.decode::<UserV2>("k", &bytes)), Miss::Corrupt);
        let mut future = bytes.to_vec();
        future[1] = 9;
        assert_eq!(miss(s.decode::<User>("k", &future)), Miss::UnknownFormat);
        future[1] = VERSION;
        future[2] = 200;
        assert_eq!(miss(s.decode::<User>("k", &future)), Miss::UnknownFormat);
    }

    #[cfg(feature = "compress")]
    #[test]
    fn compressed_values_are_read_by_every_cache() {
        let long = User {
            id: 1,
            name: "x".repeat(4096),
        };
        for secret in [None, Some(&b"s3cret"[..])] {
            let plain = match secret {
                Some(secret) => Serializer::default().with_secret(secret, Digest::Sha256),
                None => Serializer::default(),
            };
            for compression in [Compression::Gzip, Compression::Zlib] {
                let packing = plain.clone().with_compression(compression, 1024);
                let bytes = packing.encode("k", &long).unwrap();
                assert_eq!(
                    (bytes[3] >> COMPRESSION_SHIFT) & COMPRESSION_MASK,
                    compression.id()
                );
                assert!(bytes.len() < 200, "{}", bytes.len());
                // Read by a cache without compression, and the reverse.
                assert_eq!(value::<User>(plain.decode("k", &bytes)), long);
                let raw = plain.encode("k", &long).unwrap();
                assert_eq!(value::<User>(packing.decode("k", &raw)), long);
                // Small values stay raw.
                let small = packing.encode("k", &user()).unwrap();
                assert_eq!(small[3] >> COMPRESSION_SHIFT, 0);
                // A flipped compression flag is caught by the signature.
                if secret.is_some() {
                    let mut forged = bytes.to_vec();
                    forged[3] &= !(COMPRESSION_MASK << COMPRESSION_SHIFT);
                    assert_eq!(miss(plain.decode::<User>("k", &forged)), Miss::BadSignature);
                }
            }
        }
        // Broken compressed data is a miss; unknown flags are a later format.
        let packing = Serializer::default().with_compression(Compression::Gzip, 0);
        let mut bytes = packing.encode("k", &long).unwrap().to_vec();
        let half = bytes.len() / 2;
        bytes.truncate(half);
        assert_eq!(miss(packing.decode::<User>("k", &bytes)), Miss::Corrupt);
        let mut later = packing.encode("k", &long).unwrap().to_vec();
        later[3] |= 0x80;
        assert_eq!(
            miss(packing.decode::<User>("k", &later)),
            Miss::UnknownFormat
        );
    }

    #[test]
    fn hostile_length_prefix_does_not_allocate() {
        // A Vec<u64> whose bincode varint length claims 2^60 elements.
        let mut bytes = vec![MAGIC, VERSION, 1, 0, 253];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        let s = Serializer::default();
        assert_eq!(miss(s.decode::<Vec<u64>>("k", &bytes)), Miss::Corrupt);
        assert_eq!(miss(s.decode::<String>("k", &bytes)), Miss::Corrupt);
        assert_eq!(
            miss(s.decode::<std::collections::HashMap<String, String>>("k", &bytes)),
            Miss::Corrupt
        );
    }
}
