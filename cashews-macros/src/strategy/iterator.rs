//! `#[cache::iterator]`: caches the items of a returned stream and replays
//! them. It replaces the function rather than wrapping its body, so it does
//! not stack.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use super::{Code, Layer, Parse, Strategy};
use crate::args::Options;
use crate::function::{Function, Stored};
use crate::key::{self, Target};

pub struct Iterator {
    /// Nanoseconds.
    ttl: u64,
}

impl Parse for Iterator {
    const OPTIONS: &'static [&'static str] = &["ttl"];
    const ASYNC: bool = false;

    fn parse(options: &Options, function: &Function) -> syn::Result<Self> {
        if function.item.sig.asyncness.is_some() {
            return Err(syn::Error::new_spanned(
                function.item.sig.fn_token,
                "#[cache::iterator] works on a (non-async) fn returning `impl Stream<Item = T>`",
            ));
        }
        let ttl = options.ttl("ttl", "ttl = \"10m\"")?;
        let Some(ttl) = ttl.literal() else {
            return Err(syn::Error::new_spanned(
                options.value("ttl")?,
                "#[cache::iterator] takes a literal ttl (\"10m\", 600)",
            ));
        };
        Ok(Iterator { ttl })
    }
}

impl Strategy for Iterator {
    fn layer(&self, _: &Layer<'_>) -> syn::Result<Code> {
        unreachable!("expanded alone")
    }

    fn alone(
        &self,
        function: &Function,
        target: &Target,
        krate: &TokenStream,
    ) -> Option<TokenStream> {
        let key = key::owned(&target.render(krate, function));
        let cache = target.cache(krate);
        let adapter = stream_item(function).adapter(krate);
        let nanos = self.ttl;
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = &function.item;
        Some(quote! {
            #(#attrs)*
            #vis #sig {
                let __cashews_key: ::std::string::String = #key;
                #krate::__private::strategy::CachedStream::<_, _, #adapter>::new(
                    ::std::clone::Clone::clone(#cache),
                    &__cashews_key,
                    #krate::__private::Ttl::from_nanos_checked(#nanos),
                    move || #block,
                )
            }
        })
    }
}

/// What a stream's items store: the `Ok` values of `impl Stream<Item =
/// ...Result<..>>`, else the items.
fn stream_item(function: &Function) -> Stored {
    let Some(syn::Type::ImplTrait(bounds)) = function.output_type() else {
        return Stored::Whole;
    };
    let item = bounds.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let syn::PathArguments::AngleBracketed(args) = &t.path.segments.last()?.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            syn::GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(&assoc.ty),
            _ => None,
        })
    });
    Stored::of(item, false)
}
