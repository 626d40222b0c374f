//! The one generator: every cache attribute of a function, lone or stacked,
//! becomes one layer of the same expansion.
//!
//! The outermost attribute expands first and takes every other cache
//! attribute of the function with it, so the layers compose in the order
//! written: the first attribute is the outermost wrapper, the last one wraps
//! the function's body. The expansion is, in order: the body's maker (when a
//! layer refreshes in the background), each layer's preparation (keys, TTLs,
//! copies; outermost first, so the outermost `#[cache]` answers a hit before
//! anything else), the body's future, and each layer's future around the
//! one inside it.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::{ItemFn, Meta};

use crate::args::{Errors, Options};
use crate::function::{Function, Stored};
use crate::key::{Target, COMMON};
use crate::strategy::{Layer, Strategy};

/// A cache attribute, as `lib.rs` lists it.
pub struct Attribute {
    pub name: &'static str,
    /// Its own options (every attribute also takes [`COMMON`]).
    pub options: &'static [&'static str],
    pub asynchronous: bool,
    /// Whether it also works on a plain `fn`.
    pub synchronous: bool,
    pub shorthand: Option<&'static str>,
    pub parse: fn(&Options, &Function) -> syn::Result<Box<dyn Strategy>>,
}

impl Attribute {
    fn accepted(&self) -> Vec<&'static str> {
        let mut all = self.options.to_vec();
        all.extend(COMMON.iter().filter(|o| !self.options.contains(o)));
        all
    }

    /// `#[cache::invalidate("user:*")]` means `key = "user:*"`.
    fn expand_shorthand(&self, tokens: TokenStream) -> TokenStream {
        let Some(option) = self.shorthand else {
            return tokens;
        };
        let mut trees = tokens.clone().into_iter();
        match trees.next() {
            Some(TokenTree::Literal(lit)) if lit.to_string().starts_with('"') => {
                let name = format_ident!("{}", option);
                let rest: TokenStream = trees.collect();
                quote!(#name = #lit #rest)
            }
            _ => tokens,
        }
    }
}

/// Which cache attribute `meta` is (`cache`, `cache::early`,
/// `cashews::cache::early`, ...), if any.
fn attribute_of(meta: &Meta) -> Option<&'static Attribute> {
    let segments: Vec<String> = meta
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [.., last] if last == "cache" => crate::attribute("cache"),
        [.., parent, last] if parent == "cache" => crate::attribute(last),
        _ => None,
    }
}

/// A parsed layer.
struct Parsed {
    strategy: Box<dyn Strategy>,
    target: Target,
}

/// Expands `attribute` (with `tokens`) on `item`, with every other cache
/// attribute of `item` as inner layers.
pub fn expand(
    attribute: &'static Attribute,
    tokens: TokenStream,
    mut item: ItemFn,
) -> syn::Result<TokenStream> {
    let mut written = vec![(attribute, tokens)];
    let mut kept = Vec::new();
    for attr in std::mem::take(&mut item.attrs) {
        match attribute_of(&attr.meta) {
            Some(inner) => written.push((
                inner,
                match attr.meta {
                    Meta::List(list) => list.tokens,
                    _ => TokenStream::new(),
                },
            )),
            None => kept.push(attr),
        }
    }
    item.attrs = kept;

    let mut errors = Errors::default();
    // A plain fn works when every attribute on it does.
    let synchronous = item.sig.asyncness.is_none() && written.iter().all(|(a, _)| a.synchronous);
    let asynchronous = !synchronous && written.iter().all(|(a, _)| a.asynchronous);
    let function = Function::parse(item, &mut errors, asynchronous);
    let mut krate = None;
    let mut layers = Vec::new();
    for (attribute, tokens) in written {
        let tokens = attribute.expand_shorthand(tokens);
        let Some(options) = errors.check(Options::parse(tokens, &attribute.accepted())) else {
            continue;
        };
        if krate.is_none() {
            krate = errors.check(options.krate()).flatten();
        }
        let target = Target::parse(&options, &function, &mut errors);
        if let Some(strategy) = errors.check((attribute.parse)(&options, &function)) {
            layers.push((attribute, Parsed { strategy, target }));
        }
    }
    errors.finish()?;
    let krate = krate.unwrap_or_else(|| quote!(::cashews));

    for (attribute, layer) in &layers {
        if let Some(whole) = layer.strategy.alone(&function, &layer.target, &krate) {
            if layers.len() > 1 {
                return Err(syn::Error::new(
                    function.name().span(),
                    format!(
                        "#[cache::{}] does not stack with other cache attributes",
                        attribute.name
                    ),
                ));
            }
            return Ok(whole);
        }
    }
    generate(&function, &layers, &krate, synchronous)
}

