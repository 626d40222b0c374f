//! `#[cache::soft]`: recomputes after a soft TTL; serves the stale value
//! when the recompute fails.

use quote::quote;
use syn::Expr;

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::ttl::{DurationArg, TtlArg};

pub struct Soft {
    ttl: TtlArg,
    soft_ttl: Option<DurationArg>,
    on: Option<Expr>,
}

impl Parse for Soft {
    const OPTIONS: &'static [&'static str] = &["ttl", "soft_ttl", "on"];
    const SYNC: bool = true;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let ttl = errors.check(options.ttl("ttl", "ttl = \"1h\""));
        let soft_ttl = errors.check(options.duration("soft_ttl")).flatten();
        let on = errors.check(options.expr("on")).flatten();
        errors.finish()?;
        Ok(Soft {
            ttl: ttl.expect("no error"),
            soft_ttl,
            on,
        })
    }
}

impl Strategy for Soft {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner, adapter) =
            (cx.private(), cx.cache(), cx.key(), &cx.inner, cx.adapter());
        let soft = self
            .soft_ttl
            .as_ref()
            .map_or_else(|| quote!(#p::fraction(ttl, 0.33)), |d| d.code(cx.krate));
        let on = cx.on(self.on.as_ref());
        Ok(Code {
            prepare: cx.bind_key_and_ttl(&self.ttl),
            future: cx.skippable(quote! {
                #p::strategy::Soft::new(#cache, &#key, ttl, #soft) #on .run::<#adapter>(#inner)
            }),
            ..Code::default()
        })
    }
}
