//! The run-time key formatters of templates accept any input.
#![no_main]

use cashews::key::fmt::{self, HashAlgorithm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (value, claim) = input;
    let mut out = String::new();
    fmt::lower(&mut out, value);
    fmt::upper(&mut out, value);
    fmt::len(&mut out, value);
    for algorithm in [HashAlgorithm::Md5, HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
        fmt::hash(&mut out, value, algorithm);
    }
    fmt::jwt(&mut out, value, claim);
    fmt::context(&mut out, claim);
    let escaped = cashews::backend::glob::escape(value);
    assert!(cashews::backend::glob::matches(&escaped, value), "an escaped value matches only itself");
});
