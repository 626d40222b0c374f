//! Properties of stored bytes on stable Rust (the same properties the
//! `fuzz/` targets explore longer with libFuzzer): hostile bytes decode to a
//! value or a miss, never a panic; a tampered signed value is never accepted
//! as another value; TTL strings parse or fail cleanly.

use cashews::codec::Decoded;
use cashews::codec::{CodecKind, Digest, Serializer};
use cashews::Ttl;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
}

fn signer() -> Serializer {
    Serializer::new(CodecKind::Bincode).with_secret(b"the secret", Digest::Sha256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_decode_or_miss(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for serializer in [Serializer::new(CodecKind::Bincode), Serializer::new(CodecKind::Postcard), signer()] {
            if let Decoded::Value(profile) = serializer.decode::<Profile>("k", &bytes) {
                prop_assert!(profile.name.len() <= bytes.len());
            }
            let _ = serializer.decode::<Vec<String>>("k", &bytes);
        }
        let _ = cashews::backend::layout::parse_counter(&bytes);
    }

    #[test]
    fn tampered_signed_values_are_never_another_value(
        name in ".{0,40}",
        id in any::<u64>(),
        flips in proptest::collection::vec((any::<u16>(), 1..=255u8), 1..4),
        tail in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let value = Profile { id, name, tags: vec!["a".into()], score: Some(1.5) };
        let stored = signer().encode("user:1", &value).unwrap();
        let mut tampered = stored.to_vec();
        for (at, xor) in flips {
            let at = usize::from(at) % tampered.len();
            tampered[at] ^= xor;
        }
        tampered.extend_from_slice(&tail);
        match signer().decode::<Profile>("user:1", &tampered) {
            Decoded::Value(read) => prop_assert_eq!(read, value),
            Decoded::Miss(_) => {}
        }
        prop_assert!(matches!(signer().decode::<Profile>("user:2", &stored), Decoded::Miss(_)));
    }

    #[test]
    fn ttl_strings_parse_to_positive_durations_or_fail(text in "[0-9a-z .]{0,16}") {
        if let Ok(ttl) = Ttl::parse(&text) {
            prop_assert!(ttl.duration().is_some_and(|d| !d.is_zero()));
        }
    }
}
