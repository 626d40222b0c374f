//! Bytes read back from a store decode to a value or a miss, for every
//! codec, with and without a secret, and never panic; counters parse or not.
#![no_main]

use cashews::codec::Decoded;
use cashews::codec::{CodecKind, Digest, Serializer};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Profile {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    nested: Vec<(u8, Option<Vec<i32>>)>,
}

fn all<T: serde::de::DeserializeOwned + std::fmt::Debug>(serializers: &[Serializer], bytes: &[u8]) {
    for s in serializers {
        match s.decode::<T>("key", bytes) {
            Decoded::Value(value) => {
                let _ = format!("{value:?}");
            }
            Decoded::Miss(_) => {}
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let serializers = [
        Serializer::new(CodecKind::Bincode),
        Serializer::new(CodecKind::Json),
        Serializer::new(CodecKind::Bincode).with_secret(b"secret", Digest::Sha256),
    ];
    all::<Profile>(&serializers, bytes);
    all::<String>(&serializers, bytes);
    all::<Vec<Vec<u8>>>(&serializers, bytes);
    all::<std::collections::BTreeMap<String, u64>>(&serializers, bytes);
    let _ = cashews::backend::layout::parse_counter(bytes);
});
