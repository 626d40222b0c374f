//! `#[cache]`: the simple strategy (`Memo`), lone or stacked. Every
//! `#[cache]` layer counts its calls in a `FunctionStats`; the outermost
//! answers a memory hit before the body's future is made, an inner one
//! before its `Memo` runs.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprPath, Ident, ItemFn};

use super::{Code, Layer, Parse, Strategy};
use crate::args::{lit_str, Errors, Options};
use crate::function::{Function, Stored};
use crate::key::{self, Target};
use crate::template::Template;
use crate::ttl::{DurationArg, TtlArg};

pub struct Cache {
    ttl: TtlArg,
    /// How long an `Err` is stored (negative caching).
    negative_ttl: Option<TtlArg>,
    /// Whether this call is cached at all (evaluated per call).
    enabled: Option<Expr>,
    /// `retry = n`, `backoff`, `max_backoff`.
    retry: Option<RetryArgs>,
    /// `local`: results kept as themselves in process, never encoded.
    local: bool,
    tags: Vec<Template>,
    condition: Condition,
    time_condition: Option<DurationArg>,
    lock: bool,
    protected: bool,
    helpers: bool,
}

enum Condition {
    Always,
    NotNone,
    WithErrors,
    Custom(ExprPath),
}

impl Parse for Cache {
    const OPTIONS: &'static [&'static str] = &[
        "ttl",
        "tags",
        "condition",
        "time_condition",
        "lock",
        "protected",
        "helpers",
        "negative_ttl",
        "enabled",
        "expire_at",
        "retry",
        "backoff",
        "max_backoff",
        "max_size",
        "local",
    ];
    const SYNC: bool = true;

    fn parse(options: &Options, function: &Function) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let ttl = errors.check(lifetime(options));
        let tags = errors.check(tags(options, function)).unwrap_or_default();
        let condition = errors
            .check(condition(options))
            .unwrap_or(Condition::Always);
        let time_condition = errors.check(options.duration("time_condition")).flatten();
        let lock = errors.check(options.flag("lock", false)).unwrap_or(false);
        let protected = errors
            .check(options.flag("protected", true))
            .unwrap_or(true);
        let helpers = errors
            .check(options.flag("helpers", false))
            .unwrap_or(false);
        if helpers && function.item.sig.asyncness.is_none() {
            if let Some(option) = options.get("helpers") {
                errors.push(syn::Error::new(
                    option.name.span(),
                    "`helpers` are async functions: they need an `async fn` (on a plain fn, use the cache's own commands)",
                ));
            }
        }
        let negative_ttl = errors.check(negative_ttl(options, function)).flatten();
        let enabled = errors.check(options.expr("enabled")).flatten();
        let retry = errors.check(RetryArgs::parse(options, function)).flatten();
        let local = errors.check(options.flag("local", false)).unwrap_or(false);
        if local {
            // What a local result cannot have: serde-based or backend-side
            // options.
            for option in [
                "tags",
                "condition",
                "time_condition",
                "lock",
                "negative_ttl",
            ] {
                if let Some(opt) = options.get(option) {
                    errors.push(syn::Error::new(
                        opt.name.span(),
                        format!("`{option}` does not apply to `local` results (kept as themselves in process)"),
                    ));
                }
            }
            if let Some(TtlArg::Function(path)) = &ttl {
                errors.push(syn::Error::new_spanned(
                    path,
                    "a TTL function of the result does not apply to `local` results: give a TTL value",
                ));
            }
        }
        errors.finish()?;
        Ok(Cache {
            ttl: ttl.expect("no error"),
            negative_ttl,
            enabled,
            retry,
            local,
            tags,
            condition,
            time_condition,
            lock,
            protected,
            helpers,
        })
    }
}

fn tags(options: &Options, function: &Function) -> syn::Result<Vec<Template>> {
    let Some(expr) = options.value("tags")? else {
        return Ok(Vec::new());
    };
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(
            expr,
            "`tags` takes a list of templates: tags = [\"items\", \"page:{page}\"]",
        ));
    };
    array
        .elems
        .iter()
        .map(|e| Template::parse(lit_str(e, "tags")?, &function.scope()))
        .collect()
}

/// `retry = n` retries of an `Err`, pausing `backoff` (default 100 ms),
/// doubling up to `max_backoff` (default 10 s).
struct RetryArgs {
    retries: TokenStream,
    backoff: Option<DurationArg>,
    max_backoff: Option<DurationArg>,
}

