//! Stacked strategies: `#[cache::failover] #[cache::early] #[cache] async fn`.
//!
//! The outermost attribute expands first and takes every other cache
//! attribute of the function with it, so the layers compose in the order
//! written: the first attribute is the outermost wrapper, the last one wraps
//! the function's body.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, Meta};

use crate::attr::{Errors, Options};
use crate::expand::{self, Function};
use crate::template::{Scope, Template};

/// A cache attribute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Cache,
    Failover,
    Hit,
    Early,
    Soft,
    Locked,
    RateLimit,
    SliceRateLimit,
    CircuitBreaker,
    Bloom,
    DualBloom,
    Invalidate,
    Iterator,
}

const COMMON: &[&str] = &["key", "prefix", "cache", "crate"];

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "cache" => Kind::Cache,
            "failover" => Kind::Failover,
            "hit" => Kind::Hit,
            "early" => Kind::Early,
            "soft" => Kind::Soft,
            "locked" => Kind::Locked,
            "rate_limit" => Kind::RateLimit,
            "slice_rate_limit" => Kind::SliceRateLimit,
            "circuit_breaker" => Kind::CircuitBreaker,
            "bloom" => Kind::Bloom,
            "dual_bloom" => Kind::DualBloom,
            "invalidate" => Kind::Invalidate,
            "iterator" => Kind::Iterator,
            _ => return None,
        })
    }

    /// The options this attribute accepts (beyond key, prefix, cache, crate).
    fn own_options(self) -> &'static [&'static str] {
        match self {
            Kind::Cache => expand::CACHE_OPTIONS,
            Kind::Failover => &["ttl", "on"],
            Kind::Hit => &["ttl", "cache_hits", "update_after", "background"],
            Kind::Early => &["ttl", "early_ttl", "background"],
            Kind::Soft => &["ttl", "soft_ttl", "on"],
            Kind::Locked => &["ttl", "wait", "step"],
            Kind::RateLimit => &["limit", "period", "ttl", "action", "on_backend_error"],
            Kind::SliceRateLimit => &["limit", "period", "action", "on_backend_error"],
            Kind::CircuitBreaker => &[
                "errors_rate",
                "period",
                "ttl",
                "half_open_ttl",
                "min_calls",
                "half_open_calls",
                "on",
                "on_backend_error",
            ],
            Kind::Bloom | Kind::DualBloom => &["capacity", "false_positives"],
            Kind::Invalidate => &[],
            Kind::Iterator => &["ttl"],
        }
    }

    fn options(self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = self.own_options().to_vec();
        for o in COMMON {
            if !all.contains(o) {
                all.push(o);
            }
        }
        all
    }
}

/// Whether `meta` is one of our cache attributes (`cache`, `cache::early`,
/// `cashews::cache::early`, ...), and which.
fn kind_of(meta: &Meta) -> Option<Kind> {
    let segments: Vec<String> = meta
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [.., last] if last == "cache" => Some(Kind::Cache),
        [.., parent, last] if parent == "cache" => Kind::from_name(last),
        _ => None,
    }
}

/// Expands attribute `kind` (with `attr` tokens) on `item`, with every other
/// cache attribute of `item` as inner layers.
pub fn expand(kind: Kind, attr: TokenStream, mut item: ItemFn) -> syn::Result<TokenStream> {
    let mut layers = vec![(kind, attr)];
    let mut kept = Vec::new();
    for attribute in std::mem::take(&mut item.attrs) {
        match kind_of(&attribute.meta) {
            Some(inner) => layers.push((
                inner,
                match attribute.meta {
                    Meta::List(list) => list.tokens,
                    _ => TokenStream::new(),
                },
            )),
            None => kept.push(attribute),
        }
    }
    item.attrs = kept;
    if layers.len() == 1 && kind == Kind::Cache {
        return expand::cache(layers.remove(0).1, item);
    }
    if kind == Kind::Iterator {
        if layers.len() > 1 {
            return Err(syn::Error::new(
                item.sig.ident.span(),
                "#[cache::iterator] caches a stream and does not stack with other cache attributes",
            ));
        }
        return iterator(layers.remove(0).1, item);
    }
    stacked(layers, item)
}

