//! Tampering with a signed value never yields a different accepted value:
//! after any change of its bytes, a read is a miss or the original value.
#![no_main]

use cashews::codec::Decoded;
use cashews::codec::{CodecKind, Digest, Serializer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, Vec<(u16, u8)>, Vec<u8>, u8)| {
    let (value, flips, tail, digest) = input;
    let digest = match digest % 4 {
        0 => Digest::Sha256,
        1 => Digest::Sha512,
        2 => Digest::Sha1,
        _ => Digest::Md5,
    };
    let signer = Serializer::new(CodecKind::Bincode).with_secret(b"the secret", digest);
    let stored = signer.encode("user:1", &value).expect("strings encode");
    let mut tampered = stored.to_vec();
    for (at, xor) in flips {
        if !tampered.is_empty() {
            let at = usize::from(at) % tampered.len();
            tampered[at] ^= xor;
        }
    }
    tampered.extend_from_slice(&tail);
    match signer.decode::<String>("user:1", &tampered) {
        Decoded::Value(read) => assert_eq!(read, value, "a tampered value was accepted"),
        Decoded::Miss(_) => {}
    }
    // The value is bound to its key.
    assert!(matches!(
        signer.decode::<String>("user:2", &stored),
        Decoded::Miss(_)
    ));
});
