//! `#[cache::rate_limit]` (a fixed window with a ban) and
//! `#[cache::slice_rate_limit]` (a sliding window).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::ttl::DurationArg;

pub struct RateLimit {
    limit: Limit,
    /// How long a caller over the limit stays rejected.
    ban: Option<DurationArg>,
}

pub struct SliceRateLimit {
    limit: Limit,
}

/// What both windows share.
struct Limit {
    limit: TokenStream,
    period: DurationArg,
    action: Option<Expr>,
    on_backend_error: Option<Ident>,
}

impl Limit {
    fn parse(options: &Options, errors: &mut Errors) -> Option<Limit> {
        let limit =
            errors.check(options.required(options.integer("limit"), "limit", "limit = 100"));
        let period =
            errors.check(options.required(options.duration("period"), "period", "period = \"1m\""));
        let action = errors.check(options.expr("action")).flatten();
        let on_backend_error = errors.check(on_backend_error(options)).flatten();
        Some(Limit {
            limit: limit?,
            period: period?,
            action,
            on_backend_error,
        })
    }

    /// The layer, given the expression of the limit strategy.
    fn layer(&self, cx: &Layer<'_>, runner: TokenStream) -> Code {
        let p = cx.private();
        let inner = &cx.inner;
        let reject = match &self.action {
            Some(action) => {
                let args = cx.function.args_by_ref();
                quote_spanned!(action.span()=> |_| #action(#(#args),*))
            }
            None => cx.reject(),
        };
        let on_backend_error = backend_error_modifier(cx, self.on_backend_error.as_ref());
        Code {
            prepare: cx.bind_key(),
            future: quote!(#p::strategy::Limit::run(#runner #on_backend_error, #inner, #reject)),
            ..Code::default()
        }
    }

    fn parts(&self, cx: &Layer<'_>) -> (TokenStream, TokenStream) {
        (self.limit.clone(), self.period.code(cx.krate))
    }
}

/// `on_backend_error = allow | deny`.
pub fn on_backend_error(options: &Options) -> syn::Result<Option<Ident>> {
    options.word(
        "on_backend_error",
        &["allow", "deny"],
        "`on_backend_error` is `allow` (run the call) or `deny` (reject it)",
    )
}

/// `.on_backend_error(OnBackendError::Allow | Deny)`, if given.
pub fn backend_error_modifier(cx: &Layer<'_>, choice: Option<&Ident>) -> TokenStream {
    let p = cx.private();
    match choice {
        None => TokenStream::new(),
        Some(choice) => {
            let variant = if choice == "deny" {
                quote!(Deny)
            } else {
                quote!(Allow)
            };
            quote!(.on_backend_error(#p::strategy::OnBackendError::#variant))
        }
    }
}

impl Parse for RateLimit {
    const OPTIONS: &'static [&'static str] =
        &["limit", "period", "ttl", "action", "on_backend_error"];
    const SYNC: bool = true;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let limit = Limit::parse(options, &mut errors);
        let ban = errors.check(options.duration("ttl")).flatten();
        errors.finish()?;
        Ok(RateLimit {
            limit: limit.expect("no error"),
            ban,
        })
    }
}

impl Strategy for RateLimit {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key) = (cx.private(), cx.cache(), cx.key());
        let (limit, period) = self.limit.parts(cx);
        let ban = self.ban.as_ref().map(|d| {
            let d = d.code(cx.krate);
            quote!(.ban(#d))
        });
        Ok(self.limit.layer(
            cx,
            quote!(#p::strategy::RateLimit::new(#cache, &#key, #limit, #period) #ban),
        ))
    }
}

impl Parse for SliceRateLimit {
    const OPTIONS: &'static [&'static str] = &["limit", "period", "action", "on_backend_error"];
    const SYNC: bool = true;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let limit = Limit::parse(options, &mut errors);
        errors.finish()?;
        Ok(SliceRateLimit {
            limit: limit.expect("no error"),
        })
    }
}

impl Strategy for SliceRateLimit {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key) = (cx.private(), cx.cache(), cx.key());
        let (limit, period) = self.limit.parts(cx);
        Ok(self.limit.layer(
            cx,
            quote!(#p::strategy::SliceRateLimit::new(#cache, &#key, #limit, #period)),
        ))
    }
}
