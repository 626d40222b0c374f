//! The attribute macros of [cashews](https://docs.rs/cashews). Use them
//! through the `cashews` crate (`use cashews::cache;`, then `#[cache(...)]`
//! and `#[cache::failover(...)]`); generated code names only
//! `::cashews::__private` (or `crate = path`).
//!
//! The crate's rooms: `args` reads options, `function` and `key` and `ttl`
//! generate what every attribute shares, `strategy/` holds one room per
//! strategy (room for room with `cashews-core/src/strategy/`), `expand`
//! stacks the layers, and the list below is the only list of attributes.
//! Adding a strategy touches its room here, its runtime in
//! `cashews-core/src/strategy/`, and this list.
#![forbid(unsafe_code)]

mod args;
mod expand;
mod function;
mod key;
mod strategy;
mod template;
mod ttl;

use expand::Attribute;
use proc_macro::TokenStream;
use strategy::Parse;

fn run(name: &str, attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse::<syn::ItemFn>(item) {
        Ok(item) => item,
        Err(error) => return error.to_compile_error().into(),
    };
    let attribute = attribute(name).expect("listed");
    expand::expand(attribute, attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The attribute named `name`.
fn attribute_of<S: Parse>(name: &'static str) -> Attribute {
    Attribute {
        name,
        options: S::OPTIONS,
        asynchronous: S::ASYNC,
        shorthand: S::SHORTHAND,
        parse: |options, function| Ok(Box::new(S::parse(options, function)?)),
    }
}

macro_rules! attributes {
    ($($(#[$doc:meta])* $name:ident => $room:ident::$strategy:ident;)*) => {
        $(
            $(#[$doc])*
            #[proc_macro_attribute]
            pub fn $name(attr: TokenStream, item: TokenStream) -> TokenStream {
                run(stringify!($name), attr, item)
            }
        )*

        /// The cache attribute named `name`, if there is one.
        fn attribute(name: &str) -> Option<&'static Attribute> {
            use std::sync::LazyLock;
            static ALL: LazyLock<Vec<Attribute>> = LazyLock::new(|| {
                vec![$(attribute_of::<strategy::$room::$strategy>(stringify!($name))),*]
            });
            ALL.iter().find(|a| a.name == name)
        }
    };
}

attributes! {
    /// Caches an async function's result (the simple strategy).
    cache => cache::Cache;
    /// Always calls; on a failure, returns the last stored success.
    failover => failover::Failover;
    /// Serves a stored value for a number of hits, then recomputes.
    hit => hit::Hit;
    /// Refreshes a value before it expires, once, in the background.
    early => early::Early;
    /// Recomputes after a soft TTL; serves the stale value on failure.
    soft => soft::Soft;
    /// One execution at a time per key, across processes.
    locked => locked::Locked;
    /// A fixed-window rate limit with a ban.
    rate_limit => rate_limit::RateLimit;
    /// A sliding-window rate limit.
    slice_rate_limit => rate_limit::SliceRateLimit;
    /// A circuit breaker with deterministic half-open trials.
    circuit_breaker => circuit_breaker::CircuitBreaker;
    /// Answers `false` without calling for items never added to the
    /// function's bloom filter (`BloomFilter::new(cache, "module::fn", ..).add(key)`).
    bloom => bloom::Bloom;
    /// Remembers a boolean function's answers in two bloom filters.
    dual_bloom => bloom::DualBloom;
    /// Deletes the keys matching a pattern after a successful call.
    invalidate => invalidate::Invalidate;
    /// Caches the items of a returned stream and replays them.
    iterator => iterator::Iterator;
}