fn generate(
    function: &Function,
    layers: &[(&'static Attribute, Parsed)],
    krate: &TokenStream,
    synchronous: bool,
) -> syn::Result<TokenStream> {
    let refreshed = layers.iter().any(|(_, l)| l.strategy.refreshes());
    let borrowed = layers
        .iter()
        .any(|(_, l)| l.strategy.reads_args_after_body());
    let retries: Vec<TokenStream> = layers
        .iter()
        .filter_map(|(_, l)| l.strategy.retry(krate))
        .collect();
    let (maker, make_body) = body(function, krate, &retries, synchronous, refreshed, borrowed)?;
    let (output, p) = (function.output(), quote!(#krate::__private));
    let mut errors = Errors::default();
    let mut prepare = TokenStream::new();
    let mut futures = Vec::new();
    let mut items = TokenStream::new();
    for (index, (_, layer)) in layers.iter().enumerate() {
        let inner = if index + 1 == layers.len() {
            format_ident!("__cashews_body")
        } else {
            format_ident!("__cashews_layer_{}", index + 1)
        };
        let cx = Layer {
            index,
            function,
            target: &layer.target,
            krate,
            inner,
            stored: Stored::of(function.output_type(), layer.strategy.stores_errors()),
        };
        if let Some(code) = errors.check(layer.strategy.layer(&cx)) {
            prepare.extend(code.prepare);
            let name = format_ident!("__cashews_layer_{}", index);
            let future = code.future;
            futures.push(quote!(let #name = #future;));
            items.extend(code.items);
        }
    }
    errors.finish()?;
    // Innermost first: each layer wraps the future of the one inside it.
    futures.reverse();
    let ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    let mut sig = sig.clone();
    if !retries.is_empty() {
        // The attempts mutate their own copies, never the caller's.
        for input in &mut sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                if let syn::Pat::Ident(ident) = &mut *typed.pat {
                    ident.mutability = None;
                }
            }
        }
    }
    if synchronous {
        let block = &function.item.block;
        let capture = (!borrowed).then(|| quote!(move));
        let name = function.name().to_string();
        return Ok(quote! {
            #(#attrs)*
            #vis #sig {
                #maker
                #prepare
                let __cashews_in_process = __cashews_cache_0.in_process(&__cashews_key_0);
                #make_body
                #(#futures)*
                #p::strategy::drive(
                    concat!(module_path!(), "::", #name),
                    __cashews_in_process,
                    &__cashews_slot,
                    __cashews_layer_0,
                    #capture || -> #output #block,
                )
            }
            #items
        });
    }
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #maker
            #prepare
            #make_body
            #(#futures)*
            // Boxed: the miss path's state stays out of this function's future.
            ::std::boxed::Box::pin(__cashews_layer_0).await
        }
        #items
    })
}

/// What makes the body and the statement making its future, the one choice
/// between the four forms: a stand-in run on the calling thread (a plain
/// fn), attempts made again for `retry`, a maker a background refresh calls
/// again, or the body's own future (borrowing the arguments a layer reads
/// after it).
fn body(
    function: &Function,
    krate: &TokenStream,
    retries: &[TokenStream],
    synchronous: bool,
    refreshed: bool,
    borrowed: bool,
) -> syn::Result<(TokenStream, TokenStream)> {
    let fail = |message: &str| Err(syn::Error::new(function.name().span(), message));
    if retries.len() > 1 {
        return fail(
            "`retry` is given on more than one attribute: the body is retried once, give it on one",
        );
    }
    if synchronous && !retries.is_empty() {
        return fail("`retry` works on async functions only");
    }
    if refreshed && !retries.is_empty() {
        return fail("`retry` does not combine with a background refresh (early, hit)");
    }
    if refreshed && borrowed {
        return fail("a TTL function of the result reads the arguments after the body, which a background refresh (early, hit) takes: give the refreshing layer a TTL value");
    }
    let (output, p) = (function.output(), quote!(#krate::__private));
    if synchronous {
        return Ok((
            quote!(let __cashews_slot = #p::strategy::SyncBody::<#output>::new();),
            quote!(let __cashews_body = __cashews_slot.future();),
        ));
    }
    if let Some(policy) = retries.first() {
        // Each attempt makes the body again from fresh copies of the owned
        // arguments (the caller's stay, for the layers to read).
        let attempt = function.attempt()?;
        return Ok((
            quote!(let __cashews_retry: #p::strategy::Retry = #policy;),
            quote! {
                #attempt
                let __cashews_body = __cashews_retry.run(__cashews_attempt);
            },
        ));
    }
    function.body(refreshed, borrowed)
}
