//! The attribute macros of [cashews](https://docs.rs/cashews). Use them
//! through the `cashews` crate (`use cashews::cache;`); generated code names
//! only `::cashews::__private` (or `crate = path`).

mod attr;
mod expand;
mod template;

use proc_macro::TokenStream;

/// Caches an async function's result: see the `cashews` crate docs.
#[proc_macro_attribute]
pub fn cache(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse::<syn::ItemFn>(item) {
        Ok(item) => item,
        Err(error) => return error.to_compile_error().into(),
    };
    expand::cache(attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
