//! `#[raykit::actor]` on an impl block: the constructor `new` gives `T::remote(..)` and
//! `T::options(..).remote(..)`; every public `&self` / `&mut self` method becomes a method of
//! the handle's proxy returning an `ObjectRef` (with `#[raykit::method(num_returns = N)]`, a
//! tuple of N of them).
//!
//! Every generated item assumes what it needs (`for<'__raykit> T: Send + Sync` for the actor's
//! state, `for<'__raykit> A: RemoteValue` for each argument and return type; the `for` keeps a
//! false bound from being an error of its own). Each of these is checked once, on the user's
//! token: the state by `#[derive(raykit::Actor)]`, the types by `assert_remote_value`. So a
//! type that fails gives one error there and none inside the expansion.
//!
//! The block is parsed here (the constructor, and the methods that go on the handle) and in
//! `method_attr.rs` (their `#[raykit::method(num_returns = N)]`, which this macro reads and
//! removes), each function is checked in `check.rs`, the handle, `T::remote` and `T::options`
//! are written in `expand.rs`, and the registry entry a cluster worker hosts the actor by in
//! `registration.rs`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ImplItem, Item, Type, Visibility};

use crate::checks::item_head;
use crate::errors::Errors;

mod check;
mod expand;
mod method_attr;
mod registration;

use check::{check_constructor, check_method};
use expand::{generate, send_sync};
pub(crate) use method_attr::{outside, READ_MARKER};
use method_attr::{read_markers, take_method_attrs};

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
    /// One type per output object: the return type, or its elements with `num_returns > 1`.
    outputs: Vec<Type>,
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
    let mut imp = match syn::parse2::<Item>(item.clone()) {
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
    // From here on the block goes out without the `#[raykit::method]` attributes, which are
    // this macro's to read: left in, each would expand on its own and report itself misplaced.
    let method_attrs = take_method_attrs(&mut imp, &mut errors);
    let markers = read_markers(&method_attrs);
    let item = quote!(#imp #markers);
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
    for (it, attr) in imp.items.iter().zip(&method_attrs) {
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
            if let Some(a) = attr {
                errors.spanned(
                    &a.attr,
                    format!(
                        "`#[raykit::method]` cannot go on the constructor `new`: \
                         `{class}::remote(..)` returns the actor's handle, not refs; put it on \
                         a method that returns a tuple"
                    ),
                );
            }
            constructor = check_constructor(f, &class, &imp.self_ty, &mut errors);
            continue;
        }
        let private = matches!(f.vis, Visibility::Inherited);
        if private || f.sig.receiver().is_none() {
            // A private helper, or an associated function: not on the handle.
            if let Some(a) = attr {
                let why = if private {
                    "is private (make it `pub`)"
                } else {
                    "takes no `self`"
                };
                errors.spanned(
                    &a.attr,
                    format!(
                        "`#[raykit::method]` goes on a public `&self` or `&mut self` method, \
                         which the actor's handle calls; `{name}` {why}, so it is not on the handle"
                    ),
                );
            }
            continue;
        }
        let num_returns = attr.as_ref().and_then(|a| a.num_returns);
        if let Some(m) = check_method(f, &imp.self_ty, num_returns, &mut errors) {
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
        Some(ctor) if errors.is_empty() => {
            let generated = generate(&imp, &class, ctor, methods);
            quote!(#generated #markers)
        }
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
