//! The attribute macros of [cashews](https://docs.rs/cashews). Use them
//! through the `cashews` crate (`use cashews::cache;`, then `#[cache(...)]`
//! and `#[cache::failover(...)]`); generated code names only
//! `::cashews::__private` (or `crate = path`).
#![forbid(unsafe_code)]

mod attr;
mod expand;
mod layers;
mod template;

use layers::Kind;
use proc_macro::TokenStream;

fn run(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse::<syn::ItemFn>(item) {
        Ok(item) => item,
        Err(error) => return error.to_compile_error().into(),
    };
    layers::expand(kind, attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

macro_rules! attributes {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {$(
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(attr: TokenStream, item: TokenStream) -> TokenStream {
            run(Kind::$kind, attr, item)
        }
    )*};
}

attributes! {
    /// Caches an async function's result (the simple strategy).
    cache => Cache;
    /// Always calls; on a failure, returns the last stored success.
    failover => Failover;
    /// Serves a stored value for a number of hits, then recomputes.
    hit => Hit;
    /// Refreshes a value before it expires, once, in the background.
    early => Early;
    /// Recomputes after a soft TTL; serves the stale value on failure.
    soft => Soft;
    /// One execution at a time per key, across processes.
    locked => Locked;
    /// A fixed-window rate limit with a ban.
    rate_limit => RateLimit;
    /// A sliding-window rate limit.
    slice_rate_limit => SliceRateLimit;
    /// A circuit breaker with deterministic half-open trials.
    circuit_breaker => CircuitBreaker;
    /// Answers `false` without calling for items never added to the
    /// function's bloom filter (`BloomFilter::new(cache, "module::fn", ..).add(key)`).
    bloom => Bloom;
    /// Remembers a boolean function's answers in two bloom filters.
    dual_bloom => DualBloom;
    /// Deletes the keys matching a pattern after a successful call.
    invalidate => Invalidate;
    /// Caches the items of a returned stream and replays them.
    iterator => Iterator;
}
