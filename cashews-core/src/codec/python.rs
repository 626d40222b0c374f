//! Python cashews' stored form (`codec=cashews`, feature `python`): values
//! are written and read as cashews' serializer writes and reads them, so a
//! Rust service and a Python cashews service share one cache.
//!
//! A stored value is, as cashews lays it out:
//! - a non-negative integer: its decimal text, never compressed or signed
//!   (a negative one is pickled: cashews reads only digits back as an int);
//! - otherwise a payload — `bytes:` and the raw bytes for a bytes value,
//!   else the value pickled (protocol 3) or, with `pickle_type=json`, as JSON
//!   — compressed with gzip or zlib when configured, and with a secret
//!   prefixed `{digestmod}:{hex HMAC(secret, key + payload)}_`.
//!
//! Reading is stricter than cashews where cashews is unsafe: the digest is
//! the configured one (a value naming another is a miss, never verified
//! with the algorithm it names), the comparison is constant-time, and a
//! pickle is first checked to hold plain data only (no classes, no code, no
//! shared containers, bounded depth and expansion) — anything else is a
//! miss, never an error.

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Serialize;

use super::compress::{decompress, Compression};
use super::envelope::{Decoded, Miss};
use super::shape::{shape, Shape};
use super::sign::Signer;
use super::DECODE_LIMIT;
use crate::error::{BoxError, Error, Result};

/// How values are pickled (cashews' `pickle_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pickler {
    /// Python's pickle (cashews' default, `pickle_type=default`): plain data
    /// only — None, bool, int, float, str, bytes, lists, tuples, sets and
    /// dicts; a struct is a dict of its fields.
    Pickle,
    /// JSON (`pickle_type=json`, feature `json`).
    #[cfg(feature = "json")]
    Json,
}

impl Pickler {
    /// Accepted `pickle_type` names.
    pub const NAMES: &'static [&'static str] = &["default", "json"];

    /// Looks a pickler up by its cashews name; `Err` names a cargo feature
    /// the pickler needs.
    pub fn from_name(name: &str) -> Option<std::result::Result<Pickler, &'static str>> {
        match name {
            "default" | "pickle" => Some(Ok(Pickler::Pickle)),
            #[cfg(feature = "json")]
            "json" => Some(Ok(Pickler::Json)),
            #[cfg(not(feature = "json"))]
            "json" => Some(Err("json")),
            _ => None,
        }
    }

    fn dumps<T: Serialize + ?Sized>(self, value: &T) -> std::result::Result<Vec<u8>, BoxError> {
        match self {
            Pickler::Pickle => Ok(serde_pickle::to_vec(
                &value,
                serde_pickle::SerOptions::new(),
            )?),
            #[cfg(feature = "json")]
            Pickler::Json => Ok(serde_json::to_vec(value)?),
        }
    }

    fn loads<T: DeserializeOwned>(self, payload: &[u8]) -> Option<T> {
        match self {
            Pickler::Pickle => {
                if !plain_pickle(payload) {
                    return None;
                }
                serde_pickle::from_slice(payload, serde_pickle::DeOptions::new()).ok()
            }
            #[cfg(feature = "json")]
            Pickler::Json => serde_json::from_slice(payload).ok(),
        }
    }
}

const BYTES_TAG: &[u8] = b"bytes:";

