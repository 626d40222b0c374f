//! Any setup URL is accepted or refused with an error; setup does no I/O
//! and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|url: &str| {
    let cache = cashews::Cache::new();
    if let Err(error) = cache.setup(url) {
        // Errors render (and name the problem) without panicking.
        let _ = error.to_string();
    }
    let _ = cashews::backend::url::SetupUrl::parse(url);
});
