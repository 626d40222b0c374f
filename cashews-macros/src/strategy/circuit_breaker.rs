//! `#[cache::circuit_breaker]`: stops calling after too many failures, with
//! deterministic half-open trials. One circuit per function unless `key`
//! says otherwise.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Expr, Ident};

use super::rate_limit::{backend_error_modifier, on_backend_error};
use super::{Code, Layer, Parse, Strategy};
use crate::args::{Errors, Options};
use crate::function::Function;
use crate::key::function_path;
use crate::ttl::DurationArg;

pub struct CircuitBreaker {
    errors_rate: TokenStream,
    period: DurationArg,
    ttl: DurationArg,
    half_open_ttl: Option<DurationArg>,
    min_calls: Option<TokenStream>,
    half_open_calls: Option<TokenStream>,
    on: Option<Expr>,
    on_backend_error: Option<Ident>,
}

impl Parse for CircuitBreaker {
    const OPTIONS: &'static [&'static str] = &[
        "errors_rate",
        "period",
        "ttl",
        "half_open_ttl",
        "min_calls",
        "half_open_calls",
        "on",
        "on_backend_error",
    ];
    const SYNC: bool = true;

    fn parse(options: &Options, _: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let errors_rate = errors.check(options.required(
            options.number("errors_rate"),
            "errors_rate",
            "errors_rate = 50",
        ));
        let period =
            errors.check(options.required(options.duration("period"), "period", "period = \"1m\""));
        let ttl = errors.check(options.required(options.duration("ttl"), "ttl", "ttl = \"30s\""));
        let half_open_ttl = errors.check(options.duration("half_open_ttl")).flatten();
        let min_calls = errors.check(options.integer("min_calls")).flatten();
        let half_open_calls = errors.check(options.integer("half_open_calls")).flatten();
        let on = errors.check(options.expr("on")).flatten();
        let on_backend_error = errors.check(on_backend_error(options)).flatten();
        errors.finish()?;
        Ok(CircuitBreaker {
            errors_rate: errors_rate.expect("no error"),
            period: period.expect("no error"),
            ttl: ttl.expect("no error"),
            half_open_ttl,
            min_calls,
            half_open_calls,
            on,
            on_backend_error,
        })
    }
}

impl Strategy for CircuitBreaker {
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, cache, key, inner, krate) =
            (cx.private(), cx.cache(), cx.key(), &cx.inner, cx.krate);
        let prepare = if cx.target.key.is_some() {
            cx.bind_key()
        } else {
            cx.bind(&function_path(
                cx.function,
                &format_ident!("__cashews_key_text"),
            ))
        };
        let (rate, period, ttl) = (
            &self.errors_rate,
            self.period.code(krate),
            self.ttl.code(krate),
        );
        let mut runner =
            quote!(#p::strategy::CircuitBreaker::new(#cache, &#key, #rate, #period, #ttl));
        if let Some(half) = &self.half_open_ttl {
            let half = half.code(krate);
            runner.extend(quote!(.half_open_ttl(#half)));
        }
        if let Some(n) = &self.min_calls {
            runner.extend(quote!(.min_calls(#n)));
        }
        if let Some(n) = &self.half_open_calls {
            runner.extend(quote!(.half_open_calls(#n)));
        }
        runner.extend(backend_error_modifier(cx, self.on_backend_error.as_ref()));
        let failed = cx.failed(self.on.as_ref());
        let reject = cx.reject();
        Ok(Code {
            prepare,
            future: quote!(#runner.run(#inner, #failed, #reject)),
            ..Code::default()
        })
    }
}
