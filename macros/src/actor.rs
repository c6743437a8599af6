//! `#[raykit::actor]` on an impl block: the constructor `new` gives `T::remote(..)` and
//! `T::options(..).remote(..)`; every public `&self` / `&mut self` method becomes a method of
//! the handle's proxy returning an `ObjectRef`.
//!
//! Every generated item assumes what it needs (`for<'__raykit> T: Send + Sync` for the actor's
//! state, `for<'__raykit> A: RemoteValue` for each argument and return type; the `for` keeps a
//! false bound from being an error of its own). Each of these is checked once, on the user's
//! token: the state by `#[derive(raykit::Actor)]`, the types by `assert_remote_value`. So a
//! type that fails gives one error there and none inside the expansion.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    FnArg, GenericParam, Ident, ImplItem, ImplItemFn, Item, ItemImpl, Pat, ReturnType, Type,
    Visibility,
};

use crate::errors::Errors;
use crate::hash::signature_hash;
use crate::remote::{check_owned, item_head, Owner};

/// Names generated on the actor's type: `Counter::remote(..)`, `Counter::options(..)`. No
/// function of the block may use them.
const ON_TYPE: &[&str] = &["remote", "options"];

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

/// The bound every generated item assumes of the actor's state.
fn send_sync(ty: &Type) -> TokenStream {
    quote!(for<'__raykit> #ty: ::core::marker::Send + ::core::marker::Sync)
}

/// `for<'__raykit> T: RemoteValue` for each distinct type, each spanned on the type.
fn remote_bounds<'a>(types: impl IntoIterator<Item = &'a Type>) -> Vec<TokenStream> {
    let mut seen = Vec::new();
    let mut bounds = Vec::new();
    for ty in types {
        let key = ty.to_token_stream().to_string();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        bounds.push(quote_spanned! {ty.span()=>
            for<'__raykit> #ty: ::raykit::__private::RemoteValue
        });
    }
    bounds
}

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

