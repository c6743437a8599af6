//! Checks of the functions of an actor's impl block: the constructor `new` (no `self`, not
//! `async`, returns `Self`) and each method on the handle (`&self` or `&mut self`, not generic,
//! not `unsafe`, no name the handle already answers), with their arguments and return values.

use proc_macro2::Span;
use quote::format_ident;
use syn::visit_mut::VisitMut;
use syn::{FnArg, GenericParam, Ident, ImplItemFn, Pat, ReturnType, Type};

use super::{Constructor, Method};
use crate::checks::{self, check_owned, Owner};
use crate::errors::Errors;

/// Methods a call `handle.name(..)` reaches before the actor's own method of that name (the
/// handle's own methods, and those of the traits it implements that are in scope everywhere
/// or usually imported), with where they come from.
const ON_HANDLE: &[(&str, &str)] = &[
    ("kill", "`ActorHandle::kill`"),
    ("id", "`ActorHandle::id`"),
    ("clone", "`Clone::clone`"),
    ("clone_from", "`Clone::clone_from`"),
    ("clone_into", "`ToOwned::clone_into`"),
    ("to_owned", "`ToOwned::to_owned`"),
    ("eq", "`PartialEq::eq`"),
    ("ne", "`PartialEq::ne`"),
    ("into", "`Into::into`"),
    ("try_into", "`TryInto::try_into`"),
    ("hash", "`Hash::hash`"),
    ("serialize", "`serde::Serialize::serialize`"),
    ("deref", "`Deref::deref`"),
    ("borrow", "`Borrow::borrow`"),
    ("borrow_mut", "`BorrowMut::borrow_mut`"),
];

fn params_of(
    f: &ImplItemFn,
    self_ty: &Type,
    owner: Owner,
    errors: &mut Errors,
) -> Vec<(Ident, Type)> {
    let mut params = Vec::new();
    for (i, arg) in f.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = arg else { continue };
        let mut ty = (*pt.ty).clone();
        ReplaceSelf(self_ty).visit_type_mut(&mut ty);
        check_owned(&pt.ty, owner, "argument", errors);
        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            _ => format_ident!("arg{}", i),
        };
        params.push((name, ty));
    }
    params
}

/// Type and const parameters (lifetimes alone are harmless: a borrowing type is reported by
/// [`check_owned`]).
fn type_generics(generics: &syn::Generics) -> bool {
    generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Lifetime(_)))
}

pub(super) fn check_constructor(
    f: &ImplItemFn,
    class: &Ident,
    self_ty: &Type,
    errors: &mut Errors,
) -> Option<Constructor> {
    let sig = &f.sig;
    if let Some(r) = sig.receiver() {
        errors.spanned(
            r,
            format!(
                "the constructor `new` cannot take `self`: it makes the actor; write \
                 `pub fn new(..) -> Self` and call it as `{class}::remote(..)`"
            ),
        );
    }
    if let Some(a) = &sig.asyncness {
        errors.spanned(
            a,
            "the constructor `new` cannot be `async`: it runs once, on a worker thread, before \
             any method; do async set-up in an `async` method called first",
        );
    }
    if let Some(u) = &sig.unsafety {
        errors.spanned(
            u,
            "the constructor `new` cannot be `unsafe`: raykit calls it on a worker thread, where \
             no caller can uphold its contract",
        );
    }
    if type_generics(&sig.generics) {
        errors.spanned(
            &sig.generics,
            "the constructor `new` cannot be generic: every node must find it by name; take \
             concrete types",
        );
    }
    let wanted = format!(
        "the constructor `new` must return the actor itself: `pub fn new(..) -> Self` (or \
         `-> {class}`); a constructor cannot fail (panic instead: the actor's calls then fail \
         with the panic's message)"
    );
    match &sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p)
                if p.qself.is_none() && (p.path.is_ident("Self") || p.path.is_ident(class)) => {}
            _ => errors.spanned(ty, wanted),
        },
        ReturnType::Default => errors.spanned(&sig.ident, wanted),
    }
    let params = params_of(f, self_ty, Owner::Constructor, errors);
    // Generated only when the whole block is free of errors.
    Some(Constructor {
        vis: f.vis.clone(),
        name: sig.ident.clone(),
        params,
    })
}

/// Checks a method that goes on the handle; `num_returns` is its `#[raykit::method]` option.
pub(super) fn check_method(
    f: &ImplItemFn,
    self_ty: &Type,
    num_returns: Option<(usize, Span)>,
    errors: &mut Errors,
) -> Option<Method> {
    let sig = &f.sig;
    let receiver = sig.receiver()?;
    let name = sig.ident.clone();
    let mut ok = true;
    if let Some((_, owner)) = ON_HANDLE.iter().find(|(r, _)| name == r) {
        errors.spanned(
            &name,
            format!(
                "an actor method cannot be named `{name}`: a call `handle.{name}(..)` on an \
                 `ActorHandle` would run {owner} instead; rename the method"
            ),
        );
        ok = false;
    }
    // `&self`, `&mut self`, `self: &Self`, `self: &mut Self`.
    let exclusive = match &*receiver.ty {
        Type::Reference(r) => r.mutability.is_some(),
        _ => {
            errors.spanned(
                receiver,
                "an actor method takes `&self` or `&mut self`: the actor keeps its state between \
                 calls, so a method cannot consume it",
            );
            ok = false;
            false
        }
    };
    if type_generics(&sig.generics) {
        errors.spanned(
            &sig.generics,
            "an actor method cannot be generic: every node must find the one method by name; \
             take concrete types",
        );
        ok = false;
    }
    if let Some(u) = &sig.unsafety {
        errors.spanned(
            u,
            "an actor method cannot be `unsafe`: its callers cannot uphold its contract on \
             another thread or node",
        );
        ok = false;
    }
    let params = params_of(f, self_ty, Owner::ActorMethod, errors);
    let mut ret: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => {
            check_owned(ty, Owner::ActorMethod, "return value", errors);
            (**ty).clone()
        }
    };
    // Checked on the type as written, so an error points at the user's tokens.
    let mut outputs = checks::outputs(num_returns, &ret, Owner::ActorMethod, errors)
        .unwrap_or_else(|| {
            ok = false;
            Vec::new()
        });
    ReplaceSelf(self_ty).visit_type_mut(&mut ret);
    for output in &mut outputs {
        ReplaceSelf(self_ty).visit_type_mut(output);
    }
    let docs = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    ok.then_some(Method {
        vis: f.vis.clone(),
        name,
        docs,
        exclusive,
        asyncness: sig.asyncness.map(|a| a.span),
        params,
        ret,
        outputs,
    })
}

/// Replaces `Self` by the actor's type, for types moved out of the impl block.
struct ReplaceSelf<'a>(&'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty {
            if p.qself.is_none() && p.path.is_ident("Self") {
                *ty = self.0.clone();
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}
