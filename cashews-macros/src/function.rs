//! What the expansion knows about the decorated function, and its body.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use crate::args::Errors;
use crate::template::Scope;

/// An argument of the decorated function.
pub struct Arg {
    pub name: Ident,
    pub ty: Type,
    pub by_ref: bool,
    pub mutable: bool,
    pub span: Span,
}

/// The decorated function.
pub struct Function {
    pub item: ItemFn,
    pub args: Vec<Arg>,
    pub names: Vec<Ident>,
    pub receiver: Option<syn::Receiver>,
}

/// Which part of the output a strategy stores.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The output itself.
    Whole,
    /// The `Ok` value of a `Result`; errors are returned, never stored.
    OkPart,
}

impl Stored {
    /// `OkPart` for a type named `...Result` (unless `with_errors`), else `Whole`.
    pub fn of(ty: Option<&Type>, with_errors: bool) -> Stored {
        let is_result = matches!(ty, Some(Type::Path(p)) if p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("Result")));
        if is_result && !with_errors {
            Stored::OkPart
        } else {
            Stored::Whole
        }
    }

    /// The adapter type naming this part in the runtime.
    pub fn adapter(self, krate: &TokenStream) -> TokenStream {
        match self {
            Stored::Whole => quote!(#krate::__private::Whole),
            Stored::OkPart => quote!(#krate::__private::OkPart),
        }
    }
}

impl Function {
    /// Parses the function; `asynchronous`: whether it must be an `async fn`.
    pub fn parse(item: ItemFn, errors: &mut Errors, asynchronous: bool) -> Function {
        if asynchronous && item.sig.asyncness.is_none() {
            errors.push(syn::Error::new(
                item.sig.fn_token.span(),
                "a cache attribute here works on async functions only (early, hit, bloom, iterator): make this `async fn`",
            ));
        }
        let mut args = Vec::new();
        let mut receiver = None;
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r.clone()),
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                        args.push(Arg {
                            name: p.ident.clone(),
                            ty: (*typed.ty).clone(),
                            by_ref: matches!(&*typed.ty, Type::Reference(_)),
                            mutable: p.mutability.is_some(),
                            span: typed.pat.span(),
                        })
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "#[cache] needs a plain name for every argument (destructure inside the body)",
                    )),
                },
            }
        }
        let names = args.iter().map(|a| a.name.clone()).collect();
        Function {
            item,
            args,
            names,
            receiver,
        }
    }

    pub fn name(&self) -> &Ident {
        &self.item.sig.ident
    }

    pub fn has_self(&self) -> bool {
        self.receiver.is_some()
    }

    /// The names key templates may use.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            args: &self.names,
            has_self: self.has_self(),
            function: self.name(),
        }
    }

    /// The declared output type, `None` for `()`.
    pub fn output_type(&self) -> Option<&Type> {
        match &self.item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(ty),
        }
    }

    pub fn output(&self) -> TokenStream {
        self.output_type()
            .map_or_else(|| quote!(()), ToTokens::to_token_stream)
    }

    /// Arguments as a TTL, condition or action function receives them:
    /// references as they are, owned values by reference.
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

    /// The body as the statements of an `async move` block whose output type
    /// is the function's (a never-taken `return` of that type fixes it, so
    /// `?` and `return` inside the body mean what they meant).
    fn typed_body(&self, block: TokenStream) -> TokenStream {
        let output = self.output();
        quote! {
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
            if false {
                let __cashews_return: #output = loop {};
                return __cashews_return;
            }
            #block
        }
    }

    /// The body, emitted once: statements defining what makes it (before
    /// the layers prepare), and the statement making its future,
    /// `__cashews_body`. With `refreshed`, the maker is `__cashews_make`, a
    /// closure of owned copies of the arguments (and of `self`) that a
    /// background refresh calls again. With `borrowed`, the body borrows
    /// the arguments it only reads (a layer reads them after it), instead of
    /// taking them all.
    pub fn body(&self, refreshed: bool, borrowed: bool) -> syn::Result<(TokenStream, TokenStream)> {
        let block = self.item.block.to_token_stream();
        if !refreshed {
            let typed = self.typed_body(block);
            let capture = (!borrowed).then(|| quote!(move));
            return Ok((
                TokenStream::new(),
                quote!(let __cashews_body = async #capture { #typed };),
            ));
        }
        let mut block = (*self.item.block).clone();
        RenameSelf.visit_block_mut(&mut block);
        let typed = self.typed_body(block.to_token_stream());
        let mut params = Vec::new();
        let mut restore = TokenStream::new();
        let mut call = Vec::new();
        if let Some(receiver) = &self.receiver {
            let (param, bind, pass) = self_param(receiver)?;
            params.push(param);
            restore.extend(bind);
            call.push(pass);
        }
        for arg in &self.args {
            let (param, bind, pass) = arg_param(arg);
            params.push(param);
            restore.extend(bind);
            call.push(pass);
        }
        Ok((
            quote! {
                let __cashews_make = |#(#params),*| async move {
                    #restore
                    #typed
                };
            },
            quote!(let __cashews_body = __cashews_make(#(#call),*);),
        ))
    }

    /// The body as a closure making it again for each attempt of a retry,
    /// `__cashews_attempt`: each call clones the owned arguments (and an
    /// owned `self`), reference arguments are shared. The caller keeps its
    /// arguments.
    pub fn attempt(&self) -> syn::Result<TokenStream> {
        let mut block = (*self.item.block).clone();
        let mut bind_self = TokenStream::new();
        if let Some(receiver) = &self.receiver {
            RenameSelf.visit_block_mut(&mut block);
            bind_self = match &*receiver.ty {
                Type::Reference(reference) if reference.mutability.is_some() => {
                    return Err(syn::Error::new_spanned(
                        receiver,
                        "`retry` runs the body again, which a `&mut self` method cannot share: take `&self`",
                    ))
                }
                Type::Reference(_) => quote!(let __cashews_self = self;),
                _ => {
                    let mutability = receiver.mutability;
                    quote!(let #mutability __cashews_self = ::std::clone::Clone::clone(&self);)
                }
            };
        }
        let typed = self.typed_body(block.to_token_stream());
        let clones = self.args.iter().filter(|a| !a.by_ref).map(|arg| {
            let name = &arg.name;
            let mutability = arg.mutable.then(|| quote!(mut));
            quote_spanned!(arg.span=> let #mutability #name = ::std::clone::Clone::clone(&#name);)
        });
        Ok(quote! {
            let __cashews_attempt = || {
                #bind_self
                #(#clones)*
                async move { #typed }
            };
        })
    }

    /// A tuple of fresh owned copies of `self` and the arguments, in
    /// `__cashews_make`'s order (for a refresh, made before the body takes
    /// them).
    pub fn copies(&self) -> Vec<TokenStream> {
        let mut copies = Vec::new();
        if let Some(receiver) = &self.receiver {
            copies.push(match &*receiver.ty {
                Type::Reference(_) => quote!(::std::clone::Clone::clone(self)),
                _ => quote!(::std::clone::Clone::clone(&self)),
            });
        }
        for arg in &self.args {
            let name = &arg.name;
            copies.push(if arg.by_ref {
                quote_spanned!(arg.span=> ::std::borrow::ToOwned::to_owned(#name))
            } else {
                quote_spanned!(arg.span=> ::std::clone::Clone::clone(&#name))
            });
        }
        copies
    }
}

/// The `__cashews_make` parameter for an argument, the statement turning
/// it back into what the body expects, and what the call itself passes.
fn arg_param(arg: &Arg) -> (TokenStream, TokenStream, TokenStream) {
    let name = &arg.name;
    let owned = format_ident!("__cashews_own_{}", name);
    match &arg.ty {
        Type::Reference(reference) => {
            let elem = &reference.elem;
            let mut borrowed = reference.clone();
            borrowed.lifetime = None;
            (
                quote_spanned!(arg.span=> #owned: <#elem as ::std::borrow::ToOwned>::Owned),
                quote_spanned!(arg.span=> let #name: #borrowed = ::std::borrow::Borrow::borrow(&#owned);),
                quote_spanned!(arg.span=> ::std::borrow::ToOwned::to_owned(#name)),
            )
        }
        ty => {
            let mutability = arg.mutable.then(|| quote!(mut));
            (
                quote_spanned!(arg.span=> #mutability #name: #ty),
                TokenStream::new(),
                quote!(#name),
            )
        }
    }
}

/// The same for the receiver: `&self` becomes a clone of `Self` borrowed
/// again; `self` by value is passed as it is; `&mut self` cannot be copied.
fn self_param(receiver: &syn::Receiver) -> syn::Result<(TokenStream, TokenStream, TokenStream)> {
    match &*receiver.ty {
        Type::Reference(reference) => {
            if reference.mutability.is_some() {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "a background refresh runs the body again on a clone of `self`, which a `&mut self` method cannot share: take `&self`, or set `background = false`",
                ));
            }
            let elem = &reference.elem;
            Ok((
                quote!(__cashews_self_owned: #elem),
                quote!(let __cashews_self: &#elem = &__cashews_self_owned;),
                quote!(::std::clone::Clone::clone(self)),
            ))
        }
        ty => {
            let mutability = receiver.mutability.map(|m| quote!(#m));
            Ok((
                quote!(#mutability __cashews_self: #ty),
                TokenStream::new(),
                quote!(self),
            ))
        }
    }
}

/// `self` → `__cashews_self` in a body that runs as a closure: every
/// expression `self` (not `self::` paths, not nested items), and `self`
/// tokens in macro calls.
struct RenameSelf;

impl VisitMut for RenameSelf {
    fn visit_expr_path_mut(&mut self, path: &mut syn::ExprPath) {
        if path.qself.is_none() && path.path.is_ident("self") {
            let span = path.path.segments[0].ident.span();
            path.path.segments[0].ident = Ident::new("__cashews_self", span);
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {
        // A nested item has its own `self`.
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        mac.tokens = rename_self_tokens(std::mem::take(&mut mac.tokens));
    }
}

fn rename_self_tokens(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    for (i, tree) in trees.iter().enumerate() {
        out.push(match tree {
            TokenTree::Ident(ident) if ident == "self" => {
                let path =
                    matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                if path {
                    tree.clone()
                } else {
                    TokenTree::Ident(Ident::new("__cashews_self", ident.span()))
                }
            }
            TokenTree::Group(group) => {
                let mut renamed =
                    proc_macro2::Group::new(group.delimiter(), rename_self_tokens(group.stream()));
                renamed.set_span(group.span());
                TokenTree::Group(renamed)
            }
            other => other.clone(),
        });
    }
    out.into_iter().collect()
}
