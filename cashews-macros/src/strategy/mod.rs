//! One room per strategy, room for room with `cashews-core/src/strategy/`.
//!
//! Each room reads its attribute's options into a typed args struct
//! ([`Parse`]) and generates one layer of the decorated function
//! ([`Strategy::layer`]): statements that run before the body is made, and
//! the future wrapping the layer inside it. `expand.rs` stacks the layers;
//! `lib.rs` lists the attributes.

pub mod bloom;
pub mod cache;
pub mod circuit_breaker;
pub mod early;
pub mod failover;
pub mod hit;
pub mod invalidate;
pub mod iterator;
pub mod locked;
pub mod rate_limit;
pub mod soft;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use crate::args::Options;
use crate::function::{Function, Stored};
use crate::key::{self, Target};
use crate::ttl::TtlArg;

/// Reads an attribute's options.
pub trait Parse: Strategy + Sized + 'static {
    /// The options the attribute accepts besides [`key::COMMON`].
    const OPTIONS: &'static [&'static str];
    /// Whether the function must be `async fn`.
    const ASYNC: bool = true;
    /// Whether the attribute also works on a plain `fn` (its cached call is
    /// then driven on the calling thread).
    const SYNC: bool = false;
    /// The option a leading string literal stands for
    /// (`#[cache::invalidate("user:*")]` is `key = "user:*"`).
    const SHORTHAND: Option<&'static str> = None;
    fn parse(options: &Options, function: &Function) -> syn::Result<Self>;
}

/// Generates an attribute's layer.
pub trait Strategy {
    /// The layer around `cx.inner`.
    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code>;

    /// Whether the layer recomputes in the background (the body is then
    /// emitted as a closure the refresh can call again).
    fn refreshes(&self) -> bool {
        false
    }

    /// Whether a `Result`'s errors are stored too (`condition = with_errors`).
    fn stores_errors(&self) -> bool {
        false
    }

    /// The retry policy the body runs under (`retry = 3`), an expression of
    /// `Retry`; the body is then made again for each attempt.
    fn retry(&self, _krate: &TokenStream) -> Option<TokenStream> {
        None
    }

    /// Whether the layer reads the arguments after the body ran (a TTL
    /// function of the result): the body then borrows them instead of
    /// taking them.
    fn reads_args_after_body(&self) -> bool {
        false
    }

    /// Instead of a layer, the whole function (an attribute that does not
    /// stack, such as `iterator`).
    fn alone(
        &self,
        _function: &Function,
        _target: &Target,
        _krate: &TokenStream,
    ) -> Option<TokenStream> {
        None
    }
}

/// A layer's code.
#[derive(Default)]
pub struct Code {
    /// Statements run before the body is made, outermost layer first; they
    /// may borrow the arguments, and the outermost may return.
    pub prepare: TokenStream,
    /// The layer's future, wrapping `cx.inner`.
    pub future: TokenStream,
    /// Items emitted next to the function (`helpers`).
    pub items: TokenStream,
}

/// What a room knows while generating its layer.
pub struct Layer<'a> {
    pub index: usize,
    pub function: &'a Function,
    pub target: &'a Target,
    pub krate: &'a TokenStream,
    /// The future of the layer inside this one (the body for the last).
    pub inner: Ident,
    pub stored: Stored,
}