impl RetryArgs {
    fn parse(options: &Options, function: &Function) -> syn::Result<Option<RetryArgs>> {
        let Some(retries) = options.integer("retry")? else {
            for dependent in ["backoff", "max_backoff"] {
                if let Some(value) = options.value(dependent)? {
                    return Err(syn::Error::new_spanned(
                        value,
                        format!("`{dependent}` paces retries: give `retry = n` too"),
                    ));
                }
            }
            return Ok(None);
        };
        if Stored::of(function.output_type(), false) != Stored::OkPart {
            return Err(syn::Error::new_spanned(
                options.value("retry")?,
                "`retry` retries an `Err`: the function must return `Result<T, E>`",
            ));
        }
        Ok(Some(RetryArgs {
            retries,
            backoff: options.duration("backoff")?,
            max_backoff: options.duration("max_backoff")?,
        }))
    }

    fn code(&self, krate: &TokenStream) -> TokenStream {
        let retries = &self.retries;
        let backoff = self.backoff.as_ref().map_or_else(
            || quote!(::std::time::Duration::from_millis(100)),
            |b| b.code(krate),
        );
        let mut policy =
            quote!(#krate::__private::strategy::Retry::new((#retries) as u32, #backoff));
        if let Some(max) = &self.max_backoff {
            let max = max.code(krate);
            policy.extend(quote!(.max_backoff(#max)));
        }
        policy
    }
}

/// `ttl`, or `expire_at` (one of them).
fn lifetime(options: &Options) -> syn::Result<TtlArg> {
    match options.value("expire_at")? {
        None => options.ttl(
            "ttl",
            "#[cache(ttl = \"1h\")] (how long results live), or #[cache(expire_at = \"00:00\")]",
        ),
        Some(at) => {
            if let Some(ttl) = options.value("ttl")? {
                return Err(syn::Error::new_spanned(
                    ttl,
                    "give `ttl` (how long a result lives) or `expire_at` (when it expires), not both",
                ));
            }
            TtlArg::parse_expire_at(at)
        }
    }
}

/// `negative_ttl`: only on a function returning a `Result` (its `Err` is
/// stored for this long, so it needs serde).
fn negative_ttl(options: &Options, function: &Function) -> syn::Result<Option<TtlArg>> {
    let Some(expr) = options.value("negative_ttl")? else {
        return Ok(None);
    };
    if Stored::of(function.output_type(), false) != Stored::OkPart {
        return Err(syn::Error::new_spanned(
            expr,
            "`negative_ttl` stores the `Err` of a function returning `Result<T, E>` (with `E: Serialize + Deserialize`)",
        ));
    }
    TtlArg::parse(expr, "negative_ttl").map(Some)
}

fn condition(options: &Options) -> syn::Result<Condition> {
    Ok(match options.value("condition")? {
        None => Condition::Always,
        Some(Expr::Path(p)) if p.path.is_ident("not_none") => Condition::NotNone,
        Some(Expr::Path(p)) if p.path.is_ident("with_errors") => Condition::WithErrors,
        Some(Expr::Path(p)) => Condition::Custom(p.clone()),
        Some(other) => {
            return Err(syn::Error::new_spanned(
                other,
                "`condition` takes not_none, with_errors, or the path of a fn(&Output) -> bool",
            ))
        }
    })
}

impl Strategy for Cache {
    fn stores_errors(&self) -> bool {
        matches!(self.condition, Condition::WithErrors) || self.negative_ttl.is_some()
    }

    fn retry(&self, krate: &TokenStream) -> Option<TokenStream> {
        self.retry.as_ref().map(|retry| retry.code(krate))
    }

    fn reads_args_after_body(&self) -> bool {
        matches!(self.ttl, TtlArg::Function(_))
    }

    fn layer(&self, cx: &Layer<'_>) -> syn::Result<Code> {
        let (p, krate) = (cx.private(), cx.krate);
        let (cache, key, output, adapter) = (cx.cache(), cx.key(), cx.output(), cx.adapter());
        let stats = format_ident!("__CASHEWS_STATS_{}", cx.index);
        let name = cx.function.name().to_string();
        let cache_expr = cx.target.cache(krate);
        let render = cx.target.render(krate, cx.function);
        let tags_name = format_ident!("__cashews_tags_{}", cx.index);
        let tags = self.tags.iter().map(|template| {
            let out = format_ident!("__cashews_tag");
            let render = template.render(krate, &out);
            quote!({
                let mut __cashews_tag_text = ::std::string::String::new();
                {
                    let #out = &mut __cashews_tag_text;
                    #render
                }
                __cashews_tag_text
            })
        });
        let stats_item = quote! {
            static #stats: #p::FunctionStats =
                #p::FunctionStats::new(concat!(module_path!(), "::", #name));
        };
        // `enabled = expr`: decided once per call, before anything is read.
        let enabled_name = format_ident!("__cashews_enabled_{}", cx.index);
        let (bind_enabled, enabled) = match &self.enabled {
            Some(expr) => (
                quote_spanned!(expr.span()=> let #enabled_name: bool = #expr;),
                quote!(#enabled_name),
            ),
            None => (TokenStream::new(), quote!(true)),
        };
        // A memory hit, answered before anything else: decoded bytes, or a
        // clone of a local result.
        let hit_of = |key: TokenStream| {
            if self.local {
                quote!(#p::strategy::local_value::<#output>(#cache, #key))
            } else {
                quote!({
                    #[allow(unused_imports)]
                    use #p::{DecodedHit as _, TypedHit as _};
                    (&#p::HitProbe::<#adapter, #output>::new()).hit(#cache, #key)
                })
            }
        };
        let hit_here = hit_of(quote!(__cashews_key_text));
        let hit_inner = hit_of(quote!(&#key));
        // The key is rendered into a reused buffer and copied out on a miss
        // only; the outermost layer answers a memory hit right here.
        let bind = if cx.outermost() {
            quote! {
                let #cache: &#p::Cache = #cache_expr;
                let #key: ::std::string::String = match #p::key::with_key_buffer(|__cashews_key_text| {
                    #render
                    if #enabled && !#p::bypassed() {
                        if let ::std::option::Option::Some(hit) =
                            #hit_here
                        {
                            return ::std::result::Result::Ok(hit);
                        }
                    }
                    ::std::result::Result::Err(::std::string::String::from(&**__cashews_key_text))
                }) {
                    ::std::result::Result::Ok(hit) => {
                        #stats.hit();
                        return hit;
                    }
                    ::std::result::Result::Err(key) => key,
                };
            }
        } else {
            cx.bind(&render)
        };
        // A TTL function of the result is asked once the result is there;
        // until then the memo's TTL is a placeholder it replaces.
        let ttl_name = cx.ttl_name();
        let ttl = match &self.ttl {
            TtlArg::Function(_) => {
                quote!(let #ttl_name: ::std::option::Option<#p::Ttl> = ::std::option::Option::Some(#p::Ttl::FOREVER);)
            }
            _ => cx.bind_ttl(&self.ttl),
        };
        // A disabled call skips the layer, as an invalid TTL does.
        let disable = self.enabled.as_ref().map(|_| {
            quote!(let #ttl_name: ::std::option::Option<#p::Ttl> = #ttl_name.filter(|_| #enabled_name);)
        });
        let negative_name = format_ident!("__cashews_negative_ttl_{}", cx.index);
        let negative = self.negative_ttl.as_ref().map(|negative| {
            let value = negative.code(krate, cx.function, &cache, &key);
            quote!(let #negative_name: ::std::option::Option<#p::Ttl> = #value;)
        });
        let pattern = cx.target.pattern(krate, cx.function);
        let remember = quote!(#stats.remember(#cache, || #pattern););
        let prepare = quote! {
            #stats_item
            #bind_enabled
            #bind
            #remember
            #ttl
            #disable
            #negative
            let #tags_name: ::std::vec::Vec<::std::string::String> = ::std::vec![#(#tags),*];
        };
        let memo = memo_new(krate, &output, quote!(#cache), quote!(#key), quote!(ttl));
        let mut modifiers = self.modifiers(krate);
        // The TTL chosen once the result is there: by a function of it, and
        // for an `Err` by `negative_ttl`.
        let ok_ttl = match &self.ttl {
            TtlArg::Function(path) => {
                let args = cx.function.args_by_ref();
                Some(quote_spanned! {path.span()=>
                    #p::result_ttl(
                        #path(__cashews_out, #(#args),*),
                        concat!(module_path!(), "::", #name),
                    )
                })
            }
            _ => None,
        };
        let chosen = match (self.negative_ttl.is_some(), ok_ttl) {
            (false, None) => None,
            (false, Some(ok)) => Some(ok),
            (true, ok) => {
                let ok = ok.unwrap_or_else(|| quote!(#ttl_name));
                Some(quote!(if #p::is_err(__cashews_out) { #negative_name } else { #ok }))
            }
        };
        if let Some(chosen) = chosen {
            modifiers.extend(quote!(.expire_with(|__cashews_out: &#output| #chosen)));
        }
        let inner = &cx.inner;
        let run = if self.local {
            let keep = if cx.stored == Stored::OkPart {
                quote!(|__cashews_out: &#output| !#p::is_err(__cashews_out))
            } else {
                quote!(|_: &#output| true)
            };
            cx.skippable(quote! {
                #p::strategy::local_memo(#cache, #key, ttl, #keep, &#stats, #inner)
            })
        } else {
            cx.skippable(quote! {
                #memo #modifiers
                    .tags(#tags_name)
                    .stats(&#stats)
                    .run::<#adapter>(#inner)
            })
        };
        let future = if cx.outermost() {
            run
        } else {
            quote! {
                async move {
                    if #enabled && !#p::bypassed() {
                        if let ::std::option::Option::Some(hit) =
                            #hit_inner
                        {
                            #stats.hit();
                            return hit;
                        }
                    }
                    #run.await
                }
            }
        };
        let items = if self.helpers {
            helpers(cx.function, cx.target, krate)
        } else {
            TokenStream::new()
        };
        Ok(Code {
            prepare,
            future,
            items,
        })
    }
}

impl Cache {
    fn modifiers(&self, krate: &TokenStream) -> TokenStream {
        let p = quote!(#krate::__private);
        let mut code = match &self.condition {
            Condition::NotNone => quote!(.condition(#p::Condition::NotNone)),
            Condition::Custom(path) => {
                quote_spanned!(path.span()=> .condition(#p::Condition::Custom(#path)))
            }
            Condition::Always | Condition::WithErrors => TokenStream::new(),
        };
        if let Some(threshold) = &self.time_condition {
            let threshold = threshold.code(krate);
            code.extend(quote!(.time_condition(#threshold)));
        }
        let (lock, protected) = (self.lock, self.protected);
        code.extend(quote!(.lock(#lock).protected(#protected)));
        code
    }
}

/// `Memo::new(cache, key, ttl)`, sharing a failed output with the callers
/// waiting on it when `output` is `Clone + Send + Sync` (decided by
/// autoref specialisation, so other outputs compile too).
fn memo_new(
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

/// With `helpers`: `key()`, `invalidate()`, `uncached()` and `cache_info()`
/// for a cached function — associated functions of a struct named like the
/// function for a free function, `name_key()`-style methods next to a
/// method. Opt-in, because trait impls take no extra items and an
/// associated function without `self` cannot hold a struct.
fn helpers(function: &Function, target: &Target, krate: &TokenStream) -> TokenStream {
    let ItemFn { vis, sig, .. } = &function.item;
    let name = function.name();
    let output = function.output();
    let key = key::owned(&target.render(krate, function));
    let pattern = target.pattern(krate, function);
    let cache = target.cache(krate);
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
    let doc_clear = format!(
        "Deletes every cached result of [`{name}`] (a scan of its keys); returns how many."
    );
    let clear_body = quote! {
        let __cashews_cache: &#krate::__private::Cache = #cache;
        let __cashews_pattern: ::std::string::String = #pattern;
        __cashews_cache.delete_match(&__cashews_pattern).await
    };
    let doc_expired = format!("Frees the expired entries of [`{name}`]'s cache now (the memory backend sweeps them in the background anyway); returns how many.");
    let expired_body = quote! {
        let __cashews_cache: &#krate::__private::Cache = #cache;
        __cashews_cache.remove_expired().await
    };
    let invalidate_body = quote! {
        #unused
        let __cashews_cache: &#krate::__private::Cache = #cache;
        let __cashews_key: ::std::string::String = #key;
        __cashews_cache.delete(&__cashews_key).await
    };
    if !function.has_self() {
        let doc = format!("Cache helpers of [`{name}`]: `{name}::key(..)`, `{name}::invalidate(..)`, `{name}::uncached(..)`, `{name}::cache_info()`, `{name}::cache_clear()`, `{name}::remove_expired()`.");
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
                    #invalidate_body
                }

                #[doc = #doc_uncached]
                #vis async fn uncached #impl_generics (#inputs) -> #output #where_clause {
                    #krate::__private::uncached(#name(#(#pass),*)).await
                }

                #[doc = #doc_info]
                #vis async fn cache_info() -> #krate::strategy::CacheInfo {
                    #info_body
                }

                #[doc = #doc_clear]
                #vis async fn cache_clear() -> #krate::Result<u64> {
                    #clear_body
                }

                #[doc = #doc_expired]
                #vis async fn remove_expired() -> #krate::Result<u64> {
                    #expired_body
                }
            }
        };
    }
    let key_fn = format_ident!("{}_key", name);
    let invalidate_fn = format_ident!("{}_invalidate", name);
    let uncached_fn = format_ident!("{}_uncached", name);
    let info_fn = format_ident!("{}_cache_info", name);
    let clear_fn = format_ident!("{}_cache_clear", name);
    let expired_fn = format_ident!("{}_remove_expired", name);
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
            #invalidate_body
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

        #[doc = #doc_clear]
        #[allow(dead_code)]
        #vis async fn #clear_fn(&self) -> #krate::Result<u64> {
            #clear_body
        }

        #[doc = #doc_expired]
        #[allow(dead_code)]
        #vis async fn #expired_fn(&self) -> #krate::Result<u64> {
            #expired_body
        }
    }
}
