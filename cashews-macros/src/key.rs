//! Where a layer keeps its entry: the cache (`cache = ...`) and the key
//! (`key`, `prefix`, `skip`), the options every attribute shares.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr};

use crate::args::{Errors, Options};
use crate::function::Function;
use crate::template::{render_arg, render_escaped, Template};

/// `max_size = n`, which replaces `cache`.
fn max_size(options: &Options, function: &Function) -> syn::Result<Option<(Expr, String)>> {
    let Some(size) = options.value("max_size")? else {
        return Ok(None);
    };
    if let Some(cache) = options.value("cache")? {
        return Err(syn::Error::new_spanned(
            cache,
            "`max_size` gives the function a store of its own: drop `cache`, or bound that cache (mem://?size=N)",
        ));
    }
    Ok(Some((size.clone(), function.name().to_string())))
}

/// The options every attribute accepts.
pub const COMMON: &[&str] = &["key", "prefix", "skip", "cache", "crate"];

/// A layer's cache and key.
pub struct Target {
    pub key: Option<Template>,
    pub prefix: Option<String>,
    pub skip: Vec<Ident>,
    pub cache: Option<Expr>,
    /// `max_size = n` (on `#[cache]`): the function's own bounded
    /// in-process store, in place of a cache.
    pub max_size: Option<(Expr, String)>,
}

impl Target {
    pub fn parse(options: &Options, function: &Function, errors: &mut Errors) -> Target {
        let scope = function.scope();
        let key_lit: Option<LitStr> = errors.check(options.lit_str("key")).flatten();
        let skip = errors
            .check(skip_list(options, function))
            .unwrap_or_default();
        if let (Some(_), Some(opt)) = (&key_lit, options.get("skip")) {
            errors.push(syn::Error::new(
                opt.name.span(),
                "`skip` applies to the default key; a `key` template names what it uses",
            ));
        }
        Target {
            key: key_lit
                .as_ref()
                .and_then(|lit| errors.check(Template::parse(lit, &scope))),
            prefix: errors
                .check(options.lit_str("prefix"))
                .flatten()
                .map(|lit| format!("{}:", lit.value())),
            skip,
            cache: errors.check(options.expr("cache")).flatten(),
            max_size: errors.check(max_size(options, function)).flatten(),
        }
    }

    /// An expression of `&Cache`.
    pub fn cache(&self, krate: &TokenStream) -> TokenStream {
        if let Some((size, name)) = &self.max_size {
            let size = crate::args::convert(size, quote!(usize));
            // One store per function, found by its path and the line of its
            // attribute (two methods of one name in one module differ by
            // line; a method's helpers and its calls share it); each site
            // keeps it at hand.
            return quote! {{
                static __CASHEWS_STORE: ::std::sync::OnceLock<&'static #krate::__private::Cache> =
                    ::std::sync::OnceLock::new();
                *__CASHEWS_STORE.get_or_init(|| {
                    #krate::__private::bounded_store(
                        concat!(module_path!(), "::", #name, ":", line!()),
                        #size,
                    )
                })
            }};
        }
        match &self.cache {
            Some(expr) => quote_spanned!(expr.span()=> #krate::__private::as_cache(&#expr)),
            None => quote!(#krate::__private::default_cache()),
        }
    }

    /// Statements appending the key to `__cashews_key_text` (a `&mut
    /// String`): the prefix, then the template, or the function's path and
    /// every argument not skipped.
    pub fn render(&self, krate: &TokenStream, function: &Function) -> TokenStream {
        let out = format_ident!("__cashews_key_text");
        let prefix = self
            .prefix
            .as_ref()
            .map(|prefix| quote!(#out.push_str(#prefix);));
        let body = match &self.key {
            Some(template) => template.render(krate, &out),
            None => {
                let head = function_path(function, &out);
                let parts = function
                    .args
                    .iter()
                    .filter(|a| !self.skip.contains(&a.name))
                    .map(|a| {
                        let label = format!(":{}:", a.name);
                        let name = &a.name;
                        let part = format_ident!("__cashews_value", span = a.span);
                        let write =
                            render_arg(krate, &part, &quote_spanned!(a.span=> #name), a.span);
                        let render = render_escaped(krate, &out, &part, &write, false, a.span);
                        quote!(#out.push_str(#label); #render)
                    });
                quote!(#head #(#parts)*)
            }
        };
        quote!(#prefix #body)
    }

    /// An expression (a `String`) of the glob matching every key of the
    /// function: the template's text with `*` for each placeholder, or the
    /// default key's head followed by `:*` when it has arguments.
    pub fn pattern(&self, krate: &TokenStream, function: &Function) -> TokenStream {
        let prefix = self.prefix.clone().unwrap_or_default();
        let prefix = quote!(#krate::__private::glob::escape(#prefix));
        if let Some(template) = &self.key {
            let pattern = template.pattern(krate);
            return quote!(#prefix + &#pattern);
        }
        let tail = if function.args.iter().any(|a| !self.skip.contains(&a.name)) {
            ":*"
        } else {
            ""
        };
        let name = function.name().to_string();
        let head = if function.has_self() {
            quote!(::std::format!("{}::{}", ::std::any::type_name::<Self>(), #name))
        } else {
            quote!(::std::string::String::from(
                concat!(module_path!(), "::", #name)
            ))
        };
        quote!(::std::format!("{}{}{}", #prefix, #krate::__private::glob::escape(&#head), #tail))
    }
}

/// Statements appending the function's path (`module::name`, or
/// `Type::name` for a method) to `out`.
pub fn function_path(function: &Function, out: &Ident) -> TokenStream {
    let name = function.name().to_string();
    if function.has_self() {
        quote! {
            #out.push_str(::std::any::type_name::<Self>());
            #out.push_str(concat!("::", #name));
        }
    } else {
        quote!(#out.push_str(concat!(module_path!(), "::", #name));)
    }
}

/// An expression of type `String` running key `statements` (which append to
/// `__cashews_key_text: &mut String`).
pub fn owned(statements: &TokenStream) -> TokenStream {
    quote! {{
        let mut __cashews_key_owned = ::std::string::String::with_capacity(64);
        {
            let __cashews_key_text = &mut __cashews_key_owned;
            #statements
        }
        __cashews_key_owned
    }}
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
