//! The one options parser shared by every cache attribute.
//!
//! Options are `name`, `name = expr` or `crate = path`, separated by commas.
//! Each attribute declares the options it accepts; an unknown or repeated
//! option is an error spanned on its name, and every error found is reported.
//! Each strategy reads its options into its own typed args struct with the
//! readers here, before any code is generated.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Token};

use crate::ttl::{DurationArg, TtlArg};

/// One `name [= value]` option.
pub struct Opt {
    pub name: Ident,
    pub value: Option<Expr>,
}

impl Parse for Opt {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = input.call(Ident::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Opt { name, value })
    }
}

/// The options of one attribute, checked against what it accepts.
pub struct Options {
    opts: Vec<Opt>,
    pub span: Span,
}

impl Options {
    /// Parses `tokens`, rejecting options not in `accepted` and repeats.
    pub fn parse(tokens: proc_macro2::TokenStream, accepted: &[&str]) -> syn::Result<Options> {
        let span = tokens
            .clone()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span());
        let parsed =
            syn::parse::Parser::parse2(Punctuated::<Opt, Token![,]>::parse_terminated, tokens)?;
        let mut errors = Errors::default();
        let mut opts: Vec<Opt> = Vec::new();
        for opt in parsed {
            let name = opt.name.to_string();
            if !accepted.contains(&name.as_str()) {
                errors.push(syn::Error::new(
                    opt.name.span(),
                    format!("unknown option `{name}`; accepted: {}", accepted.join(", ")),
                ));
            } else if opts.iter().any(|o| o.name == opt.name) {
                errors.push(syn::Error::new(
                    opt.name.span(),
                    format!("option `{name}` is given twice"),
                ));
            } else {
                opts.push(opt);
            }
        }
        errors.finish()?;
        Ok(Options { opts, span })
    }

    /// The option named `name`, if given.
    pub fn get(&self, name: &str) -> Option<&Opt> {
        self.opts.iter().find(|o| o.name == name)
    }

    /// The value of `name`, which must have one.
    pub fn value(&self, name: &str) -> syn::Result<Option<&Expr>> {
        match self.get(name) {
            None => Ok(None),
            Some(Opt { value: Some(v), .. }) => Ok(Some(v)),
            Some(Opt { name, value: None }) => Err(syn::Error::new(
                name.span(),
                format!("option `{name}` needs a value: `{name} = ...`"),
            )),
        }
    }

    /// A boolean option: absent → `default`, bare → `true`, or `= true|false`.
    pub fn flag(&self, name: &str, default: bool) -> syn::Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(Opt { value: None, .. }) => Ok(true),
            Some(Opt {
                value: Some(Expr::Lit(lit)),
                ..
            }) => match &lit.lit {
                syn::Lit::Bool(b) => Ok(b.value),
                other => Err(syn::Error::new_spanned(
                    other,
                    format!("`{name}` takes true or false"),
                )),
            },
            Some(Opt {
                value: Some(other), ..
            }) => Err(syn::Error::new_spanned(
                other,
                format!("`{name}` takes true or false"),
            )),
        }
    }

    /// A required option's error: `missing `name`: e.g. example`.
    pub fn missing(&self, name: &str, example: &str) -> syn::Error {
        syn::Error::new(self.span, format!("missing `{name}`: e.g. {example}"))
    }

    /// `value` (an option read), which must be given.
    pub fn required<T>(
        &self,
        value: syn::Result<Option<T>>,
        name: &str,
        example: &str,
    ) -> syn::Result<T> {
        value?.ok_or_else(|| self.missing(name, example))
    }

    /// A string literal option.
    pub fn lit_str(&self, name: &str) -> syn::Result<Option<LitStr>> {
        self.value(name)?
            .map(|e| lit_str(e, name).cloned())
            .transpose()
    }

    /// A duration option: a literal checked now, or an expression.
    pub fn duration(&self, name: &str) -> syn::Result<Option<DurationArg>> {
        self.value(name)?
            .map(|e| DurationArg::parse(e, name))
            .transpose()
    }

    /// A required TTL option: a literal checked now, a function of the
    /// arguments, or an expression.
    pub fn ttl(&self, name: &str, example: &str) -> syn::Result<TtlArg> {
        match self.value(name)? {
            Some(expr) => TtlArg::parse(expr, name),
            None => Err(self.missing(name, example)),
        }
    }

    /// A count: an integer literal, or an expression cast to `u64`.
    pub fn integer(&self, name: &str) -> syn::Result<Option<TokenStream>> {
        Ok(match self.value(name)? {
            None => None,
            Some(Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            })) => {
                let value: u64 = i.base10_parse()?;
                Some(quote!(#value))
            }
            Some(other) => Some(convert(other, quote!(u64))),
        })
    }

    /// A number, cast to `f64` where used.
    pub fn number(&self, name: &str) -> syn::Result<Option<TokenStream>> {
        Ok(self.value(name)?.map(|e| quote!(((#e) as f64))))
    }

    /// A bare word out of `choices` (`on_backend_error = deny`).
    pub fn word(&self, name: &str, choices: &[&str], help: &str) -> syn::Result<Option<Ident>> {
        match self.value(name)? {
            None => Ok(None),
            Some(Expr::Path(path))
                if path
                    .path
                    .get_ident()
                    .is_some_and(|i| choices.iter().any(|c| i == c)) =>
            {
                Ok(path.path.get_ident().cloned())
            }
            Some(other) => Err(syn::Error::new_spanned(other, help)),
        }
    }

    /// An expression option, as given.
    pub fn expr(&self, name: &str) -> syn::Result<Option<Expr>> {
        Ok(self.value(name)?.cloned())
    }

    /// The `crate = path` option's path, if given.
    pub fn krate(&self) -> syn::Result<Option<TokenStream>> {
        Ok(self.value("crate")?.map(ToTokens::to_token_stream))
    }
}

/// A string literal option's literal.
pub fn lit_str<'e>(expr: &'e Expr, option: &str) -> syn::Result<&'e LitStr> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{option}` takes a string literal"),
        )),
    }
}

/// Collects several errors to report them together.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Keeps the value, or records the error.
    pub fn check<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub fn finish(&mut self) -> syn::Result<()> {
        self.0.take().map_or(Ok(()), Err)
    }
}

/// `value` as the integer type `to`, without a cast the user's lints would
/// flag (`as` on a value of that type already): a conversion through
/// `TryInto`, a negative or too large value becoming 0.
pub fn convert(value: impl quote::ToTokens, to: TokenStream) -> TokenStream {
    quote! {{
        fn __cashews_convert<T: ::std::convert::TryInto<#to>>(value: T) -> #to {
            value.try_into().unwrap_or(0)
        }
        __cashews_convert(#value)
    }}
}
