//! `#[cache::bloom]` (answers `false` without calling for items never
//! added to the function's filter) and `#[cache::dual_bloom]` (remembers a
//! boolean function's answers in two filters).

use proc_macro2::TokenStream;
use quote::quote;

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;

pub struct Bloom {
    filter: Filter,
}

pub struct DualBloom {
    filter: Filter,
}

/// The filter both share, named after the function.
struct Filter {
    capacity: TokenStream,
    false_positives: TokenStream,
}

impl Filter {
    fn parse(options: &Options) -> syn::Result<Filter> {
        let mut errors = Errors::default();
        let capacity = errors.check(options.required(
            options.integer("capacity"),
            "capacity",
            "capacity = 10000",
        ));
        let false_positives = errors.check(options.number("false_positives")).flatten();
        errors.finish()?;
        Ok(Filter {
            capacity: capacity.expect("no error"),
            false_positives: false_positives.unwrap_or_else(|| quote!(1.0)),
        })
    }

    /// The filter's name, capacity and rate, as constructor arguments.
    fn args(&self, cx: &Layer<'_>) -> TokenStream {
        let name = cx.function.name().to_string();
        let (cache, capacity, rate) = (cx.cache(), &self.capacity, &self.false_positives);
        quote!(#cache, concat!(module_path!(), "::", #name), #capacity, #rate)
    }
}

const FILTER_OPTIONS: &[&str] = &["capacity", "false_positives"];

impl Parse for Bloom {
    const OPTIONS: &'static [&'static str] = FILTER_OPTIONS;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        Ok(Bloom {
            filter: Filter::parse(options)?,
        })
    }
}

impl Strategy for Bloom {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, key, inner) = (cx.private(), cx.key(), &cx.inner);
        let args = self.filter.args(cx);
        Ok(Code {
            prepare: cx.bind_key(),
            future: quote! {
                async move {
                    let filter = #p::strategy::BloomFilter::new(#args);
                    // Certainly absent: answer without calling.
                    if !filter.contains(&#key).await.unwrap_or(true) {
                        return false;
                    }
                    #inner.await
                }
            },
            ..Code::default()
        })
    }
}

impl Parse for DualBloom {
    const OPTIONS: &'static [&'static str] = FILTER_OPTIONS;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        Ok(DualBloom {
            filter: Filter::parse(options)?,
        })
    }
}

impl Strategy for DualBloom {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, key, inner) = (cx.private(), cx.key(), &cx.inner);
        let args = self.filter.args(cx);
        Ok(Code {
            prepare: cx.bind_key(),
            future: quote! {
                async move {
                    #p::strategy::DualBloom::new(#args).run(&#key, #inner).await
                }
            },
            ..Code::default()
        })
    }
}
