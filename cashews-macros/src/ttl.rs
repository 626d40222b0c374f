//! The one TTL and duration generator: literals are checked against the
//! runtime's grammar at compile time, anything else is evaluated per call.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit};

use crate::function::Function;

/// A `ttl = ...` option.
pub enum TtlArg {
    /// A literal, checked: nanoseconds.
    Literal(u64),
    /// The path of a function of the arguments (`ttl = ttl_for`: a
    /// lower-case name, as Rust names functions).
    Function(syn::ExprPath),
    /// Any other expression of a type that is `IntoTtl`, evaluated per call;
    /// an upper-case path (`ttl = PROFILE_TTL`) is a const or static.
    Expr(Expr),
    /// `expire_at = ...`: an absolute expiry (a checked literal, a function
    /// of the arguments, or an expression that is `IntoExpireAt`), turned
    /// into the TTL left until it when the call is made.
    At(Expr),
}

impl TtlArg {
    pub fn parse(expr: &Expr, option: &str) -> syn::Result<TtlArg> {
        Ok(match literal_duration(expr, option)? {
            Some(nanos) => TtlArg::Literal(nanos),
            None => match expr {
                Expr::Path(path) if !names_a_value(path) => TtlArg::Function(path.clone()),
                other => TtlArg::Expr(other.clone()),
            },
        })
    }

    /// `expire_at = ...`: a literal is checked now.
    pub fn parse_expire_at(expr: &Expr) -> syn::Result<TtlArg> {
        if let Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) = expr
        {
            cashews_ttl::ExpireAt::parse(&s.value()).map_err(|reason| {
                syn::Error::new_spanned(
                    s,
                    format!("invalid `expire_at`: {:?}: {reason}", s.value()),
                )
            })?;
        }
        Ok(TtlArg::At(expr.clone()))
    }

    /// An expression of `Option<Ttl>`: `None` (logged against `key`) when a
    /// value computed at call time is not a valid TTL, and the layer is
    /// then skipped for this call. `cache` measures absolute expiry.
    pub fn code(
        &self,
        krate: &TokenStream,
        function: &Function,
        cache: &Ident,
        key: &Ident,
    ) -> TokenStream {
        let p = quote!(#krate::__private);
        let value = match self {
            TtlArg::At(expr) => {
                let at = match expr {
                    Expr::Path(path) if !names_a_value(path) => call(path, function),
                    other => other.to_token_stream(),
                };
                return quote!(#p::expire_at_ttl(#at, #cache, &#key));
            }
            TtlArg::Literal(nanos) => {
                return quote!(::std::option::Option::Some(#p::Ttl::from_nanos_checked(#nanos)))
            }
            TtlArg::Function(path) => call(path, function),
            TtlArg::Expr(expr) => expr.to_token_stream(),
        };
        quote!(#p::layer_ttl(#value, &#key))
    }

    /// The literal's nanoseconds, if it is one.
    pub fn literal(&self) -> Option<u64> {
        match self {
            TtlArg::Literal(nanos) => Some(*nanos),
            _ => None,
        }
    }
}

/// `path(args…)`: a function of the arguments, called as TTL functions
/// receive them.
fn call(path: &syn::ExprPath, function: &Function) -> TokenStream {
    let args = function.args_by_ref();
    quote_spanned!(path.span()=> #path(#(#args),*))
}

/// Whether `path` names a const or static: its last segment is upper case
/// (`PROFILE_TTL`, `ttl::DAY`), as Rust names them; functions are snake case.
fn names_a_value(path: &syn::ExprPath) -> bool {
    path.path.segments.last().is_some_and(|segment| {
        let name = segment.ident.to_string();
        name.chars().any(|c| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// A duration option (`early_ttl`, `period`, `wait`, ...).
pub enum DurationArg {
    /// A literal, checked: nanoseconds.
    Literal(u64),
    /// An expression of any TTL form, converted per call.
    Expr(Expr),
}

impl DurationArg {
    pub fn parse(expr: &Expr, option: &str) -> syn::Result<DurationArg> {
        Ok(match literal_duration(expr, option)? {
            Some(nanos) => DurationArg::Literal(nanos),
            None => DurationArg::Expr(expr.clone()),
        })
    }

    /// An expression of `std::time::Duration`.
    pub fn code(&self, krate: &TokenStream) -> TokenStream {
        match self {
            DurationArg::Literal(nanos) => quote!(::std::time::Duration::from_nanos(#nanos)),
            DurationArg::Expr(expr) => quote!(#krate::__private::duration_of(#expr)),
        }
    }
}

/// Checks a literal duration at compile time: `Some(nanoseconds)`, or
/// `None` for a non-literal expression.
pub fn literal_duration(expr: &Expr, option: &str) -> syn::Result<Option<u64>> {
    let Expr::Lit(lit) = expr else {
        return Ok(None);
    };
    let bad = |reason: &str| syn::Error::new_spanned(lit, format!("invalid `{option}`: {reason}"));
    let duration = match &lit.lit {
        Lit::Str(s) => cashews_ttl::parse(&s.value())
            .map_err(|reason| bad(&format!("{:?}: {reason}", s.value())))?,
        Lit::Int(i) => std::time::Duration::from_secs(
            i.base10_parse::<u64>()
                .map_err(|_| bad("not a number of seconds"))?,
        ),
        Lit::Float(f) => std::time::Duration::try_from_secs_f64(
            f.base10_parse::<f64>()
                .map_err(|_| bad("not a number of seconds"))?,
        )
        .map_err(|_| bad("out of range"))?,
        _ => {
            return Err(bad(
                "expected \"1h30m\", a number of seconds, or a function of the arguments",
            ))
        }
    };
    if duration.is_zero() {
        return Err(bad("must be greater than zero"));
    }
    u64::try_from(duration.as_nanos())
        .map(Some)
        .map_err(|_| bad("too large"))
}
