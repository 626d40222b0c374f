//! `#[cache::invalidate("user:{id}:*")]`: deletes the keys matching a
//! pattern after a successful call.

use quote::{format_ident, quote};

use super::{Code, Layer, Parse, Strategy};
use crate::args::Options;
use crate::function::{Function, Stored};
use crate::template::Template;

pub struct Invalidate {
    /// Literal parts keep their glob meaning; values rendered into it are
    /// escaped, so an argument cannot widen it.
    pattern: Template,
}

impl Parse for Invalidate {
    const OPTIONS: &'static [&'static str] = &[];
    const SYNC: bool = true;
    const SHORTHAND: Option<&'static str> = Some("key");

    fn parse(options: &Options, function: &Function) -> syn::Result<Self> {
        let lit = options.required(
            options.lit_str("key"),
            "key",
            "#[cache::invalidate(\"user:{id}:*\")]",
        )?;
        Ok(Invalidate {
            pattern: Template::parse(&lit, &function.scope())?.escaped(),
        })
    }
}

impl Strategy for Invalidate {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner, output) =
            (cx.private(), cx.cache(), cx.key(), &cx.inner, cx.output());
        let render = self
            .pattern
            .render(cx.krate, &format_ident!("__cashews_key_text"));
        let succeeded = match cx.stored {
            Stored::OkPart => quote!(|__r: &#output| ::std::result::Result::is_ok(__r)),
            Stored::Whole => quote!(|_: &#output| true),
        };
        Ok(Code {
            prepare: cx.bind(&render),
            future: quote!(#p::strategy::invalidate(#cache, &#key, #inner, #succeeded)),
            ..Code::default()
        })
    }
}