impl Layer<'_> {
    /// Whether this is the first attribute written (the outermost layer).
    pub fn outermost(&self) -> bool {
        self.index == 0
    }

    /// `cashews::__private`.
    pub fn private(&self) -> TokenStream {
        let krate = self.krate;
        quote!(#krate::__private)
    }

    /// The layer's `&Cache`.
    pub fn cache(&self) -> Ident {
        format_ident!("__cashews_cache_{}", self.index)
    }

    /// The layer's key, a `String`.
    pub fn key(&self) -> Ident {
        format_ident!("__cashews_key_{}", self.index)
    }

    /// The layer's `Option<Ttl>`.
    pub fn ttl_name(&self) -> Ident {
        format_ident!("__cashews_ttl_{}", self.index)
    }

    pub fn output(&self) -> TokenStream {
        self.function.output()
    }

    /// The adapter of the stored part.
    pub fn adapter(&self) -> TokenStream {
        self.stored.adapter(self.krate)
    }

    /// Statements binding the layer's cache and its key from `render`
    /// (statements appending to `__cashews_key_text`).
    pub fn bind(&self, render: &TokenStream) -> TokenStream {
        let (cache, key, p) = (self.cache(), self.key(), self.private());
        let cache_expr = self.target.cache(self.krate);
        let owned = key::owned(render);
        quote! {
            let #cache: &#p::Cache = #cache_expr;
            let #key: ::std::string::String = #owned;
        }
    }

    /// [`bind`](Self::bind) with the layer's key from its options.
    pub fn bind_key(&self) -> TokenStream {
        self.bind(&self.target.render(self.krate, self.function))
    }

    /// A statement binding the layer's TTL (`Option<Ttl>`).
    pub fn bind_ttl(&self, ttl: &TtlArg) -> TokenStream {
        let (name, p) = (self.ttl_name(), self.private());
        let value = ttl.code(self.krate, self.function, &self.cache(), &self.key());
        quote!(let #name: ::std::option::Option<#p::Ttl> = #value;)
    }

    /// Statements binding the layer's cache, key and TTL.
    pub fn bind_key_and_ttl(&self, ttl: &TtlArg) -> TokenStream {
        let bind = self.bind_key();
        let ttl = self.bind_ttl(ttl);
        quote!(#bind #ttl)
    }

    /// `.on(...)` for failover and soft: which errors the layer handles.
    pub fn on(&self, on: Option<&Expr>) -> TokenStream {
        on.map(|on| {
            let failed = self.failed(Some(on));
            quote!(.on(#failed))
        })
        .unwrap_or_default()
    }

    /// `run` (which names the TTL `ttl`) when the layer's TTL is valid, else
    /// the inner future: a layer whose call-time TTL is invalid is skipped.
    pub fn skippable(&self, run: TokenStream) -> TokenStream {
        let (ttl, inner, p) = (self.ttl_name(), &self.inner, self.private());
        quote! {
            match #ttl {
                ::std::option::Option::Some(ttl) => #p::Either::Left(#run),
                ::std::option::Option::None => #p::Either::Right(#inner),
            }
        }
    }

    /// How a rejected call (a limit, an open circuit, a lock not taken)
    /// answers: the rejection converted into the function's error.
    pub fn reject(&self) -> TokenStream {
        quote!(
            |__cashews_rejected| ::std::result::Result::Err(::std::convert::From::from(
                __cashews_rejected
            ))
        )
    }

    /// A predicate over the output: is it an error that `on` accepts (every
    /// error without `on`)?
    pub fn failed(&self, on: Option<&Expr>) -> TokenStream {
        let output = self.output();
        match on {
            Some(on) => {
                quote_spanned!(on.span()=> |__r: &#output| ::std::result::Result::as_ref(__r).err().is_some_and(#on))
            }
            None => quote!(|__r: &#output| ::std::result::Result::is_err(__r)),
        }
    }

    /// A `'static` recompute from owned copies of the arguments: a
    /// statement making it now (before the body takes the arguments), and
    /// the `.refresh(...)` modifier passing it.
    ///
    /// Nothing when `wanted` is false.
    pub fn refresh(&self, wanted: bool) -> (TokenStream, TokenStream) {
        if !wanted {
            return Default::default();
        }
        let p = self.private();
        let output = self.output();
        let copies = self.function.copies();
        let names: Vec<Ident> = (0..copies.len())
            .map(|i| format_ident!("__cashews_copy_{}", i))
            .collect();
        let refresh = format_ident!("__cashews_refresh_{}", self.index);
        let prepare = quote! {
            let #refresh: #p::strategy::Refresh<#output> = {
                let (#(#names,)*) = (#(#copies,)*);
                ::std::boxed::Box::new(move || {
                    ::std::boxed::Box::pin(__cashews_make(#(#names),*))
                })
            };
        };
        (prepare, quote!(.refresh(#refresh)))
    }
}
