//! Checks shared by `#[raykit::remote]` and `#[raykit::actor]`: the types that cannot cross a
//! process boundary ([`check_owned`], worded for whose type it is by [`Owner`]), `num_returns`
//! against the return type ([`outputs`]), and the tokens an error about a misplaced attribute
//! points at ([`item_head`]).

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::visit::{self, Visit};
use syn::{Ident, Item, Type};

use crate::errors::Errors;

/// The tokens that name an item (`struct Counter`, `impl Counter`), to point at them rather than
/// at the whole item.
pub(crate) fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(i) => head(&i.vis, &i.struct_token, &i.ident),
        Item::Enum(i) => head(&i.vis, &i.enum_token, &i.ident),
        Item::Union(i) => head(&i.vis, &i.union_token, &i.ident),
        Item::Trait(i) => head(&i.vis, &i.trait_token, &i.ident),
        Item::Const(i) => head(&i.vis, &i.const_token, &i.ident),
        Item::Static(i) => head(&i.vis, &i.static_token, &i.ident),
        Item::Mod(i) => head(&i.vis, &i.mod_token, &i.ident),
        Item::Fn(i) => head(&i.vis, &i.sig.fn_token, &i.sig.ident),
        Item::Type(i) => head(&i.vis, &i.type_token, &i.ident),
        Item::Impl(i) => {
            let (token, ty) = (&i.impl_token, &i.self_ty);
            match &i.trait_ {
                Some((bang, path, for_token)) => quote!(#token #bang #path #for_token #ty),
                None => quote!(#token #ty),
            }
        }
        _ => item.to_token_stream(),
    }
}

fn head(vis: &syn::Visibility, keyword: &dyn ToTokens, ident: &Ident) -> TokenStream {
    quote!(#vis #keyword #ident)
}

/// Whose argument or return value [`check_owned`] looks at, for its messages.
#[derive(Clone, Copy)]
pub(crate) enum Owner {
    /// A `#[raykit::remote]` function.
    RemoteFn,
    /// A public method of a `#[raykit::actor]` block.
    ActorMethod,
    /// The constructor `new` of a `#[raykit::actor]` block.
    Constructor,
}

impl Owner {
    /// "a remote function's", to say whose argument or return value.
    fn whose(self) -> &'static str {
        match self {
            Owner::RemoteFn => "a remote function's",
            Owner::ActorMethod => "an actor method's",
            Owner::Constructor => "an actor constructor's",
        }
    }

    /// Why a `&mut` argument cannot work.
    fn no_mut(self) -> &'static str {
        match self {
            Owner::RemoteFn => {
                "a remote function cannot take `&mut` arguments: the task works on its own copy, \
                 so changes would never reach the caller; take the value and return the result"
            }
            Owner::ActorMethod => {
                "an actor method cannot take `&mut` arguments: the actor works on its own copy, \
                 so changes would never reach the caller; take the value and return the result \
                 (state that should change belongs in the actor)"
            }
            Owner::Constructor => {
                "an actor constructor cannot take `&mut` arguments: the actor is built from its \
                 own copy, so changes would never reach the caller; take the value"
            }
        }
    }

    /// What returns the value, for `num_returns` messages.
    fn noun(self) -> &'static str {
        match self {
            Owner::RemoteFn => "function",
            Owner::ActorMethod => "method",
            Owner::Constructor => "constructor",
        }
    }

    /// Who stores a return value.
    fn storer(self) -> &'static str {
        match self {
            Owner::RemoteFn => "a task stores what it returns",
            _ => "an actor call stores what it returns",
        }
    }
}

/// The most outputs one call can have (`Returns` is implemented for tuples up to this size).
pub(crate) const MAX_RETURNS: usize = 8;