fn stacked(layers: Vec<(Kind, TokenStream)>, item: ItemFn) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let function = Function::parse(item, &mut errors);
    let parsed: Vec<(Kind, Options)> = layers
        .into_iter()
        .filter_map(|(kind, tokens)| {
            let tokens = invalidate_shorthand(kind, tokens);
            errors
                .check(Options::parse(tokens, &kind.options()))
                .map(|o| (kind, o))
        })
        .collect();
    errors.finish()?;
    let krate = parsed
        .iter()
        .find_map(|(_, o)| {
            o.value("crate")
                .ok()
                .flatten()
                .map(ToTokens::to_token_stream)
        })
        .unwrap_or_else(|| quote!(::cashews));
    let output = function.output();
    let names: Vec<_> = function.args.iter().map(|a| a.name.clone()).collect();
    let scope = Scope {
        args: &names,
        has_self: function.has_self,
        function: function.name(),
    };
    let mut prelude = TokenStream::new();
    let mut inner = format_ident!("__cashews_body");
    // Innermost first: each layer wraps the future of the one inside it.
    for (index, (kind, options)) in parsed.iter().enumerate().rev() {
        let layer = Layer {
            kind: *kind,
            options,
            function: &function,
            scope: &scope,
            krate: &krate,
            output: &output,
            index,
        };
        let wrapped = format_ident!("__cashews_layer_{}", index);
        if let Some((statements, future)) = errors.check(layer.code(&inner)) {
            prelude.extend(quote! {
                #statements
                let #wrapped = #future;
            });
        }
        inner = wrapped;
    }
    errors.finish()?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &function.item;
    let typed = expand::typed_body(&output, &block.to_token_stream());
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __cashews_body = async move { #typed };
            #prelude
            ::std::boxed::Box::pin(#inner).await
        }
    })
}

/// `#[cache::iterator]` on a function returning `impl Stream<Item = T>`.
fn iterator(attr: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let options = errors.check(Options::parse(attr, &Kind::Iterator.options()));
    let function = Function::parse_as(item, &mut errors, false);
    if function.item.sig.asyncness.is_some() {
        errors.push(syn::Error::new(
            function.item.sig.fn_token.span(),
            "#[cache::iterator] works on a (non-async) fn returning `impl Stream<Item = T>`",
        ));
    }
    errors.finish()?;
    let options = options.expect("parsed");
    let krate = match options.value("crate")? {
        Some(path) => path.to_token_stream(),
        None => quote!(::cashews),
    };
    let names: Vec<_> = function.args.iter().map(|a| a.name.clone()).collect();
    let scope = Scope {
        args: &names,
        has_self: function.has_self,
        function: function.name(),
    };
    let key = expand::owned_key(&expand::key_code(&options, &function, &scope, &krate)?);
    let Some(ttl) = options.value("ttl")? else {
        return Err(syn::Error::new(
            options.span,
            "missing `ttl`: e.g. ttl = \"10m\"",
        ));
    };
    let Some(nanos) = expand::literal_duration(ttl, "ttl")? else {
        return Err(syn::Error::new_spanned(
            ttl,
            "#[cache::iterator] takes a literal ttl (\"10m\", 600)",
        ));
    };
    let cache = match options.value("cache")? {
        Some(expr) => {
            quote_spanned!(expr.span()=> ::std::clone::Clone::clone(#krate::__private::as_cache(&#expr)))
        }
        None => quote!(::std::clone::Clone::clone(#krate::__private::default_cache())),
    };
    let adapter = if stream_of_results(&function) {
        quote!(OkPart)
    } else {
        quote!(Whole)
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &function.item;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __cashews_key: ::std::string::String = #key;
            #krate::__private::strategy::CachedStream::<_, _, #krate::__private::#adapter>::new(
                #cache,
                &__cashews_key,
                #krate::__private::Ttl::from_nanos_checked(#nanos),
                move || #block,
            )
        }
    })
}

/// Whether the function returns `impl Stream<Item = ...Result<..>>`.
fn stream_of_results(function: &Function) -> bool {
    let syn::ReturnType::Type(_, ty) = &function.item.sig.output else {
        return false;
    };
    let syn::Type::ImplTrait(bounds) = &**ty else {
        return false;
    };
    bounds.bounds.iter().any(|bound| {
        let syn::TypeParamBound::Trait(t) = bound else {
            return false;
        };
        let Some(last) = t.path.segments.last() else {
            return false;
        };
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return false;
        };
        args.args.iter().any(|arg| match arg {
            syn::GenericArgument::AssocType(assoc) if assoc.ident == "Item" => match &assoc.ty {
                syn::Type::Path(p) => p
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident.to_string().ends_with("Result")),
                _ => false,
            },
            _ => false,
        })
    })
}

