//! `#[raykit::actor]` on an impl block: the constructor `new` gives `T::remote(..)` and
//! `T::options(..).remote(..)`; every public `&self` / `&mut self` method becomes a method of
//! the handle's proxy returning an `ObjectRef`.
//!
//! Every generated item assumes what it needs (`for<'__raykit> T: Send + Sync` for the actor's
//! state, `for<'__raykit> A: RemoteValue` for each argument and return type; the `for` keeps a
//! false bound from being an error of its own). Each of these is checked once, on the user's
//! token: the state by `#[derive(raykit::Actor)]`, the types by `assert_remote_value`. So a
//! type that fails gives one error there and none inside the expansion.
//!
//! The block is parsed here (the constructor, and the methods that go on the handle), each
//! function is checked in `check.rs`, the handle, `T::remote` and `T::options` are written in
//! `expand.rs`, and the registry entry a cluster worker hosts the actor by in
//! `registration.rs`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ImplItem, Item, Type, Visibility};

use crate::checks::item_head;
use crate::errors::Errors;

mod check;
mod expand;
mod registration;

use check::{check_constructor, check_method};
use expand::{generate, send_sync};

/// Names generated on the actor's type: `Counter::remote(..)`, `Counter::options(..)`. No
/// function of the block may use them.
const ON_TYPE: &[&str] = &["remote", "options"];

struct Method {
    vis: Visibility,
    name: Ident,
    docs: Vec<syn::Attribute>,
    exclusive: bool,
    /// The `async` keyword, for errors about the method's future.
    asyncness: Option<Span>,
    params: Vec<(Ident, Type)>,
    ret: Type,
}

struct Constructor {
    vis: Visibility,
    name: Ident,
    params: Vec<(Ident, Type)>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.spanned(
            &args,
            "`#[raykit::actor]` takes no options; put them on the type: \
             `#[derive(raykit::Actor)] #[actor(max_concurrency = 2)] struct ..`",
        );
    }
    let imp = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Impl(imp)) => imp,
        Ok(other) => {
            let hint = match &other {
                Item::Struct(_) | Item::Enum(_) | Item::Union(_) => {
                    "; on the type use `#[derive(raykit::Actor)]`"
                }
                Item::Fn(_) => "; for a function use `#[raykit::remote]`",
                _ => "",
            };
            errors.spanned(
                item_head(&other),
                format!(
                    "`#[raykit::actor]` goes on the impl block of an actor type \
                     (`impl Counter {{ .. }}`){hint}"
                ),
            );
            return with_errors(item, errors, None);
        }
        Err(e) => {
            errors.push(e);
            return with_errors(item, errors, None);
        }
    };
    let class = match &*imp.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let Some(class) = class else {
        errors.spanned(&imp.self_ty, "an actor is a named struct or enum");
        return with_errors(item, errors, None);
    };
    if !imp.generics.params.is_empty() {
        errors.spanned(
            &imp.generics,
            "an actor type cannot be generic: every node must find its methods by name",
        );
        return with_errors(item, errors, None);
    }
    let stub = Some(&*imp.self_ty);
    if let Some((_, path, _)) = &imp.trait_ {
        errors.spanned(
            path,
            format!(
                "`#[raykit::actor]` goes on the inherent impl block of the actor \
                 (`impl {class} {{ .. }}`), not on a trait impl"
            ),
        );
        return with_errors(item, errors, stub);
    }

    let mut constructor = None;
    let mut methods = Vec::new();
    for it in &imp.items {
        let ImplItem::Fn(f) = it else { continue };
        let name = &f.sig.ident;
        if ON_TYPE.iter().any(|r| name == r) {
            errors.spanned(
                name,
                format!(
                    "an actor's impl block cannot have a function named `{name}`: raykit \
                     generates `{class}::{name}(..)` to create the actor; rename it"
                ),
            );
            continue;
        }
        if name == "new" {
            constructor = check_constructor(f, &class, &imp.self_ty, &mut errors);
            continue;
        }
        if matches!(f.vis, Visibility::Inherited) || f.sig.receiver().is_none() {
            continue; // a private helper, or an associated function: not on the handle
        }
        if let Some(m) = check_method(f, &imp.self_ty, &mut errors) {
            methods.push(m);
        }
    }
    let has_new = imp
        .items
        .iter()
        .any(|i| matches!(i, ImplItem::Fn(f) if f.sig.ident == "new"));
    if !has_new {
        errors.spanned(
            &imp.self_ty,
            format!(
                "actor `{class}` needs its constructor in this block: `pub fn new(..) -> Self`; \
                 the constructor and every method of an actor go in one `#[raykit::actor]` block"
            ),
        );
    }
    match constructor {
        Some(ctor) if errors.is_empty() => generate(&imp, &class, ctor, methods),
        _ => with_errors(item, errors, stub),
    }
}

/// The item as written, the errors, and (for an impl block of a type that the errors leave
/// known) an empty `ActorMethods` impl, so `#[derive(raykit::Actor)]` does not add "no
/// `#[raykit::actor]` impl block" to the errors about that block.
fn with_errors(item: TokenStream, errors: Errors, stub: Option<&Type>) -> TokenStream {
    let errs = errors.into_compile_errors();
    let stub = stub.map(|ty| {
        let send_sync = send_sync(ty);
        quote_spanned! {ty.span()=>
            impl ::raykit::__private::ActorMethods for #ty where #send_sync {
                const __CLASS: &'static str = "";
                const __HASH: u64 = 0;
                type Proxy = ::raykit::__private::RawHandle<Self>;

                fn __proxy(raw: ::raykit::__private::RawHandle<Self>) -> Self::Proxy {
                    raw
                }

                fn __raw(proxy: &Self::Proxy) -> &::raykit::__private::RawHandle<Self> {
                    proxy
                }
            }
        }
    });
    quote!(#item #errs #stub)
}