/// One type per output object of a call returning `ret`: `ret` itself, or with
/// `num_returns = N` (N > 1, the value's span with it) the N elements of the tuple `ret` must
/// be. `None` after reporting a count that cannot work.
pub(crate) fn outputs(
    num_returns: Option<(usize, Span)>,
    ret: &Type,
    owner: Owner,
    errors: &mut Errors,
) -> Option<Vec<Type>> {
    let noun = owner.noun();
    match num_returns {
        None | Some((1, _)) => Some(vec![ret.clone()]),
        Some((n, span)) if n > MAX_RETURNS => {
            errors.push(syn::Error::new(
                span,
                format!("`num_returns` can be at most {MAX_RETURNS}; return a `Vec` or a struct for more"),
            ));
            None
        }
        Some((n, span)) => match ret {
            Type::Tuple(t) if t.elems.len() == n => Some(t.elems.iter().cloned().collect()),
            Type::Tuple(t) if t.elems.is_empty() => {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "`num_returns = {n}` but the {noun} returns nothing; return a tuple of {n} elements, like `(A, B)`"
                    ),
                ));
                None
            }
            Type::Tuple(t) => {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "`num_returns = {n}` but the {noun} returns a tuple of {}: `{}`; make them agree",
                        t.elems.len(),
                        t.to_token_stream(),
                    ),
                ));
                None
            }
            other => {
                errors.spanned(
                    other,
                    format!("`num_returns = {n}` needs a tuple return type of {n} elements, like `(A, B)`"),
                );
                None
            }
        },
    }
}

/// Reports parameter or return types that cannot be sent to another thread or node: references,
/// borrowed lifetimes and `impl Trait`, at the top or nested (`Vec<&str>`), each on its own
/// token. Everything else is left to the `RemoteValue` check, which sees the real type.
pub(crate) fn check_owned(ty: &Type, owner: Owner, what: &str, errors: &mut Errors) {
    let whose = owner.whose();
    match ty {
        Type::Reference(r) if r.mutability.is_some() && what == "argument" => {
            errors.spanned(ty, owner.no_mut())
        }
        Type::Reference(_) => {
            let instead = if what == "argument" {
                "take `T` (callers may pass an `ObjectRef<T>`)"
            } else {
                "return `T`"
            };
            errors.spanned(
                ty,
                format!(
                    "{whose} {what} must be an owned value, not a reference: it is \
                     sent to another thread or node; {instead}"
                ),
            )
        }
        Type::Never(_) => errors.spanned(
            ty,
            format!("`!` cannot be {whose} {what}: {}; use `()`", owner.storer()),
        ),
        Type::ImplTrait(_) => errors.spanned(
            ty,
            format!("`impl Trait` cannot be {whose} {what}: name a concrete type"),
        ),
        Type::Infer(_) => errors.spanned(ty, format!("the {what} type must be written out")),
        _ => Nested {
            whose,
            what,
            errors,
        }
        .visit_type(ty),
    }
}

/// Finds what cannot cross a process boundary inside a type.
struct Nested<'a> {
    whose: &'a str,
    what: &'a str,
    errors: &'a mut Errors,
}

impl<'ast> Visit<'ast> for Nested<'_> {
    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        // `&'static T` may still be a remote value (rarely); the `RemoteValue` check decides.
        if r.lifetime.as_ref().is_some_and(|l| l.ident == "static") {
            return visit::visit_type_reference(self, r);
        }
        self.errors.spanned(
            r,
            format!(
                "{} {} must own its data, but this borrows: it is sent to another thread or \
                 node; use an owned type (`String`, `Vec<T>`, `Box<T>`)",
                self.whose, self.what
            ),
        );
    }

    fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
        if l.ident != "static" {
            self.errors.spanned(
                l,
                format!(
                    "{} {} cannot borrow (`{l}`): it is sent to another thread or node; use an \
                     owned type",
                    self.whose, self.what
                ),
            );
        }
    }

    fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
        self.errors.spanned(
            t,
            format!(
                "`impl Trait` cannot be part of {} {}: name a concrete type",
                self.whose, self.what
            ),
        );
    }

    // Function pointers and trait objects declare lifetimes of their own and are never remote
    // values; the `RemoteValue` check reports them.
    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    fn visit_type_trait_object(&mut self, _: &'ast syn::TypeTraitObject) {}
}
