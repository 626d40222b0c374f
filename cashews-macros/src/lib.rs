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
        synchronous: S::SYNC,
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
    #[doc = include_str!("doc/cache.md")]
    cache => cache::Cache;
    #[doc = include_str!("doc/failover.md")]
    failover => failover::Failover;
    #[doc = include_str!("doc/hit.md")]
    hit => hit::Hit;
    #[doc = include_str!("doc/early.md")]
    early => early::Early;
    #[doc = include_str!("doc/soft.md")]
    soft => soft::Soft;
    #[doc = include_str!("doc/locked.md")]
    locked => locked::Locked;
    #[doc = include_str!("doc/rate_limit.md")]
    rate_limit => rate_limit::RateLimit;
    #[doc = include_str!("doc/slice_rate_limit.md")]
    slice_rate_limit => rate_limit::SliceRateLimit;
    #[doc = include_str!("doc/circuit_breaker.md")]
    circuit_breaker => circuit_breaker::CircuitBreaker;
    #[doc = include_str!("doc/bloom.md")]
    bloom => bloom::Bloom;
    #[doc = include_str!("doc/dual_bloom.md")]
    dual_bloom => bloom::DualBloom;
    #[doc = include_str!("doc/invalidate.md")]
    invalidate => invalidate::Invalidate;
    #[doc = include_str!("doc/iterator.md")]
    iterator => iterator::Iterator;
}
