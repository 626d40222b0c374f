//! `#[cache::locked]`: one execution at a time per key, across processes.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Lit};

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::ttl::{DurationArg, TtlArg};

pub struct Locked {
    ttl: TtlArg,
    wait: Wait,
    step: Option<DurationArg>,
}

/// How long a call waits for the lock.
enum Wait {
    /// The runtime's default.
    Default,
    /// Not at all (`wait = false`).
    No,
    /// At most this long.
    For(DurationArg),
}

impl Parse for Locked {
    const OPTIONS: &'static [&'static str] = &["ttl", "wait", "step"];
    const SYNC: bool = true;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let ttl = errors.check(options.ttl("ttl", "ttl = \"10s\""));
        let wait = match options.get("wait").and_then(|o| o.value.as_ref()) {
            None => Wait::Default,
            Some(Expr::Lit(l)) if matches!(l.lit, Lit::Bool(_)) => {
                if errors.check(options.flag("wait", true)).unwrap_or(true) {
                    Wait::Default
                } else {
                    Wait::No
                }
            }
            Some(_) => errors
                .check(options.duration("wait"))
                .flatten()
                .map_or(Wait::Default, Wait::For),
        };
        let step = errors.check(options.duration("step")).flatten();
        errors.finish()?;
        Ok(Locked {
            ttl: ttl.expect("no error"),
            wait,
            step,
        })
    }
}

impl Strategy for Locked {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner) = (cx.private(), cx.cache(), cx.key(), &cx.inner);
        let wait = match &self.wait {
            Wait::Default => TokenStream::new(),
            Wait::No => quote!(.no_wait()),
            Wait::For(d) => {
                let d = d.code(cx.krate);
                quote!(.wait(#d))
            }
        };
        let step = self.step.as_ref().map(|d| {
            let d = d.code(cx.krate);
            quote!(.step(#d))
        });
        let reject = cx.reject();
        Ok(Code {
            prepare: cx.bind_key_and_ttl(&self.ttl),
            future: cx.skippable(quote! {
                #p::strategy::Locked::new(#cache, &#key, ttl) #wait #step .run(#inner, #reject)
            }),
            ..Code::default()
        })
    }
}