/// Encodes `value`, stored at `key`, as cashews does.
pub(crate) fn encode<T: Serialize + ?Sized>(
    pickler: Pickler,
    signer: Option<&Signer>,
    compression: Option<(Compression, usize)>,
    key: &str,
    value: &T,
) -> Result<Bytes> {
    let mut payload = match shape(value, true) {
        Shape::Int(n) if n >= 0 => return Ok(Bytes::from(n.to_string())),
        Shape::UInt(n) => return Ok(Bytes::from(n.to_string())),
        Shape::Bytes(raw) => [BYTES_TAG, &raw].concat(),
        _ => pickler.dumps(value).map_err(|source| Error::Encode {
            key: key.to_owned(),
            source,
        })?,
    };
    if let Some((compression, min)) = compression {
        if payload.len() >= min {
            match compression.compress(&payload) {
                Ok(packed) if packed.len() < payload.len() => payload = packed,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(key, %error, "cannot compress; the value is stored raw")
                }
            }
        }
    }
    let Some(signer) = signer else {
        return Ok(Bytes::from(payload));
    };
    let signature = signer.sign_cashews(key, &payload);
    let name = signer.digest.name();
    let mut out = Vec::with_capacity(name.len() + signature.len() + 2 + payload.len());
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    out.extend_from_slice(signature.as_bytes());
    out.push(b'_');
    out.extend_from_slice(&payload);
    Ok(Bytes::from(out))
}

/// Decodes what cashews (or [`encode`]) stored at `key`.
pub(crate) fn decode<T: DeserializeOwned>(
    pickler: Pickler,
    signer: Option<&Signer>,
    key: &str,
    bytes: &[u8],
) -> Decoded<T> {
    // An integer is stored as its digits, unsigned, by cashews (which reads
    // digits back as an int before it checks any signature). A negative one
    // written by cashews is read too (cashews itself reads it as a miss).
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        let Some(n) = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i128>().ok())
        else {
            return Decoded::Miss(Miss::Foreign);
        };
        return match T::deserialize(Plain::Int(n)) {
            Ok(value) => Decoded::Value(value),
            Err(_) => Decoded::Miss(Miss::Foreign),
        };
    }
    let payload = match signer {
        None => bytes,
        Some(signer) => {
            let Some(split) = bytes.iter().position(|b| *b == b'_') else {
                return Decoded::Miss(Miss::Unsigned);
            };
            let (signature, payload) = (&bytes[..split], &bytes[split + 1..]);
            // The digest is the configured one: a value naming another is
            // refused, not checked with the algorithm it names.
            let hex = match signature.iter().position(|b| *b == b':') {
                Some(colon) if &signature[..colon] != signer.digest.name().as_bytes() => {
                    return Decoded::Miss(Miss::BadSignature)
                }
                Some(colon) => &signature[colon + 1..],
                None => signature, // cashews' older form, without the digest's name
            };
            if !signer.verify_cashews(key, payload, hex) {
                return Decoded::Miss(Miss::BadSignature);
            }
            payload
        }
    };
    // cashews decompresses when configured to and keeps the payload when it
    // is not compressed; a payload is recognised by its magic instead (a
    // pickle, JSON or `bytes:` never starts like gzip or zlib), so values
    // are read whatever the reader's compression setting.
    let inflated;
    let payload = match compression_of(payload).map(|id| decompress(id, payload, DECODE_LIMIT)) {
        Some(Ok(data)) => {
            inflated = data;
            &inflated[..]
        }
        _ => payload,
    };
    if let Some(value) = pickler.loads(payload) {
        return Decoded::Value(value);
    }
    if let Some(raw) = payload.strip_prefix(BYTES_TAG) {
        if let Ok(value) = T::deserialize(Plain::Bytes(raw)) {
            return Decoded::Value(value);
        }
    }
    // Another type, a Python object, or bytes that are no value: another
    // service's entry, left in place.
    Decoded::Miss(Miss::Foreign)
}

/// The compression a payload starts with: gzip's magic, or a zlib header
/// (deflate, with its check bits right).
fn compression_of(payload: &[u8]) -> Option<u8> {
    match payload {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip.id()),
        [first, second, ..]
            if first & 0x0f == 8 && (u16::from(*first) << 8 | u16::from(*second)) % 31 == 0 =>
        {
            Some(Compression::Zlib.id())
        }
        _ => None,
    }
}

// ---- an integer or bytes read back into any type ----------------------------