/// `#[cache::invalidate("user:{id}:*")]` means `key = "user:{id}:*"`.
fn invalidate_shorthand(kind: Kind, tokens: TokenStream) -> TokenStream {
    let mut trees = tokens.clone().into_iter();
    match (kind, trees.next()) {
        (Kind::Invalidate, Some(TokenTree::Literal(lit))) if lit.to_string().starts_with('"') => {
            let rest: TokenStream = trees.collect();
            quote!(key = #lit #rest)
        }
        _ => tokens,
    }
}

struct Layer<'a> {
    kind: Kind,
    options: &'a Options,
    function: &'a Function,
    scope: &'a Scope<'a>,
    krate: &'a TokenStream,
    output: &'a TokenStream,
    index: usize,
}

impl Layer<'_> {
    /// Statements preparing the layer, and the expression of its future
    /// wrapping `inner`.
    fn code(&self, inner: &syn::Ident) -> syn::Result<(TokenStream, TokenStream)> {
        let (krate, output, o) = (self.krate, self.output, self.options);
        let key = format_ident!("__cashews_key_{}", self.index);
        let cache = format_ident!("__cashews_cache_{}", self.index);
        let key_statements = match self.kind {
            Kind::Invalidate => self.pattern()?,
            Kind::CircuitBreaker if o.get("key").is_none() => {
                let name = self.function.name().to_string();
                quote!(__cashews_key_text.push_str(concat!(module_path!(), "::", #name));)
            }
            _ => expand::key_code(o, self.function, self.scope, krate)?,
        };
        let key_value = expand::owned_key(&key_statements);
        let cache_expr = match o.value("cache")? {
            Some(expr) => quote_spanned!(expr.span()=> #krate::__private::as_cache(&#expr)),
            None => quote!(#krate::__private::default_cache()),
        };
        let mut prelude = quote! {
            let #cache: &#krate::__private::Cache = #cache_expr;
            let #key: ::std::string::String = #key_value;
        };
        let adapter = expand::adapter(o, self.function)?;
        let p = quote!(#krate::__private);
        let reject = quote!(|__cashews_rejected| ::std::result::Result::Err(
            ::std::convert::From::from(__cashews_rejected)
        ));
        let future = match self.kind {
            Kind::Cache => {
                if let Some(helpers) = o.get("helpers") {
                    return Err(syn::Error::new(
                        helpers.name.span(),
                        "`helpers` needs #[cache] alone on the function (stacked strategies have several keys)",
                    ));
                }
                let modifiers = expand::memo_modifiers(o, krate)?;
                let tags = expand::tags_code(o, self.scope, krate)?;
                let ttl_value = self.ttl(&mut prelude, true)?;
                let memo = expand::memo_new(
                    krate,
                    self.output,
                    quote!(#cache),
                    quote!(#key),
                    quote!(ttl),
                );
                skippable(
                    &ttl_value,
                    quote!(#memo #modifiers .tags(#tags) .run::<#p::#adapter>(#inner)),
                    inner,
                    &p,
                )
            }
            Kind::Failover | Kind::Soft => {
                let ttl_value = self.ttl(&mut prelude, true)?;
                let on = self.on_error()?;
                let runner = if self.kind == Kind::Failover {
                    quote!(#p::strategy::Failover::new(#cache, &#key, ttl))
                } else {
                    let soft = self
                        .duration("soft_ttl")?
                        .unwrap_or_else(|| quote!(#p::fraction(ttl, 0.33)));
                    quote!(#p::strategy::Soft::new(#cache, &#key, ttl, #soft))
                };
                skippable(
                    &ttl_value,
                    quote!(#runner #on .run::<#p::#adapter>(#inner)),
                    inner,
                    &p,
                )
            }
            Kind::Hit | Kind::Early => {
                let ttl_value = self.ttl(&mut prelude, true)?;
                let refresh = self
                    .refresh(matches!(self.kind, Kind::Early) || o.get("update_after").is_some())?;
                let runner = if self.kind == Kind::Hit {
                    let hits = self
                        .integer("cache_hits")?
                        .ok_or_else(|| self.missing("cache_hits", "cache_hits = 10"))?;
                    let update_after = self.integer("update_after")?.unwrap_or_else(|| quote!(0));
                    quote!(#p::strategy::Hit::new(#cache, &#key, ttl, #hits).update_after(#update_after))
                } else {
                    let early = self
                        .duration("early_ttl")?
                        .unwrap_or_else(|| quote!(#p::fraction(ttl, 0.33)));
                    quote!(#p::strategy::Early::new(#cache, &#key, ttl, #early))
                };
                skippable(
                    &ttl_value,
                    quote!(#runner #refresh .run::<#p::#adapter>(#inner)),
                    inner,
                    &p,
                )
            }
            Kind::Locked => {
                let ttl_value = self.ttl(&mut prelude, true)?;
                let wait = match o.get("wait") {
                    None => TokenStream::new(),
                    Some(opt) => match &opt.value {
                        None => TokenStream::new(),
                        Some(Expr::Lit(l)) if matches!(l.lit, Lit::Bool(_)) => {
                            if o.flag("wait", true)? {
                                TokenStream::new()
                            } else {
                                quote!(.wait(::std::time::Duration::ZERO))
                            }
                        }
                        Some(_) => {
                            let d = self.duration("wait")?.expect("given");
                            quote!(.wait(#d))
                        }
                    },
                };
                let step = self
                    .duration("step")?
                    .map(|d| quote!(.step(#d)))
                    .unwrap_or_default();
                skippable(
                    &ttl_value,
                    quote!(#p::strategy::Locked::new(#cache, &#key, ttl) #wait #step .run(#inner, #reject)),
                    inner,
                    &p,
                )
            }
            Kind::RateLimit | Kind::SliceRateLimit => {
                let limit = self
                    .integer("limit")?
                    .ok_or_else(|| self.missing("limit", "limit = 100"))?;
                let period = self
                    .duration("period")?
                    .ok_or_else(|| self.missing("period", "period = \"1m\""))?;
                let reject = match o.value("action")? {
                    Some(action) => {
                        let args = self.function.args_by_ref();
                        quote_spanned!(action.span()=> |_| #action(#(#args),*))
                    }
                    None => reject,
                };
                let on_backend_error = self.on_backend_error()?;
                let runner = if self.kind == Kind::RateLimit {
                    let ban = self
                        .duration("ttl")?
                        .map(|d| quote!(.ban(#d)))
                        .unwrap_or_default();
                    quote!(#p::strategy::RateLimit::new(#cache, &#key, #limit, #period) #ban #on_backend_error)
                } else {
                    quote!(#p::strategy::SliceRateLimit::new(#cache, &#key, #limit, #period) #on_backend_error)
                };
                quote!(#p::strategy::Limit::run(#runner, #inner, #reject))
            }
            Kind::CircuitBreaker => {
                let rate = self
                    .number("errors_rate")?
                    .ok_or_else(|| self.missing("errors_rate", "errors_rate = 50"))?;
                let period = self
                    .duration("period")?
                    .ok_or_else(|| self.missing("period", "period = \"1m\""))?;
                let ttl = self
                    .duration("ttl")?
                    .ok_or_else(|| self.missing("ttl", "ttl = \"30s\""))?;
                let mut runner = quote!(#p::strategy::CircuitBreaker::new(#cache, &#key, #rate as f64, #period, #ttl));
                if let Some(half) = self.duration("half_open_ttl")? {
                    runner.extend(quote!(.half_open_ttl(#half)));
                }
                if let Some(n) = self.integer("min_calls")? {
                    runner.extend(quote!(.min_calls(#n)));
                }
                if let Some(n) = self.integer("half_open_calls")? {
                    runner.extend(quote!(.half_open_calls(#n)));
                }
                runner.extend(self.on_backend_error()?);
                let failed = match o.value("on")? {
                    Some(on) => {
                        quote_spanned!(on.span()=> |__r: &#output| ::std::result::Result::as_ref(__r).err().is_some_and(#on))
                    }
                    None => quote!(|__r: &#output| ::std::result::Result::is_err(__r)),
                };
                quote!(#runner.run(#inner, #failed, #reject))
            }
            Kind::Bloom => {
                let capacity = self
                    .integer("capacity")?
                    .ok_or_else(|| self.missing("capacity", "capacity = 10000"))?;
                let rate = self
                    .number("false_positives")?
                    .unwrap_or_else(|| quote!(1.0));
                let name = self.function.name().to_string();
                quote! {
                    async move {
                        let filter = #p::strategy::BloomFilter::new(
                            #cache, concat!(module_path!(), "::", #name), #capacity, #rate as f64,
                        );
                        // Certainly absent: answer without calling.
                        if !filter.contains(&#key).await.unwrap_or(true) {
                            return false;
                        }
                        #inner.await
                    }
                }
            }
            Kind::DualBloom => {
                let capacity = self
                    .integer("capacity")?
                    .ok_or_else(|| self.missing("capacity", "capacity = 10000"))?;
                let rate = self
                    .number("false_positives")?
                    .unwrap_or_else(|| quote!(1.0));
                let name = self.function.name().to_string();
                quote! {
                    async move {
                        #p::strategy::DualBloom::new(#cache, concat!(module_path!(), "::", #name), #capacity, #rate as f64)
                            .run(&#key, #inner)
                            .await
                    }
                }
            }
            Kind::Iterator => unreachable!("expanded on its own"),
            Kind::Invalidate => {
                let succeeded = if adapter.to_string().contains("OkPart") {
                    quote!(|__r: &#output| ::std::result::Result::is_ok(__r))
                } else {
                    quote!(|_: &#output| true)
                };
                quote!(#p::strategy::invalidate(#cache, &#key, #inner, #succeeded))
            }
        };
        Ok((prelude, future))
    }

    fn missing(&self, option: &str, example: &str) -> syn::Error {
        syn::Error::new(
            self.options.span,
            format!("missing `{option}`: e.g. {example}"),
        )
    }

    /// Adds the layer's TTL to `prelude`; an expression of `Option<Ttl>`.
    fn ttl(&self, prelude: &mut TokenStream, required: bool) -> syn::Result<TokenStream> {
        let (krate, key) = (self.krate, format_ident!("__cashews_key_{}", self.index));
        let name = format_ident!("__cashews_ttl_{}", self.index);
        let Some(expr) = self.options.value("ttl")? else {
            if required {
                return Err(self.missing("ttl", "ttl = \"1h\""));
            }
            return Ok(quote!(::std::option::Option::None));
        };
        let value = match expand::literal_duration(expr, "ttl")? {
            Some(nanos) => {
                quote!(::std::option::Option::Some(#krate::__private::Ttl::from_nanos_checked(#nanos)))
            }
            None => {
                let value = match expr {
                    Expr::Path(path) => {
                        let args = self.function.args_by_ref();
                        quote_spanned!(path.span()=> #path(#(#args),*))
                    }
                    other => other.to_token_stream(),
                };
                quote!(#krate::__private::layer_ttl(#value, &#key))
            }
        };
        prelude.extend(quote!(let #name: ::std::option::Option<#krate::__private::Ttl> = #value;));
        Ok(quote!(#name))
    }

    /// A duration option: literal (checked now) or an expression.
    fn duration(&self, option: &str) -> syn::Result<Option<TokenStream>> {
        let krate = self.krate;
        Ok(match self.options.value(option)? {
            None => None,
            Some(expr) => Some(match expand::literal_duration(expr, option)? {
                Some(nanos) => quote!(::std::time::Duration::from_nanos(#nanos)),
                None => quote!(#krate::__private::duration_of(#expr)),
            }),
        })
    }

    fn integer(&self, option: &str) -> syn::Result<Option<TokenStream>> {
        Ok(match self.options.value(option)? {
            None => None,
            Some(Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            })) => {
                let value: u64 = i.base10_parse()?;
                Some(quote!(#value))
            }
            Some(other) => Some(quote!((#other) as u64)),
        })
    }

    fn number(&self, option: &str) -> syn::Result<Option<TokenStream>> {
        Ok(self.options.value(option)?.map(|e| quote!((#e))))
    }

    /// `.on_backend_error(...)` from `on_backend_error = allow | deny`.
    fn on_backend_error(&self) -> syn::Result<TokenStream> {
        let Some(expr) = self.options.value("on_backend_error")? else {
            return Ok(TokenStream::new());
        };
        let krate = self.krate;
        let variant = match expr {
            Expr::Path(path) if path.path.is_ident("allow") => quote!(Allow),
            Expr::Path(path) if path.path.is_ident("deny") => quote!(Deny),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`on_backend_error` is `allow` (run the call) or `deny` (reject it)",
                ))
            }
        };
        Ok(quote!(.on_backend_error(#krate::__private::strategy::OnBackendError::#variant)))
    }

    /// `.on(...)` for failover and soft: a predicate over the error.
    fn on_error(&self) -> syn::Result<TokenStream> {
        let output = self.output;
        Ok(match self.options.value("on")? {
            None => TokenStream::new(),
            Some(on) => quote_spanned! {on.span()=>
                .on(|__r: &#output| ::std::result::Result::as_ref(__r).err().is_some_and(#on))
            },
        })
    }

    /// The invalidation pattern: literal parts keep their glob meaning, values
    /// rendered into it are escaped so an argument cannot widen it.
    fn pattern(&self) -> syn::Result<TokenStream> {
        let Some(expr) = self.options.value("key")? else {
            return Err(self.missing("key", "#[cache::invalidate(\"user:{id}:*\")]"));
        };
        let lit = expand::lit_str(expr, "key")?;
        let out = format_ident!("__cashews_key_text");
        Ok(Template::parse(lit, self.scope)?
            .escaped()
            .render(self.krate, &out))
    }

    /// `.refresh(...)` for early and hit: a `'static` recompute built from
    /// owned copies of the arguments (`background = false` recomputes in line).
    fn refresh(&self, wanted: bool) -> syn::Result<TokenStream> {
        if !wanted || !self.options.flag("background", true)? {
            return Ok(TokenStream::new());
        }
        let (krate, output, function) = (self.krate, self.output, self.function);
        let mut owned = TokenStream::new();
        let mut restore = TokenStream::new();
        for (arg, ty) in function.args.iter().zip(&function.arg_types) {
            let name = &arg.name;
            let copy = format_ident!("__cashews_own_{}", name);
            if arg.by_ref {
                owned.extend(
                    quote_spanned!(arg.span=> let #copy = ::std::borrow::ToOwned::to_owned(#name);),
                );
                restore.extend(quote_spanned!(arg.span=> let #name: #ty = ::std::borrow::Borrow::borrow(&#copy);));
            } else {
                owned.extend(
                    quote_spanned!(arg.span=> let #copy = ::std::clone::Clone::clone(&#name);),
                );
                restore.extend(quote_spanned!(arg.span=> let #name = #copy;));
            }
        }
        if function.has_self {
            owned.extend(quote!(let __cashews_self = ::std::clone::Clone::clone(self);));
        }
        let typed =
            expand::typed_body(output, &replace_self(function.item.block.to_token_stream()));
        Ok(quote! {
            .refresh({
                #owned
                let refresh: #krate::__private::strategy::Refresh<#output> = ::std::boxed::Box::new(move || {
                    ::std::boxed::Box::pin(async move {
                        #restore
                        #typed
                    })
                });
                refresh
            })
        })
    }
}

/// `match ttl { Some(ttl) => Either::Left(run), None => Either::Right(inner) }`:
/// a layer whose call-time TTL is invalid is skipped.
fn skippable(
    ttl: &TokenStream,
    run: TokenStream,
    inner: &syn::Ident,
    private: &TokenStream,
) -> TokenStream {
    quote! {
        match #ttl {
            ::std::option::Option::Some(ttl) => #private::Either::Left(#run),
            ::std::option::Option::None => #private::Either::Right(#inner),
        }
    }
}

/// `self` → `__cashews_self` in a copied body (the refresh owns a clone).
fn replace_self(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(ident) if ident == "self" => {
                TokenTree::Ident(syn::Ident::new("__cashews_self", ident.span()))
            }
            TokenTree::Group(group) => {
                let mut replaced =
                    proc_macro2::Group::new(group.delimiter(), replace_self(group.stream()));
                replaced.set_span(group.span());
                TokenTree::Group(replaced)
            }
            other => other,
        })
        .collect()
}
