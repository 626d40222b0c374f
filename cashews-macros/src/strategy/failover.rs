//! `#[cache::failover]`: always calls; on a failure, returns the last
//! stored success.

use quote::quote;
use syn::Expr;

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::ttl::TtlArg;

pub struct Failover {
    ttl: TtlArg,
    on: Option<Expr>,
}

impl Parse for Failover {
    const OPTIONS: &'static [&'static str] = &["ttl", "on"];
    const SYNC: bool = true;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let ttl = errors.check(options.ttl("ttl", "ttl = \"1h\""));
        let on = errors.check(options.expr("on")).flatten();
        errors.finish()?;
        Ok(Failover {
            ttl: ttl.expect("no error"),
            on,
        })
    }
}

impl Strategy for Failover {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner, adapter) =
            (cx.private(), cx.cache(), cx.key(), &cx.inner, cx.adapter());
        let on = cx.on(self.on.as_ref());
        Ok(Code {
            prepare: cx.bind_key_and_ttl(&self.ttl),
            future: cx.skippable(quote! {
                #p::strategy::Failover::new(#cache, &#key, ttl) #on .run::<#adapter>(#inner)
            }),
            ..Code::default()
        })
    }
}