fn check_constructor(
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

fn check_method(f: &ImplItemFn, self_ty: &Type, errors: &mut Errors) -> Option<Method> {
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
    ReplaceSelf(self_ty).visit_type_mut(&mut ret);
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

/// `impl IntoArg<T>` for each parameter, spanned on its type, so a wrong argument's "required
/// by this bound" points at the parameter.
fn into_args(params: &[(Ident, Type)]) -> Vec<TokenStream> {
    params
        .iter()
        .map(|(_, ty)| quote_spanned!(ty.span()=> impl ::raykit::IntoArg<#ty>))
        .collect()
}

fn generate(imp: &ItemImpl, class: &Ident, ctor: Constructor, methods: Vec<Method>) -> TokenStream {
    let self_ty = &imp.self_ty;
    let proxy = format_ident!("__RaykitProxy{}", class);
    let create = format_ident!("__RaykitCreate{}", class);
    let class_str = class.to_string();
    let send_sync = send_sync(self_ty);
    let hash = class_hash(&ctor, &methods);

    let all_types = ctor.params.iter().map(|(_, t)| t).chain(
        methods
            .iter()
            .flat_map(|m| m.params.iter().map(|(_, t)| t).chain([&m.ret])),
    );
    // The one place a type that cannot cross a remote boundary is reported, on the user's type.
    let checks = all_types.map(|ty| {
        quote_spanned! {ty.span()=> ::raykit::__private::ActorSpec::assert_value::<#ty>(); }
    });

    let ctor_vis = &ctor.vis;
    let ctor_names: Vec<&Ident> = ctor.params.iter().map(|(n, _)| n).collect();
    let ctor_args = into_args(&ctor.params);
    let ctor_strs: Vec<String> = ctor_names.iter().map(|n| n.to_string()).collect();
    let ctor_bounds = remote_bounds(ctor.params.iter().map(|(_, t)| t));
    let ctor_what = format!("{class}::new");
    let n_ctor = ctor.params.len();
    let ctor_index: Vec<syn::Index> = (0..n_ctor).map(syn::Index::from).collect();
    let remote_doc = format!(
        "Creates a `{class}` actor: runs `{class}::new` on the runtime and returns its handle at \
         once. Each argument may be a value, an `ObjectRef` or a `&ObjectRef`."
    );

    let proxy_methods = methods.iter().map(|m| {
        let Method { vis, name, docs, params, ret, .. } = m;
        let names: Vec<&Ident> = params.iter().map(|(n, _)| n).collect();
        let args = into_args(params);
        let bounds = remote_bounds(params.iter().map(|(_, t)| t).chain([ret]));
        let what = format!("{class}::{name}");
        let method_str = name.to_string();
        let n = params.len();
        let index = (0..n).map(syn::Index::from);
        let body = method_body(m, self_ty, &what, true);
        quote! {
            #[allow(unreachable_pub, clippy::too_many_arguments, clippy::unused_unit)]
            impl #proxy where #send_sync, #(#bounds,)* {
                #(#docs)*
                #vis fn #name(&self, #(#names: #args),*) -> ::raykit::ObjectRef<#ret> {
                    #[allow(unused_imports)]
                    use ::raykit::__private::{NoDecode as _, ViaClone as _, ViaDecode as _, ViaSerde as _};
                    #(let #names = ::raykit::IntoArg::into_arg(#names);)*
                    let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n] =
                        [#(#names.dependency()),*];
                    let (__out, __ref) = ::raykit::__private::One::<#ret>::new(
                        (&::raykit::__private::Probe::<#ret>::new()).cloner(),
                        (&::raykit::__private::Probe::<#ret>::new()).decoder(),
                    );
                    // The arguments go as one tuple with the way to encode them, used when the
                    // actor lives in another process.
                    self.0.call(
                        #method_str,
                        &__deps,
                        (#(#names,)*),
                        |__a| ::std::vec![#(__a.#index.to_wire()),*],
                        __out,
                        move |(#(#names,)*)| #body,
                    );
                    __ref
                }
            }
        }
    });

    // Spanned on the type: a second `#[raykit::actor]` block of the same type conflicts there.
    let methods_impl = quote_spanned! {self_ty.span()=>
        impl ::raykit::__private::ActorMethods for #self_ty where #send_sync {
            const __CLASS: &'static str = ::core::concat!(::core::module_path!(), "::", #class_str);
            const __HASH: u64 = #hash;
            type Proxy = #proxy;

            fn __proxy(raw: ::raykit::__private::RawHandle<Self>) -> #proxy {
                #proxy(raw)
            }

            fn __raw(proxy: &#proxy) -> &::raykit::__private::RawHandle<Self> {
                &proxy.0
            }
        }
    };
    // `Counter::remote` is named at the user's `new`, so "required by a bound in this
    // function" points there.
    let remote_fn = format_ident!("remote", span = ctor.name.span());

    let host = host_registration(self_ty, &class_str, hash, &ctor, &methods);

    let proxy_doc =
        format!("The methods of a `{class}` actor handle: each returns an `ObjectRef` at once.");
    let create_doc =
        format!("Creation of a `{class_str}` actor with options; finish it with `.remote(..)`.");
    quote! {
        #imp

        const _: () = { #(#checks)* };

        #[doc = #proxy_doc]
        #[doc(hidden)]
        #[derive(::core::clone::Clone)]
        #[allow(unreachable_pub, missing_debug_implementations)]
        pub struct #proxy(::raykit::__private::RawHandle<#self_ty>) where #send_sync;

        #(#proxy_methods)*

        #methods_impl

        #[allow(clippy::too_many_arguments)]
        impl #self_ty where #send_sync, #(#ctor_bounds,)* {
            #[doc = #remote_doc]
            #ctor_vis fn #remote_fn(#(#ctor_names: #ctor_args),*) -> ::raykit::ActorHandle<#self_ty> {
                Self::options(::raykit::ActorOptions::new()).remote(#(#ctor_names),*)
            }

            /// Creates the actor with options (name, resources, concurrency): finish with `.remote(..)`.
            #ctor_vis fn options(options: ::raykit::ActorOptions) -> #create {
                #create(options)
            }
        }

        #host

        #[doc = #create_doc]
        #[doc(hidden)]
        #[allow(unreachable_pub, missing_debug_implementations)]
        pub struct #create(::raykit::ActorOptions);

        #[allow(unreachable_pub, clippy::too_many_arguments)]
        impl #create where #send_sync, #(#ctor_bounds,)* {
            #[doc = #remote_doc]
            pub fn #remote_fn(self, #(#ctor_names: #ctor_args),*) -> ::raykit::ActorHandle<#self_ty> {
                #(let #ctor_names = ::raykit::IntoArg::into_arg(#ctor_names);)*
                let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n_ctor] =
                    [#(#ctor_names.dependency()),*];
                // The arguments go as one tuple with the way to encode them, used when the actor
                // is built in another process.
                ::raykit::ActorHandle::from_raw(::raykit::__private::RawHandle::<#self_ty>::create(
                    self.0,
                    &__deps,
                    (#(#ctor_names,)*),
                    |__a| ::std::vec![#(__a.#ctor_index.to_wire()),*],
                    move |(#(#ctor_names,)*)| {
                        #(let #ctor_names = #ctor_names.resolve(#ctor_what, #ctor_strs)?;)*
                        ::core::result::Result::Ok(<#self_ty>::new(#(#ctor_names),*))
                    },
                ))
            }
        }
    }
}

/// The body of one call of `m`: a closure over the arguments taking the actor's state. With
/// `resolve`, the arguments are `Arg`s whose refs are read first (a call from a handle); without,
/// they are the values themselves (a call decoded by the actor's worker process).
fn method_body(m: &Method, self_ty: &Type, what: &str, resolve: bool) -> TokenStream {
    let Method {
        name,
        exclusive,
        asyncness,
        params,
        ..
    } = m;
    let names: Vec<&Ident> = params.iter().map(|(n, _)| n).collect();
    let strs: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let prelude = if resolve {
        quote!(#(let #names = #names.resolve(#what, #strs)?;)*)
    } else {
        TokenStream::new()
    };
    match (exclusive, asyncness) {
        (false, None) => quote! {
            ::raykit::__private::MethodBody::Ref(::std::boxed::Box::new(move |__this: &#self_ty| {
                #prelude
                ::core::result::Result::Ok(<#self_ty>::#name(__this, #(#names),*))
            }))
        },
        (true, None) => quote! {
            ::raykit::__private::MethodBody::Mut(::std::boxed::Box::new(move |__this: &mut #self_ty| {
                #prelude
                ::core::result::Result::Ok(<#self_ty>::#name(__this, #(#names),*))
            }))
        },
        // A method whose future is not `Send` is reported on its `async` keyword.
        (false, Some(span)) => quote_spanned! {*span=>
            ::raykit::__private::MethodBody::RefAsync(::std::boxed::Box::new(
                move |__this: ::raykit::__private::ReadGuard<#self_ty>| {
                    ::std::boxed::Box::pin(async move {
                        #prelude
                        ::core::result::Result::Ok(<#self_ty>::#name(&*__this, #(#names),*).await)
                    })
                }
            ))
        },
        (true, Some(span)) => quote_spanned! {*span=>
            ::raykit::__private::MethodBody::MutAsync(::std::boxed::Box::new(
                move |mut __this: ::raykit::__private::WriteGuard<#self_ty>| {
                    ::std::boxed::Box::pin(async move {
                        #prelude
                        ::core::result::Result::Ok(<#self_ty>::#name(&mut *__this, #(#names),*).await)
                    })
                }
            ))
        },
    }
}

/// The hash of the constructor's and every method's signature: a cluster worker built from
/// other code refuses the class with a version-skew error.
fn class_hash(ctor: &Constructor, methods: &[Method]) -> u64 {
    let mut parts = vec!["new".to_owned()];
    parts.extend(
        ctor.params
            .iter()
            .map(|(_, t)| t.to_token_stream().to_string()),
    );
    for m in methods {
        parts.push(m.name.to_string());
        parts.push(format!("{}{}", m.exclusive, m.asyncness.is_some()));
        parts.extend(
            m.params
                .iter()
                .map(|(_, t)| t.to_token_stream().to_string()),
        );
        parts.push(m.ret.to_token_stream().to_string());
    }
    signature_hash(parts.iter().map(String::as_str))
}

/// The class's registry entry: how a cluster worker builds the actor from encoded constructor
/// arguments and runs its methods by name. Written like a remote function's (checked and
/// unchecked traits), so a type that fails the compile-time check gives no error here.
fn host_registration(
    self_ty: &Type,
    class: &str,
    hash: u64,
    ctor: &Constructor,
    methods: &[Method],
) -> TokenStream {
    let send_sync = send_sync(self_ty);
    let bounds = remote_bounds(
        ctor.params.iter().map(|(_, t)| t).chain(
            methods
                .iter()
                .flat_map(|m| m.params.iter().map(|(_, t)| t).chain([&m.ret])),
        ),
    );
    let ctor_names: Vec<&Ident> = ctor.params.iter().map(|(n, _)| n).collect();
    let ctor_strs: Vec<String> = ctor_names.iter().map(|n| n.to_string()).collect();
    let ctor_types: Vec<&Type> = ctor.params.iter().map(|(_, t)| t).collect();
    let ctor_what = format!("{class}::new");
    let arms = methods.iter().map(|m| {
        let method_str = m.name.to_string();
        let what = format!("{class}::{}", m.name);
        let names: Vec<&Ident> = m.params.iter().map(|(n, _)| n).collect();
        let strs: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let types: Vec<&Type> = m.params.iter().map(|(_, t)| t).collect();
        let ret = &m.ret;
        let body = method_body(m, self_ty, &what, false);
        quote! {
            #method_str => {
                let (#(#names,)*): (#(#types,)*) = match ::raykit::__private::ArgReader::read(
                    #what,
                    __args,
                    |__r| ::core::result::Result::Ok((#(__r.next::<#types>(#strs)?,)*)),
                ) {
                    ::core::result::Result::Ok(v) => v,
                    ::core::result::Result::Err(e) => return __done(::core::result::Result::Err(e)),
                };
                // The actor is in this process: its arguments are never encoded again.
                __raw.call(
                    #method_str,
                    &[],
                    (#(#names,)*),
                    |_| ::std::vec::Vec::new(),
                    ::raykit::__private::Encoded::<#ret>::new(#what, __done),
                    move |(#(#names,)*)| #body,
                );
            }
        }
    });
    let unknown =
        format!("actor class `{class}` has no method `{{}}` in this binary (version skew?)");
    quote! {
        const _: () = {
            struct __Host;

            type __HostResult = ::raykit::Result<::std::boxed::Box<dyn ::raykit::__private::HostedActor>>;

            trait __Checked {
                fn __host(&self, __args: &[u8], __max_concurrency: u32) -> __HostResult;
            }

            #[allow(clippy::let_unit_value, clippy::unused_unit)]
            impl __Checked for __Host where #send_sync, #(#bounds,)* {
                fn __host(&self, __args: &[u8], __max_concurrency: u32) -> __HostResult {
                    let (#(#ctor_names,)*): (#(#ctor_types,)*) = ::raykit::__private::ArgReader::read(
                        #ctor_what,
                        __args,
                        |__r| ::core::result::Result::Ok((#(__r.next::<#ctor_types>(#ctor_strs)?,)*)),
                    )?;
                    ::raykit::__private::host_actor::<#self_ty, _>(
                        __max_concurrency,
                        move || <#self_ty>::new(#(#ctor_names),*),
                        |__raw: &::raykit::__private::RawHandle<#self_ty>,
                         __method: &str,
                         __args: &[u8],
                         __done: ::raykit::__private::Done| {
                            match __method {
                                #(#arms)*
                                __other => __done(::core::result::Result::Err(::raykit::Error::new(
                                    ::raykit::ErrorKind::VersionSkew,
                                    ::std::format!(#unknown, __other),
                                ))),
                            }
                        },
                    )
                }
            }

            #[allow(dead_code)]
            trait __Unchecked {
                fn __host(&self, _: &[u8], _: u32) -> __HostResult {
                    ::core::unreachable!("an actor whose types failed the compile-time check")
                }
            }

            impl __Unchecked for &__Host {}

            // Both traits are in scope here (items of this block): the checked one wins when
            // its bounds hold.
            fn __host(__args: &[u8], __max_concurrency: u32) -> __HostResult {
                (&__Host).__host(__args, __max_concurrency)
            }

            ::raykit::__private::inventory::submit! {
                ::raykit::__private::ActorClass::new(
                    ::core::concat!(::core::module_path!(), "::", #class),
                    #hash,
                    __host,
                )
            }
        };
    }
}
