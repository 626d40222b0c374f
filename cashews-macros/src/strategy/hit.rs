//! `#[cache::hit]`: serves a stored value for a number of hits, then
//! recomputes (in the background from `update_after` hits on).

use proc_macro2::TokenStream;
use quote::quote;

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::ttl::TtlArg;

pub struct Hit {
    ttl: TtlArg,
    cache_hits: TokenStream,
    update_after: Option<TokenStream>,
    background: bool,
}

impl Parse for Hit {
    const OPTIONS: &'static [&'static str] = &["ttl", "cache_hits", "update_after", "background"];

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let ttl = errors.check(options.ttl("ttl", "ttl = \"1h\""));
        let cache_hits = errors.check(options.required(
            options.integer("cache_hits"),
            "cache_hits",
            "cache_hits = 10",
        ));
        let update_after = errors.check(options.integer("update_after")).flatten();
        let background = errors.check(options.flag("background", true));
        errors.finish()?;
        Ok(Hit {
            ttl: ttl.expect("no error"),
            cache_hits: cache_hits.expect("no error"),
            update_after,
            background: background.expect("no error"),
        })
    }
}

impl Strategy for Hit {
    fn refreshes(&self) -> bool {
        self.background && self.update_after.is_some()
    }

    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner, adapter) =
            (cx.private(), cx.cache(), cx.key(), &cx.inner, cx.adapter());
        let prepare = cx.bind_key_and_ttl(&self.ttl);
        let (make, refresh) = cx.refresh(self.refreshes());
        let hits = &self.cache_hits;
        let update_after = self.update_after.clone().unwrap_or_else(|| quote!(0));
        Ok(Code {
            prepare: quote!(#prepare #make),
            future: cx.skippable(quote! {
                #p::strategy::Hit::new(#cache, &#key, ttl, #hits)
                    .update_after(#update_after)
                    #refresh
                    .run::<#adapter>(#inner)
            }),
            ..Code::default()
        })
    }
}
