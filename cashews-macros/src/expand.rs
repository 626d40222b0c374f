//! Code generation for `#[cache]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, Lit, LitStr, Pat, ReturnType, Type};

use crate::attr::{Errors, Options};
use crate::template::{render_arg, render_escaped, Scope, Template};

#[path = "../../cashews-core/src/ttl_grammar.rs"]
mod ttl_grammar;

/// Options of `#[cache]`.
pub const CACHE_OPTIONS: &[&str] = &[
    "ttl",
    "key",
    "prefix",
    "tags",
    "condition",
    "time_condition",
    "lock",
    "protected",
    "cache",
    "crate",
    "skip",
    "helpers",
];

/// An argument of the decorated function.
pub(crate) struct Arg {
    pub name: Ident,
    pub by_ref: bool,
    pub span: Span,
}

/// What the expansion knows about the decorated function.
pub(crate) struct Function {
    pub item: ItemFn,
    pub args: Vec<Arg>,
    pub arg_types: Vec<Type>,
    pub has_self: bool,
}

impl Function {
    pub fn parse(item: ItemFn, errors: &mut Errors) -> Function {
        Function::parse_as(item, errors, true)
    }

    /// Parses the function; `asynchronous`: whether it must be an `async fn`.
    pub fn parse_as(item: ItemFn, errors: &mut Errors, asynchronous: bool) -> Function {
        if asynchronous && item.sig.asyncness.is_none() {
            errors.push(syn::Error::new(
                item.sig.fn_token.span(),
                "#[cache] works on async functions only: make this `async fn`",
            ));
        }
        let mut args = Vec::new();
        let mut arg_types = Vec::new();
        let mut has_self = false;
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(_) => has_self = true,
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(p) => {
                        args.push(Arg {
                            name: p.ident.clone(),
                            by_ref: matches!(&*typed.ty, Type::Reference(_)),
                            span: typed.pat.span(),
                        });
                        arg_types.push((*typed.ty).clone());
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "#[cache] needs a plain name for every argument (destructure inside the body)",
                    )),
                },
            }
        }
        Function {
            item,
            args,
            arg_types,
            has_self,
        }
    }

    pub fn name(&self) -> &Ident {
        &self.item.sig.ident
    }

    pub fn output(&self) -> TokenStream {
        match &self.item.sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => ty.to_token_stream(),
        }
    }

    /// Arguments as a TTL or condition function receives them: references
    /// as they are, owned values by reference.
    pub fn args_by_ref(&self) -> Vec<TokenStream> {
        self.args
            .iter()
            .map(|a| {
                let name = &a.name;
                if a.by_ref {
                    quote!(#name)
                } else {
                    quote!(&#name)
                }
            })
            .collect()
    }
}

/// Expands a lone `#[cache(...)]` on `item` (with the hit fast path).
pub(crate) fn cache(attr: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let options = errors.check(Options::parse(attr, CACHE_OPTIONS));
    let function = Function::parse(item, &mut errors);
    let Some(options) = options else {
        errors.finish()?;
        unreachable!("options failed to parse")
    };
    let krate = match options.value("crate") {
        Ok(Some(path)) => path.to_token_stream(),
        Ok(None) => quote!(::cashews),
        Err(e) => {
            errors.push(e);
            quote!(::cashews)
        }
    };
    let scope = Scope {
        args: &function
            .args
            .iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>(),
        has_self: function.has_self,
        function: function.name(),
    };
    let key_statements = errors
        .check(key_code(&options, &function, &scope, &krate))
        .unwrap_or_default();
    let key = owned_key(&key_statements);
    let ttl = errors
        .check(ttl_code(&options, &function, &krate))
        .unwrap_or_default();
    let tags = errors
        .check(tags_code(&options, &scope, &krate))
        .unwrap_or_default();
    let modifiers = errors
        .check(memo_modifiers(&options, &krate))
        .unwrap_or_default();
    let adapter = errors
        .check(adapter(&options, &function))
        .unwrap_or_else(|| quote!(Whole));
    let helpers = errors
        .check(options.flag("helpers", false))
        .unwrap_or(false);
    let pattern = errors
        .check(pattern_code(&options, &function, &scope, &krate))
        .unwrap_or_default();
    let cache = match options.value("cache") {
        Ok(Some(expr)) => quote_spanned!(expr.span()=> #krate::__private::as_cache(&#expr)),
        Ok(None) => quote!(#krate::__private::default_cache()),
        Err(e) => {
            errors.push(e);
            TokenStream::new()
        }
    };
    errors.finish()?;

    let output = function.output();
    let memo = memo_new(
        &krate,
        &output,
        quote!(__cashews_cache),
        quote!(__cashews_key),
        quote!(__cashews_ttl),
    );
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &function.item;
    let typed = typed_body(&output, &block.to_token_stream());
    let body = quote! {
        let __cashews_body = async move { #typed };
    };
    let render_key = key_statements.clone();
    let stats_name = function.name().to_string();
    let expanded = quote! {
        #(#attrs)*
        #vis #sig {
            static __CASHEWS_STATS: #krate::__private::FunctionStats =
                #krate::__private::FunctionStats::new(concat!(module_path!(), "::", #stats_name));
            let __cashews_cache: &#krate::__private::Cache = #cache;
            // The hit path renders the key into a reused buffer and answers
            // from the backend's memory; the key is copied out only on a miss.
            let __cashews_key: ::std::string::String = match #krate::__private::key::with_key_buffer(|__cashews_key_text| {
                #render_key
                if !#krate::__private::bypassed() {
                    if let ::std::option::Option::Some(hit) = #krate::__private::local_hit::<#krate::__private::#adapter, #output>(
                        __cashews_cache,
                        __cashews_key_text,
                    ) {
                        return ::std::result::Result::Ok(hit);
                    }
                }
                ::std::result::Result::Err(::std::string::String::from(&**__cashews_key_text))
            }) {
                ::std::result::Result::Ok(hit) => {
                    __CASHEWS_STATS.hit();
                    return hit;
                }
                ::std::result::Result::Err(key) => key,
            };
            #body
            let __cashews_ttl: #krate::__private::Ttl = #ttl;
            // Boxed: the miss path's state stays out of this function's future.
            ::std::boxed::Box::pin(
                #memo
                    #modifiers
                    .tags(#tags)
                    .stats(&__CASHEWS_STATS)
                    .run::<#krate::__private::#adapter>(__cashews_body),
            )
            .await
        }
    };
    let companions = companions(&function, &key, &pattern, &cache, &krate, helpers);
    Ok(quote!(#expanded #companions))
}

/// With `helpers`: `key()`, `invalidate()` and `uncached()` for a cached
/// function — associated functions of a struct named like the function for
/// a free function, `name_key()`-style methods next to a method. Opt-in,
/// because trait impls take no extra items and an associated function
/// without `self` cannot hold a struct.
fn companions(
    function: &Function,
    key: &TokenStream,
    pattern: &TokenStream,
    cache: &TokenStream,
    krate: &TokenStream,
    helpers: bool,
) -> TokenStream {
    let ItemFn { vis, sig, .. } = &function.item;
    let name = function.name();
    let output = function.output();
    let (impl_generics, _, where_clause) = sig.generics.split_for_impl();
    let inputs = &sig.inputs;
    let pass: Vec<&Ident> = function.args.iter().map(|a| &a.name).collect();
    let unused = quote!(#(let _ = &#pass;)*);
    let doc_key = format!("The cache key of a call of [`{name}`].");
    let doc_invalidate = format!(
        "Deletes the cached result of a call of [`{name}`]; returns whether it was cached."
    );
    let doc_uncached = format!("Calls [`{name}`] without reading or writing the cache (cached calls it makes still use it).");
    let doc_info = format!("Hits and misses of [`{name}`] in this process, and how many of its results the cache holds now (a scan of its keys).");
    let stats_name = name.to_string();
    let info_body = quote! {
        let __cashews_cache: &#krate::__private::Cache = #cache;
        let __cashews_pattern: ::std::string::String = #pattern;
        #krate::__private::cache_info(
            __cashews_cache,
            concat!(module_path!(), "::", #stats_name),
            &__cashews_pattern,
        )
        .await
    };
    if !helpers {
        return TokenStream::new();
    }
    if !function.has_self {
        let doc = format!("Cache helpers of [`{name}`]: `{name}::key(..)`, `{name}::invalidate(..)`, `{name}::uncached(..)`, `{name}::cache_info()`.");
        return quote! {
            #[doc = #doc]
            #[allow(non_camel_case_types, dead_code)]
            #vis struct #name {}

            #[allow(dead_code)]
            impl #name {
                #[doc = #doc_key]
                #vis fn key #impl_generics (#inputs) -> ::std::string::String #where_clause {
                    #unused
                    #key
                }

                #[doc = #doc_invalidate]
                #vis async fn invalidate #impl_generics (#inputs) -> #krate::Result<bool> #where_clause {
                    #unused
                    let __cashews_cache: &#krate::__private::Cache = #cache;
                    let __cashews_key: ::std::string::String = #key;
                    __cashews_cache.delete(&__cashews_key).await
                }

                #[doc = #doc_uncached]
                #vis async fn uncached #impl_generics (#inputs) -> #output #where_clause {
                    #krate::__private::uncached(#name(#(#pass),*)).await
                }

                #[doc = #doc_info]
                #vis async fn cache_info() -> #krate::strategy::CacheInfo {
                    #info_body
                }
            }
        };
    }
    let key_fn = format_ident!("{}_key", name);
    let invalidate_fn = format_ident!("{}_invalidate", name);
    let uncached_fn = format_ident!("{}_uncached", name);
    let info_fn = format_ident!("{}_cache_info", name);
    quote! {
        #[doc = #doc_key]
        #[allow(dead_code)]
        #vis fn #key_fn #impl_generics (#inputs) -> ::std::string::String #where_clause {
            #unused
            #key
        }

        #[doc = #doc_invalidate]
        #[allow(dead_code)]
        #vis async fn #invalidate_fn #impl_generics (#inputs) -> #krate::Result<bool> #where_clause {
            #unused
            let __cashews_cache: &#krate::__private::Cache = #cache;
            let __cashews_key: ::std::string::String = #key;
            __cashews_cache.delete(&__cashews_key).await
        }

        #[doc = #doc_uncached]
        #[allow(dead_code)]
        #vis async fn #uncached_fn #impl_generics (#inputs) -> #output #where_clause {
            #krate::__private::uncached(self.#name(#(#pass),*)).await
        }

        #[doc = #doc_info]
        #[allow(dead_code)]
        #vis async fn #info_fn(&self) -> #krate::strategy::CacheInfo {
            #info_body
        }
    }
}