/// A stored integer or bytes value, deserialized into the caller's type
/// (through `Option` and newtypes, as the value was written).
enum Plain<'a> {
    Int(i128),
    Bytes(&'a [u8]),
}

impl<'de> Deserializer<'de> for Plain<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        match self {
            Plain::Int(n) => match (i64::try_from(n), u64::try_from(n)) {
                (Ok(n), _) => visitor.visit_i64(n),
                (_, Ok(n)) => visitor.visit_u64(n),
                _ => visitor.visit_i128(n),
            },
            Plain::Bytes(raw) => visitor.visit_bytes(raw),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

// ---- what a pickle may hold -------------------------------------------------

/// Deepest nesting of containers a pickle may build.
const MAX_DEPTH: usize = 128;
/// Most bytes the memo's strings may be repeated into (each reference to a
/// memoized object is a copy of it once decoded).
const MEMO_BUDGET: usize = 64 << 20;
/// Longest integer a pickle may hold, in bytes (u128 needs 17).
const MAX_LONG: usize = 32;

/// Whether `data` is a pickle of plain data that decodes within bounds: only
/// opcodes that build None, bools, numbers, strings, bytes, lists, tuples,
/// sets and dicts (no globals, no object construction, no `DUP`), nesting at
/// most [`MAX_DEPTH`] deep, memo references only to strings, bytes and
/// numbers, and at most [`MEMO_BUDGET`] bytes copied through them. Python's
/// `pickle.dumps` of plain data passes, unless one container object appears
/// twice in it.
fn plain_pickle(data: &[u8]) -> bool {
    scan(data).is_some()
}

/// One object on the simulated stack: how deep its containers nest, and its
/// size if it is a scalar (memo references copy it).
#[derive(Clone, Copy)]
enum Item {
    Mark,
    Scalar(usize),
    Container(usize),
}

impl Item {
    fn depth(self) -> usize {
        match self {
            Item::Container(depth) => depth,
            _ => 0,
        }
    }
}

fn scan(data: &[u8]) -> Option<()> {
    let mut at = 0usize;
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut copied = 0usize;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = data.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(bytes)
    };
    let le = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |n, b| n << 8 | u64::from(*b));
    let line = |at: &mut usize| -> Option<usize> {
        let len = data.get(*at..)?.iter().position(|b| *b == b'\n')?;
        *at += len + 1;
        Some(len)
    };
    // The memo index of PUT/GET (text), BINPUT/BINGET (1 byte) and
    // LONG_BINPUT/LONG_BINGET (4 bytes).
    let memo_index = |at: &mut usize, op: u8| -> Option<u64> {
        match op {
            b'p' | b'g' => {
                let start = *at;
                let len = line(at)?;
                std::str::from_utf8(&data[start..start + len])
                    .ok()?
                    .parse()
                    .ok()
            }
            b'q' | b'h' => Some(le(take(at, 1)?)),
            _ => Some(le(take(at, 4)?)),
        }
    };
    // Builds a container of the items above the last mark.
    let collect = |stack: &mut Vec<Item>| -> Option<usize> {
        let mark = stack.iter().rposition(|item| matches!(item, Item::Mark))?;
        let depth = stack[mark + 1..]
            .iter()
            .map(|i| i.depth())
            .max()
            .unwrap_or(0);
        stack.truncate(mark);
        Some(depth + 1)
    };
    let pop = |stack: &mut Vec<Item>| -> Option<Item> {
        match stack.pop()? {
            Item::Mark => None,
            item => Some(item),
        }
    };
    loop {
        let op = *take(&mut at, 1)?.first()?;
        let pushed = match op {
            b'.' => return (stack.len() == 1 && at == data.len()).then_some(()),
            // PROTO, FRAME: framing only.
            0x80 => {
                take(&mut at, 1)?;
                None
            }
            0x95 => {
                take(&mut at, 8)?;
                None
            }
            b'(' => Some(Item::Mark),
            b'N' | 0x88 | 0x89 => Some(Item::Scalar(1)),
            b'K' => Some(Item::Scalar(take(&mut at, 1)?.len())),
            b'M' => Some(Item::Scalar(take(&mut at, 2)?.len())),
            b'J' => Some(Item::Scalar(take(&mut at, 4)?.len())),
            b'G' => Some(Item::Scalar(take(&mut at, 8)?.len())),
            // Text ints and floats (protocol 0), bounded like LONG.
            b'I' | b'L' | b'F' => {
                let len = line(&mut at)?;
                if len > MAX_LONG * 3 {
                    return None;
                }
                Some(Item::Scalar(len))
            }
            // Strings (protocol 0 text forms included).
            b'S' | b'V' => Some(Item::Scalar(line(&mut at)?)),
            0x8a | 0x8b => {
                let width = if op == 0x8a { 1 } else { 4 };
                let len = usize::try_from(le(take(&mut at, width)?)).ok()?;
                if len > MAX_LONG {
                    return None;
                }
                Some(Item::Scalar(take(&mut at, len)?.len()))
            }
            b'U' | b'C' | 0x8c => {
                let len = usize::from(take(&mut at, 1)?[0]);
                Some(Item::Scalar(take(&mut at, len)?.len()))
            }
            b'T' | b'X' | b'B' => {
                let len = usize::try_from(le(take(&mut at, 4)?)).ok()?;
                Some(Item::Scalar(take(&mut at, len)?.len()))
            }
            0x8d | 0x8e | 0x96 => {
                let len = usize::try_from(le(take(&mut at, 8)?)).ok()?;
                Some(Item::Scalar(take(&mut at, len)?.len()))
            }
            b']' | b'}' | b')' | 0x8f => Some(Item::Container(1)),
            b'l' | b't' | b'd' | 0x91 => Some(Item::Container(collect(&mut stack)?)),
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut depth = 0;
                for _ in 0..n {
                    depth = depth.max(pop(&mut stack)?.depth());
                }
                Some(Item::Container(depth + 1))
            }
            // APPEND, SETITEM: into the container below.
            b'a' | b's' => {
                let mut depth = pop(&mut stack)?.depth();
                if op == b's' {
                    depth = depth.max(pop(&mut stack)?.depth());
                }
                let Item::Container(into) = pop(&mut stack)? else {
                    return None;
                };
                Some(Item::Container(into.max(depth + 1)))
            }
            // APPENDS, SETITEMS, ADDITEMS: the items above the mark.
            b'e' | b'u' | 0x90 => {
                let depth = collect(&mut stack)?;
                let Item::Container(into) = pop(&mut stack)? else {
                    return None;
                };
                Some(Item::Container(into.max(depth)))
            }
            b'0' => {
                pop(&mut stack)?;
                None
            }
            b'1' => {
                collect(&mut stack)?;
                None
            }
            // PUT, BINPUT, LONG_BINPUT, MEMOIZE: remember the top (its size
            // if a scalar; a container is never to be referenced).
            b'p' | b'q' | b'r' | 0x94 => {
                let index = match op {
                    0x94 => memo.len() as u64,
                    _ => memo_index(&mut at, op)?,
                };
                let size = match stack.last()? {
                    Item::Scalar(size) => *size,
                    _ => usize::MAX,
                };
                memo.insert(index, size);
                None
            }
            // GET, BINGET, LONG_BINGET: a copy of a memoized scalar.
            b'g' | b'h' | b'j' => {
                let index = memo_index(&mut at, op)?;
                let size = *memo.get(&index)?;
                copied = copied.checked_add(size).filter(|n| *n <= MEMO_BUDGET)?;
                Some(Item::Scalar(size))
            }
            // Anything else: globals, object construction, persistent ids,
            // extensions, out-of-band buffers, DUP.
            _ => return None,
        };
        if let Some(item) = pushed {
            if item.depth() > MAX_DEPTH {
                return None;
            }
            stack.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Digest;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct User {
        id: u64,
        name: String,
        tags: Vec<String>,
    }

    fn user() -> User {
        User {
            id: 7,
            name: "ann".into(),
            tags: vec!["a".into(), "b".into()],
        }
    }

    fn round<T: Serialize + DeserializeOwned>(signer: Option<&Signer>, value: &T) -> T {
        let bytes = encode(Pickler::Pickle, signer, None, "k", value).unwrap();
        match decode(Pickler::Pickle, signer, "k", &bytes) {
            Decoded::Value(value) => value,
            Decoded::Miss(miss) => panic!("{miss:?}"),
        }
    }

    #[test]
    fn values_round_trip_in_cashews_form() {
        let signer = Signer::new(b"test", Digest::Md5);
        for signer in [None, Some(&signer)] {
            assert_eq!(round(signer, &user()), user());
            assert_eq!(round(signer, &5u64), 5);
            assert_eq!(round(signer, &-5i64), -5);
            assert_eq!(round(signer, &Some(5u32)), Some(5));
            assert_eq!(round::<Option<u32>>(signer, &None), None);
            assert_eq!(round(signer, &"text".to_owned()), "text");
            assert_eq!(round(signer, &(1u8, true, 2.5f64)), (1, true, 2.5));
            let map: BTreeMap<String, Vec<i32>> = [("x".to_owned(), vec![1, -2])].into();
            assert_eq!(round(signer, &map), map);
        }
    }

    #[test]
    fn stored_forms_are_cashews_own() {
        // Integers: digits, unsigned even with a secret.
        let signer = Signer::new(b"test", Digest::Md5);
        assert_eq!(
            &encode(Pickler::Pickle, Some(&signer), None, "k", &42u32).unwrap()[..],
            b"42"
        );
        // cashews' test vector: secret "test", key "key", md5.
        let stored = encode(Pickler::Pickle, Some(&signer), None, "key", "test").unwrap();
        let (head, payload) = stored.split_at(stored.iter().position(|b| *b == b'_').unwrap());
        assert!(head.starts_with(b"md5:"), "{head:?}");
        assert_eq!(
            signer.sign_cashews("key", &payload[1..]).len(),
            32,
            "hex of a 16-byte MAC"
        );
        // The vector from cashews' own tests, for its protocol-5 pickle of "test".
        let python = b"\x80\x05\x95\x08\x00\x00\x00\x00\x00\x00\x00\x8c\x04test\x94.";
        assert_eq!(
            signer.sign_cashews("key", python),
            "2182de23a749c70144594da72f8cedc2"
        );
        let mut stored = b"md5:2182de23a749c70144594da72f8cedc2_".to_vec();
        stored.extend_from_slice(python);
        assert!(matches!(
            decode::<String>(Pickler::Pickle, Some(&signer), "key", &stored),
            Decoded::Value(v) if v == "test"
        ));
        // Bytes: cashews' `bytes:` form.
        let bytes = encode(
            Pickler::Pickle,
            None,
            None,
            "k",
            &serde_bytes_like(b"\x00\x01"),
        )
        .unwrap();
        assert_eq!(&bytes[..], b"bytes:\x00\x01");
    }

    /// A value serde serializes as bytes.
    fn serde_bytes_like(raw: &'static [u8]) -> impl Serialize {
        struct Raw(&'static [u8]);
        impl Serialize for Raw {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Raw(raw)
    }

    #[test]
    fn tampered_or_other_digest_values_are_misses() {
        let signer = Signer::new(b"test", Digest::Sha256);
        let stored = encode(Pickler::Pickle, Some(&signer), None, "k", &user()).unwrap();
        let miss = |bytes: &[u8], key: &str| {
            matches!(
                decode::<User>(Pickler::Pickle, Some(&signer), key, bytes),
                Decoded::Miss(_)
            )
        };
        assert!(!miss(&stored, "k"));
        assert!(miss(&stored, "other"));
        let mut flipped = stored.to_vec();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(miss(&flipped, "k"));
        // The same payload signed with md5 (correctly) names another digest.
        let md5 = Signer::new(b"test", Digest::Md5);
        let other = encode(Pickler::Pickle, Some(&md5), None, "k", &user()).unwrap();
        assert!(miss(&other, "k"));
        // cashews' downgrade: `sum:` with a guessable signature.
        let payload = &stored[stored.iter().position(|b| *b == b'_').unwrap() + 1..];
        assert!(miss(&[b"sum:40a_", payload].concat(), "k"));
        assert!(miss(payload, "k"));
        for cut in 0..stored.len() {
            let _ = decode::<User>(Pickler::Pickle, Some(&signer), "k", &stored[..cut]);
        }
    }

    #[test]
    fn hostile_pickles_are_misses() {
        let miss = |bytes: &[u8]| {
            matches!(
                decode::<serde_pickle::Value>(Pickler::Pickle, None, "k", bytes),
                Decoded::Miss(Miss::Foreign)
            )
        };
        // os.system via a global and REDUCE.
        assert!(miss(b"cos\nsystem\n(S'echo hi'\ntR."));
        // A class instance (protocol 4 STACK_GLOBAL).
        assert!(miss(b"\x80\x04\x8c\x08builtins\x8c\x03set\x93)R."));
        // DUP doubling a tuple 40 times: exponential once decoded.
        let mut dup = b"\x80\x03N".to_vec();
        for _ in 0..40 {
            dup.extend_from_slice(b"2\x86");
        }
        dup.push(b'.');
        assert!(miss(&dup));
        // A memoized list referenced twice.
        assert!(miss(b"\x80\x03]q\x00h\x00\x86."));
        // A memoized string copied past the budget.
        let mut copies = b"\x80\x03(B\x00\x00\x10\x00".to_vec();
        copies.extend(std::iter::repeat_n(b'x', 1 << 20));
        copies.extend_from_slice(b"q\x00");
        copies.extend(std::iter::repeat_n(*b"h\x00", 100).flatten());
        copies.extend_from_slice(b"l.");
        assert!(miss(&copies));
        // Nesting deeper than the bound.
        let mut deep = b"\x80\x03".to_vec();
        deep.extend(std::iter::repeat_n(b']', 10_000));
        deep.extend(std::iter::repeat_n(b'a', 9_999));
        deep.push(b'.');
        assert!(miss(&deep));
        // A huge integer.
        let mut long = b"\x80\x03\x8b\x00\x00\x01\x00".to_vec();
        long.extend(std::iter::repeat_n(0xff, 1 << 16));
        long.push(b'.');
        assert!(miss(&long));
        // Truncations of a good pickle never panic.
        let good = serde_pickle::to_vec(&user(), serde_pickle::SerOptions::new()).unwrap();
        for cut in 0..good.len() {
            let _ = decode::<User>(Pickler::Pickle, None, "k", &good[..cut]);
        }
        // Shared strings are fine.
        assert!(plain_pickle(b"\x80\x03(X\x01\x00\x00\x00aq\x00h\x00l."));
    }

    #[cfg(feature = "compress")]
    #[test]
    fn compressed_values_are_read_whatever_the_setting() {
        let long = User {
            tags: vec!["x".repeat(4096)],
            ..user()
        };
        for compression in [Compression::Gzip, Compression::Zlib] {
            let bytes = encode(Pickler::Pickle, None, Some((compression, 0)), "k", &long).unwrap();
            assert_eq!(compression_of(&bytes), Some(compression.id()));
            assert!(bytes.len() < 200);
            assert!(matches!(
                decode::<User>(Pickler::Pickle, None, "k", &bytes),
                Decoded::Value(v) if v == long
            ));
        }
        let raw = serde_pickle::to_vec(&long, serde_pickle::SerOptions::new()).unwrap();
        assert_eq!(compression_of(&raw), None);
    }
}
