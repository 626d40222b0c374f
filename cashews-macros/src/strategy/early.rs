//! `#[cache::early]`: refreshes a value before it expires, once, in the
//! background (in line with `background = false`).

use quote::quote;

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::ttl::{DurationArg, TtlArg};

pub struct Early {
    ttl: TtlArg,
    early_ttl: Option<DurationArg>,
    background: bool,
}

impl Parse for Early {
    const OPTIONS: &'static [&'static str] = &["ttl", "early_ttl", "background"];

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let ttl = errors.check(options.ttl("ttl", "ttl = \"1h\""));
        let early_ttl = errors.check(options.duration("early_ttl")).flatten();
        let background = errors.check(options.flag("background", true));
        errors.finish()?;
        Ok(Early {
            ttl: ttl.expect("no error"),
            early_ttl,
            background: background.expect("no error"),
        })
    }
}

impl Strategy for Early {
    fn refreshes(&self) -> bool {
        self.background
    }

    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner, adapter) =
            (cx.private(), cx.cache(), cx.key(), &cx.inner, cx.adapter());
        let prepare = cx.bind_key_and_ttl(&self.ttl);
        let (make, refresh) = cx.refresh(self.refreshes());
        let early = self
            .early_ttl
            .as_ref()
            .map_or_else(|| quote!(#p::fraction(ttl, 0.33)), |d| d.code(cx.krate));
        Ok(Code {
            prepare: quote!(#prepare #make),
            future: cx.skippable(quote! {
                #p::strategy::Early::new(#cache, &#key, ttl, #early)
                    #refresh
                    .run::<#adapter>(#inner)
            }),
            ..Code::default()
        })
    }
}