/// The function's body as the statements of an `async move` block whose
/// output type is the function's (a never-taken `return` of that type fixes
/// it, so `?` and `return` inside the body mean what they meant).
pub(crate) fn typed_body(output: &TokenStream, block: &TokenStream) -> TokenStream {
    quote! {
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
        if false {
            let __cashews_return: #output = loop {};
            return __cashews_return;
        }
        #block
    }
}

/// An expression of type `String` running key `statements` (which append to
/// `__cashews_key_text: &mut String`).
pub(crate) fn owned_key(statements: &TokenStream) -> TokenStream {
    quote! {{
        let mut __cashews_key_owned = ::std::string::String::with_capacity(64);
        {
            let __cashews_key_text = &mut __cashews_key_owned;
            #statements
        }
        __cashews_key_owned
    }}
}

/// Statements appending the key to `__cashews_key_text` (a `&mut String`).
pub(crate) fn key_code(
    options: &Options,
    function: &Function,
    scope: &Scope<'_>,
    krate: &TokenStream,
) -> syn::Result<TokenStream> {
    let out = format_ident!("__cashews_key_text");
    let prefix = match options.value("prefix")? {
        None => TokenStream::new(),
        Some(expr) => {
            let lit = lit_str(expr, "prefix")?;
            let prefix = format!("{}:", lit.value());
            quote!(#out.push_str(#prefix);)
        }
    };
    let skip = skip_list(options, function)?;
    let body = match options.value("key")? {
        Some(expr) => {
            if let Some(skip) = options.get("skip") {
                return Err(syn::Error::new(
                    skip.name.span(),
                    "`skip` applies to the default key; a `key` template names what it uses",
                ));
            }
            let template = Template::parse(lit_str(expr, "key")?, scope)?;
            template.render(krate, &out)
        }
        None => {
            let name = function.name().to_string();
            let head = if function.has_self {
                quote! {
                    #out.push_str(::std::any::type_name::<Self>());
                    #out.push_str(concat!("::", #name));
                }
            } else {
                quote!(#out.push_str(concat!(module_path!(), "::", #name));)
            };
            let parts = function
                .args
                .iter()
                .filter(|a| !skip.contains(&a.name))
                .map(|a| {
                    let label = format!(":{}:", a.name);
                    let name = &a.name;
                    let part = format_ident!("__cashews_value", span = a.span);
                    let write = render_arg(krate, &part, &quote_spanned!(a.span=> #name), a.span);
                    let render = render_escaped(krate, &out, &part, &write, false, a.span);
                    quote!(#out.push_str(#label); #render)
                });
            quote!(#head #(#parts)*)
        }
    };
    Ok(quote! {
        #prefix
        #body
    })
}

/// An expression (a `String`) of the glob matching every key of the
/// function: the template's text with `*` for each placeholder, or the
/// default key's head followed by `:*` when it has arguments.
fn pattern_code(
    options: &Options,
    function: &Function,
    scope: &Scope<'_>,
    krate: &TokenStream,
) -> syn::Result<TokenStream> {
    let prefix = match options.value("prefix")? {
        None => String::new(),
        Some(expr) => format!("{}:", lit_str(expr, "prefix")?.value()),
    };
    let prefix = quote!(#krate::__private::glob::escape(#prefix));
    if let Some(expr) = options.value("key")? {
        let pattern = Template::parse(lit_str(expr, "key")?, scope)?.pattern(krate);
        return Ok(quote!(#prefix + &#pattern));
    }
    let skip = skip_list(options, function)?;
    let tail = if function.args.iter().any(|a| !skip.contains(&a.name)) {
        ":*"
    } else {
        ""
    };
    let name = function.name().to_string();
    let head = if function.has_self {
        quote!(::std::format!("{}::{}", ::std::any::type_name::<Self>(), #name))
    } else {
        quote!(::std::string::String::from(
            concat!(module_path!(), "::", #name)
        ))
    };
    Ok(quote!(
        ::std::format!("{}{}{}", #prefix, #krate::__private::glob::escape(&#head), #tail)
    ))
}

fn skip_list(options: &Options, function: &Function) -> syn::Result<Vec<Ident>> {
    let Some(expr) = options.value("skip")? else {
        return Ok(Vec::new());
    };
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(
            expr,
            "`skip` takes a list of argument names: skip = [db, client]",
        ));
    };
    array
        .elems
        .iter()
        .map(|e| match e {
            Expr::Path(p)
                if p.path
                    .get_ident()
                    .is_some_and(|i| function.args.iter().any(|a| &a.name == i)) =>
            {
                Ok(p.path.get_ident().cloned().expect("checked"))
            }
            other => Err(syn::Error::new_spanned(
                other,
                "not an argument of this function",
            )),
        })
        .collect()
}

/// An expression of type `Ttl` (or an early return computing without cache).
fn ttl_code(
    options: &Options,
    function: &Function,
    krate: &TokenStream,
) -> syn::Result<TokenStream> {
    let Some(expr) = options.value("ttl")? else {
        return Err(syn::Error::new(
            options.span,
            "missing `ttl`: say how long results live, e.g. #[cache(ttl = \"1h\")]",
        ));
    };
    let value = match literal_duration(expr, "ttl")? {
        Some(nanos) => return Ok(quote!(#krate::__private::Ttl::from_nanos_checked(#nanos))),
        None => match expr {
            Expr::Path(path) => {
                let args = function.args_by_ref();
                quote_spanned!(path.span()=> #path(#(#args),*))
            }
            other => other.to_token_stream(),
        },
    };
    Ok(quote! {
        match #krate::__private::IntoTtl::into_ttl(#value) {
            ::std::result::Result::Ok(ttl) => ttl,
            ::std::result::Result::Err(error) => {
                #krate::__private::invalid_ttl(&__cashews_key, &error);
                return __cashews_body.await;
            }
        }
    })
}

/// Checks a literal duration at compile time: `Some(nanoseconds)`, or
/// `None` for a non-literal expression.
pub(crate) fn literal_duration(expr: &Expr, option: &str) -> syn::Result<Option<u64>> {
    let Expr::Lit(lit) = expr else {
        return Ok(None);
    };
    let bad = |reason: &str| syn::Error::new_spanned(lit, format!("invalid `{option}`: {reason}"));
    let duration = match &lit.lit {
        Lit::Str(s) => ttl_grammar::parse(&s.value())
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

pub(crate) fn tags_code(
    options: &Options,
    scope: &Scope<'_>,
    krate: &TokenStream,
) -> syn::Result<TokenStream> {
    let Some(expr) = options.value("tags")? else {
        return Ok(quote!(::std::vec::Vec::new()));
    };
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(
            expr,
            "`tags` takes a list of templates: tags = [\"items\", \"page:{page}\"]",
        ));
    };
    let out = format_ident!("__cashews_tag");
    let tags = array
        .elems
        .iter()
        .map(|e| {
            let render = Template::parse(lit_str(e, "tags")?, scope)?.render(krate, &out);
            Ok(quote!({
                let mut __cashews_tag_text = ::std::string::String::new();
                {
                    let #out = &mut __cashews_tag_text;
                    #render
                }
                __cashews_tag_text
            }))
        })
        .collect::<syn::Result<Vec<_>>>()?;
    Ok(quote!(::std::vec![#(#tags),*]))
}

/// `Memo::new(cache, key, ttl)`, sharing a failed output with the callers
/// waiting on it when `output` is `Clone + Send + Sync` (decided by
/// autoref specialisation, so other outputs compile too).
pub(crate) fn memo_new(
    krate: &TokenStream,
    output: &TokenStream,
    cache: TokenStream,
    key: TokenStream,
    ttl: TokenStream,
) -> TokenStream {
    let strategy = quote!(#krate::__private::strategy);
    quote! {{
        #[allow(unused_imports)]
        use #strategy::{ShareClonedFailures as _, ShareNoFailures as _};
        #[allow(clippy::needless_borrow)]
        (&&#strategy::ShareProbe::<#output>::new())
            .share(#krate::__private::Memo::new(#cache, #key, #ttl))
    }}
}

pub(crate) fn memo_modifiers(options: &Options, krate: &TokenStream) -> syn::Result<TokenStream> {
    let mut code = TokenStream::new();
    if let Some(expr) = options.value("condition")? {
        code.extend(match expr {
            Expr::Path(p) if p.path.is_ident("not_none") => {
                quote!(.condition(#krate::__private::Condition::NotNone))
            }
            Expr::Path(p) if p.path.is_ident("with_errors") => TokenStream::new(),
            Expr::Path(p) => {
                quote_spanned!(p.span()=> .condition(#krate::__private::Condition::Custom(#p)))
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`condition` takes not_none, with_errors, or the path of a fn(&Output) -> bool",
                ))
            }
        });
    }
    if let Some(expr) = options.value("time_condition")? {
        let threshold = match literal_duration(expr, "time_condition")? {
            Some(nanos) => quote!(::std::time::Duration::from_nanos(#nanos)),
            None => quote!(#krate::__private::duration_of(#expr)),
        };
        code.extend(quote!(.time_condition(#threshold)));
    }
    let lock = options.flag("lock", false)?;
    let protected = options.flag("protected", true)?;
    code.extend(quote!(.lock(#lock).protected(#protected)));
    Ok(code)
}

/// Which part of the output is stored: the `Ok` value of a `Result` (unless
/// `condition = with_errors`), else the whole output.
pub(crate) fn adapter(options: &Options, function: &Function) -> syn::Result<TokenStream> {
    let with_errors = matches!(options.value("condition")?, Some(Expr::Path(p)) if p.path.is_ident("with_errors"));
    let is_result = match &function.item.sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident.to_string().ends_with("Result")),
            _ => false,
        },
        ReturnType::Default => false,
    };
    Ok(if is_result && !with_errors {
        quote!(OkPart)
    } else {
        quote!(Whole)
    })
}

pub(crate) fn lit_str<'e>(expr: &'e Expr, option: &str) -> syn::Result<&'e LitStr> {
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
