//! The one options parser shared by every cache attribute.
//!
//! Options are `name`, `name = expr` or `crate = path`, separated by commas.
//! Each attribute declares the options it accepts; an unknown or repeated
//! option is an error spanned on its name, and every error found is reported.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

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
