//! Key templates, checked at compile time.
//!
//! `"user:{user.id}"`, `"{name:lower}"`, `"{password:hash(sha256)}"`,
//! `"{token:jwt(sub)}"`, `"{items:len}"`, `"{@:get(tenant)}"`, `"{x:my_fn(3)}"`;
//! `<user.id>` is a synonym of `{user.id}`; `{{` and `}}` are literal braces.
//! Every placeholder must name an argument (or `self`); field access and
//! custom formatter functions are checked by the compiler, so a typo is a
//! compile error pointing at the template.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Expr, Ident, LitStr};

/// A parsed template.
pub struct Template {
    segments: Vec<Segment>,
    span: Span,
    escape: bool,
}

enum Segment {
    Text(String),
    Value {
        root: Root,
        members: Vec<String>,
        format: Option<Format>,
    },
}

enum Root {
    Arg(String),
    Context,
}

struct Format {
    name: String,
    args: Vec<String>,
}

/// The names a template may refer to.
pub struct Scope<'a> {
    pub args: &'a [Ident],
    pub has_self: bool,
    pub function: &'a Ident,
}

impl Template {
    /// Parses and checks `lit` against the function's arguments.
    pub fn parse(lit: &LitStr, scope: &Scope<'_>) -> syn::Result<Template> {
        let span = lit.span();
        let text = lit.value();
        let err = |message: String| syn::Error::new(span, message);
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        err(format!("unbalanced braces in key template {text:?}: `{{` at byte {i} is never closed (write `{{{{` for a literal brace)"))
                    })?;
                    let inner = &rest[..end];
                    if inner.contains('{') {
                        return Err(err(format!("unbalanced braces in key template {text:?}: `{{` inside a placeholder")));
                    }
                    for _ in 0..=inner.chars().count() {
                        chars.next();
                    }
                    segments.push(Segment::Text(std::mem::take(&mut literal)));
                    segments.push(parse_placeholder(inner, scope).map_err(err)?);
                }
                '}' => {
                    return Err(err(format!(
                        "unbalanced braces in key template {text:?}: `}}` at byte {i} has no opening `{{` (write `}}}}` for a literal brace)"
                    )))
                }
                '<' => {
                    let rest = &text[i + 1..];
                    match rest.find('>').map(|end| &rest[..end]) {
                        Some(inner) if looks_like_placeholder(inner) => {
                            for _ in 0..=inner.chars().count() {
                                chars.next();
                            }
                            segments.push(Segment::Text(std::mem::take(&mut literal)));
                            segments.push(parse_placeholder(inner, scope).map_err(err)?);
                        }
                        _ => literal.push('<'),
                    }
                }
                c => literal.push(c),
            }
        }
        segments.push(Segment::Text(literal));
        segments.retain(|s| !matches!(s, Segment::Text(t) if t.is_empty()));
        Ok(Template {
            segments,
            span,
            escape: false,
        })
    }

    /// Renders values glob-escaped (for patterns): the template's own `*`, `?`
    /// and `[...]` keep their meaning, a value's do not.
    pub fn escaped(mut self) -> Template {
        self.escape = true;
        self
    }

    /// Statements appending the rendered template to `out` (a `&mut String`).
    /// Every value is key-escaped (`%` and `:` percent-encoded, see
    /// `cashews::key`), so no value can pose as the template's own text.
    pub fn render(&self, krate: &TokenStream, out: &Ident) -> TokenStream {
        let span = self.span;
        let mut code = TokenStream::new();
        for segment in &self.segments {
            let Segment::Value {
                root,
                members,
                format,
            } = segment
            else {
                if let Segment::Text(text) = segment {
                    code.extend(quote_spanned!(span=> #out.push_str(#text);));
                }
                continue;
            };
            let part = format_ident!("__cashews_value", span = span);
            let write = match root {
                Root::Context => {
                    let name = format
                        .as_ref()
                        .and_then(|f| f.args.first())
                        .cloned()
                        .unwrap_or_default();
                    quote_spanned!(span=> #krate::__private::scope::write_context(&mut *#part, #name);)
                }
                Root::Arg(root) => {
                    let root = if root == "self" {
                        quote_spanned!(span=> self)
                    } else {
                        let ident = Ident::new(root, span);
                        quote_spanned!(span=> #ident)
                    };
                    let members = members.iter().map(|m| match m.parse::<u32>() {
                        Ok(index) => {
                            let index = syn::Index { index, span };
                            quote_spanned!(span=> .#index)
                        }
                        Err(_) => {
                            // Located at the template, but marked as macro
                            // output, so rustc reports an unknown field
                            // there without suggesting to rewrite the
                            // whole string as the field's name.
                            let ident = Ident::new(m, Span::mixed_site().located_at(span));
                            quote_spanned!(span=> .#ident)
                        }
                    });
                    let value = quote_spanned!(span=> (#root #(#members)*));
                    render_value(krate, &part, &value, format.as_ref(), span)
                }
            };
            code.extend(render_escaped(krate, out, &part, &write, self.escape, span));
        }
        code
    }
}

/// Statements running `write` (which appends a value to `part`, a
/// `&mut String`) and appending the value to `out` key-escaped, and also
/// glob-escaped when `glob` (a pattern).
pub fn render_escaped(
    krate: &TokenStream,
    out: &Ident,
    part: &Ident,
    write: &TokenStream,
    glob: bool,
    span: Span,
) -> TokenStream {
    let key = quote_spanned!(span=> #krate::__private::key);
    if glob {
        let text = format_ident!("__cashews_value_text", span = span);
        quote_spanned! {span=> {
            let mut #text = ::std::string::String::new();
            {
                let #part = &mut #text;
                #write
            }
            #key::escape_from(&mut #text, 0);
            #out.push_str(&#krate::__private::glob::escape(&#text));
        }}
    } else {
        let start = format_ident!("__cashews_value_start", span = span);
        quote_spanned! {span=> {
            let #start = #out.len();
            {
                let #part: &mut ::std::string::String = &mut *#out;
                #write
            }
            #key::escape_from(&mut *#out, #start);
        }}
    }
}

impl Template {
    /// An expression (a `String`) of the glob matching every key the
    /// template renders: its text escaped, each placeholder a `*`.
    pub fn pattern(&self, krate: &TokenStream) -> TokenStream {
        let mut parts = Vec::new();
        let mut star = false;
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => {
                    star = false;
                    parts.push(quote!(::std::string::String::as_str(
                        &#krate::__private::glob::escape(#text)
                    )));
                }
                Segment::Value { .. } if star => {}
                Segment::Value { .. } => {
                    star = true;
                    parts.push(quote!("*"));
                }
            }
        }
        quote!(<[&str]>::concat(&[#(#parts),*]))
    }
}

/// Statements rendering `value` into `out`, picking `KeyPart` over `Display`.
pub fn render_arg(
    krate: &TokenStream,
    out: &Ident,
    value: &TokenStream,
    span: Span,
) -> TokenStream {
    quote_spanned! {span=> {
        #[allow(unused_imports)]
        use #krate::__private::key::{ViaDisplay as _, ViaKeyPart as _};
        // `&&` picks `KeyPart` over `Display` (autoref specialisation).
        #[allow(clippy::needless_borrow)]
        let () = (&&#krate::__private::key::KeyArg(&#value)).write_key_arg(&mut *#out);
    }}
}

fn render_value(
    krate: &TokenStream,
    out: &Ident,
    value: &TokenStream,
    format: Option<&Format>,
    span: Span,
) -> TokenStream {
    let Some(format) = format else {
        return render_arg(krate, out, value, span);
    };
    let tmp = format_ident!("__cashews_part", span = span);
    let owned = format_ident!("__cashews_part_text", span = span);
    let rendered = render_arg(krate, &tmp, value, span);
    let prepare = quote_spanned! {span=>
        let mut #owned = ::std::string::String::new();
        let #tmp = &mut #owned;
        #rendered
    };
    let fmt = quote_spanned!(span=> #krate::__private::key::fmt);
    match format.name.as_str() {
        "lower" | "upper" | "len" => {
            let f = Ident::new(&format.name, span);
            quote_spanned!(span=> { #prepare #fmt::#f(&mut *#out, #tmp.as_str()); })
        }
        "hash" => {
            let algorithm = match format.args.first().map(String::as_str).unwrap_or("md5") {
                "md5" => quote_spanned!(span=> Md5),
                "sha1" => quote_spanned!(span=> Sha1),
                _ => quote_spanned!(span=> Sha256),
            };
            quote_spanned!(span=> { #prepare #fmt::hash(&mut *#out, #tmp.as_str(), #fmt::HashAlgorithm::#algorithm); })
        }
        "jwt" => {
            let claim = &format.args[0];
            quote_spanned!(span=> { #prepare #fmt::jwt(&mut *#out, #tmp.as_str(), #claim); })
        }
        custom => {
            let f = Ident::new(custom, span);
            let args: Vec<Expr> = format
                .args
                .iter()
                .filter_map(|a| syn::parse_str(a).ok())
                .collect();
            let result = format_ident!("__cashews_formatted", span = span);
            let rendered = render_arg(krate, out, &quote_spanned!(span=> #result), span);
            quote_spanned!(span=> { let #result = #f(&#value #(, #args)*); #rendered })
        }
    }
}

fn looks_like_placeholder(inner: &str) -> bool {
    let path = inner.split(':').next().unwrap_or("");
    !path.is_empty()
        && path.split('.').all(|p| {
            !p.is_empty() && (p == "@" || p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        })
}

fn parse_placeholder(inner: &str, scope: &Scope<'_>) -> Result<Segment, String> {
    let (path, format) = match inner.split_once(':') {
        Some((path, format)) => (path.trim(), Some(parse_format(format.trim())?)),
        None => (inner.trim(), None),
    };
    if path.is_empty() {
        return Err(format!("empty placeholder `{{{inner}}}` in key template"));
    }
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default();
    let members: Vec<String> = parts.map(str::to_owned).collect();
    for m in &members {
        let valid = m.parse::<u32>().is_ok() || syn::parse_str::<Ident>(m).is_ok();
        if !valid {
            return Err(format!("`{m}` in `{{{inner}}}` is not a field name"));
        }
    }
    if root == "@" {
        match &format {
            Some(Format { name, args })
                if name == "get" && args.len() == 1 && members.is_empty() => {}
            _ => {
                return Err(format!(
                    "`{{{inner}}}`: the key context is read as `{{@:get(name)}}`"
                ))
            }
        }
        return Ok(Segment::Value {
            root: Root::Context,
            members,
            format,
        });
    }
    if root == "self" {
        if !scope.has_self {
            return Err(format!(
                "`{{{inner}}}` names `self`, but `{}` takes no `self`",
                scope.function
            ));
        }
    } else if !scope.args.iter().any(|a| a == root) {
        let names: Vec<String> = scope.args.iter().map(ToString::to_string).collect();
        return Err(format!(
            "`{{{inner}}}` names `{root}`, which is not an argument of `{}` (arguments: {})",
            scope.function,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    if let Some(f) = &format {
        check_format(f, inner)?;
    }
    Ok(Segment::Value {
        root: Root::Arg(root.to_owned()),
        members,
        format,
    })
}

fn parse_format(text: &str) -> Result<Format, String> {
    let (name, args) = match text.split_once('(') {
        Some((name, rest)) => {
            let args = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("formatter `{text}` is missing its closing `)`"))?;
            let args = args
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
            (name.trim(), args)
        }
        None => (text, Vec::new()),
    };
    if syn::parse_str::<Ident>(name).is_err() {
        return Err(format!("`{name}` is not a formatter name"));
    }
    Ok(Format {
        name: name.to_owned(),
        args,
    })
}

fn check_format(format: &Format, inner: &str) -> Result<(), String> {
    let (name, args) = (format.name.as_str(), &format.args);
    match name {
        "lower" | "upper" | "len" if !args.is_empty() => {
            Err(format!("`{name}` takes no arguments in `{{{inner}}}`"))
        }
        "hash"
            if args.len() > 1
                || args
                    .first()
                    .is_some_and(|a| !["md5", "sha1", "sha256"].contains(&a.as_str())) =>
        {
            Err(format!(
                "`{{{inner}}}`: hash takes one of md5, sha1, sha256"
            ))
        }
        "jwt" if args.len() != 1 => Err(format!(
            "`{{{inner}}}`: jwt takes the claim to read, e.g. jwt(sub)"
        )),
        "get" => Err(format!(
            "`{{{inner}}}`: get reads the key context, as `{{@:get(name)}}`"
        )),
        "lower" | "upper" | "len" | "hash" | "jwt" => Ok(()),
        _ => {
            for arg in args {
                if syn::parse_str::<Expr>(arg).is_err() {
                    return Err(format!("`{arg}` in `{{{inner}}}` is not a Rust expression"));
                }
            }
            Ok(())
        }
    }
}
