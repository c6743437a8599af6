//! `#[raykit::actor]` on an impl block: the constructor `new` gives `T::remote(..)` and
//! `T::options(..).remote(..)`; every public `&self` / `&mut self` method becomes a method of
//! the handle's proxy returning an `ObjectRef`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type, Visibility};

use crate::errors::Errors;
use crate::remote::check_owned;

/// Names the macro generates on the type or the handle: a method with one of them could never
/// be called through the handle.
const RESERVED: &[&str] = &["remote", "options", "kill", "id", "clone"];

struct Method {
    vis: Visibility,
    name: Ident,
    docs: Vec<syn::Attribute>,
    exclusive: bool,
    is_async: bool,
    params: Vec<(Ident, Type)>,
    ret: Type,
}

struct Constructor {
    vis: Visibility,
    params: Vec<(Ident, Type)>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.spanned(
            &args,
            "`#[raykit::actor]` takes no options; put them on the type: `#[actor(max_concurrency = 2)]`",
        );
    }
    let imp: ItemImpl = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            errors.push(syn::Error::new_spanned(
                &item,
                "`#[raykit::actor]` goes on the impl block of an actor type (`impl Counter { .. }`); \
                 for a function use `#[raykit::remote]`",
            ));
            return with_errors(item, errors);
        }
    };
    if let Some((_, path, _)) = &imp.trait_ {
        errors.spanned(
            path,
            "`#[raykit::actor]` goes on an inherent impl block, not a trait impl",
        );
    }
    if !imp.generics.params.is_empty() {
        errors.spanned(&imp.generics, "an actor type cannot be generic");
    }
    let class = match &*imp.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let Some(class) = class else {
        errors.spanned(&imp.self_ty, "an actor is a named struct or enum");
        return with_errors(item, errors);
    };

    let mut constructor = None;
    let mut methods = Vec::new();
    for it in &imp.items {
        let ImplItem::Fn(f) = it else { continue };
        if f.sig.ident == "new" {
            constructor = check_constructor(f, &class, &mut errors);
            continue;
        }
        if matches!(f.vis, Visibility::Inherited) {
            continue; // private helper
        }
        if let Some(m) = check_method(f, &imp.self_ty, &mut errors) {
            methods.push(m);
        }
    }
    if constructor.is_none()
        && !imp
            .items
            .iter()
            .any(|i| matches!(i, ImplItem::Fn(f) if f.sig.ident == "new"))
    {
        errors.spanned(
            &imp.self_ty,
            format!("actor `{class}` needs a constructor in this block: `pub fn new(..) -> Self`"),
        );
    }
    match (errors.is_empty(), constructor) {
        (true, Some(ctor)) => generate(&imp, &class, ctor, methods),
        _ => with_errors(item, errors),
    }
}

fn with_errors(item: TokenStream, errors: Errors) -> TokenStream {
    let errs = errors.into_compile_errors();
    quote!(#item #errs)
}

fn params_of(f: &ImplItemFn, self_ty: Option<&Type>, errors: &mut Errors) -> Vec<(Ident, Type)> {
    let mut params = Vec::new();
    for (i, arg) in f.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = arg else { continue };
        let mut ty = (*pt.ty).clone();
        if let Some(s) = self_ty {
            ReplaceSelf(s).visit_type_mut(&mut ty);
        }
        check_owned(&pt.ty, "argument", errors);
        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            _ => format_ident!("arg{}", i),
        };
        params.push((name, ty));
    }
    params
}

fn check_constructor(f: &ImplItemFn, class: &Ident, errors: &mut Errors) -> Option<Constructor> {
    let sig = &f.sig;
    if let Some(r) = sig.receiver() {
        errors.spanned(
            r,
            "the constructor `new` cannot take `self`: it makes the actor",
        );
    }
    if let Some(a) = &sig.asyncness {
        errors.spanned(a, "the constructor `new` cannot be `async`");
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "the constructor `new` cannot be generic");
    }
    let returns_self = match &sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => {
                p.qself.is_none() && (p.path.is_ident("Self") || p.path.is_ident(class))
            }
            _ => false,
        },
        ReturnType::Default => false,
    };
    if !returns_self {
        errors.spanned(
            &sig.output,
            format!("the constructor must return the actor itself: `pub fn new(..) -> Self` (or `-> {class}`)"),
        );
    }
    let params = params_of(f, None, errors);
    // Generated only when the whole block is free of errors.
    Some(Constructor {
        vis: f.vis.clone(),
        params,
    })
}

fn check_method(f: &ImplItemFn, self_ty: &Type, errors: &mut Errors) -> Option<Method> {
    let sig = &f.sig;
    let receiver = sig.receiver()?;
    let name = sig.ident.clone();
    let mut ok = true;
    if RESERVED.iter().any(|r| name == r) {
        errors.spanned(
            &name,
            format!(
                "an actor method cannot be named `{name}`: raykit generates `{name}` on the actor's \
                 type or handle; rename the method"
            ),
        );
        ok = false;
    }
    let exclusive = match (&receiver.reference, &receiver.mutability, &*receiver.ty) {
        (Some(_), m, _) => m.is_some(),
        _ => {
            errors.spanned(
                receiver,
                "an actor method takes `&self` or `&mut self`: the actor keeps its state between calls",
            );
            ok = false;
            false
        }
    };
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "an actor method cannot be generic: a handle must know each method's types",
        );
        ok = false;
    }
    if let Some(u) = &sig.unsafety {
        errors.spanned(u, "an actor method cannot be `unsafe`");
        ok = false;
    }
    let params = params_of(f, Some(self_ty), errors);
    let mut ret: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => {
            check_owned(ty, "return value", errors);
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
        is_async: sig.asyncness.is_some(),
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

fn generate(imp: &ItemImpl, class: &Ident, ctor: Constructor, methods: Vec<Method>) -> TokenStream {
    let self_ty = &imp.self_ty;
    let proxy = format_ident!("__RaykitProxy{}", class);
    let create = format_ident!("__RaykitCreate{}", class);
    let class_str = class.to_string();

    let all_types = ctor.params.iter().map(|(_, t)| t).chain(
        methods
            .iter()
            .flat_map(|m| m.params.iter().map(|(_, t)| t).chain([&m.ret])),
    );
    let checks = all_types.map(|ty| {
        quote_spanned! {ty.span()=> ::raykit::__private::assert_remote_value::<#ty>(); }
    });

    let ctor_vis = &ctor.vis;
    let ctor_names: Vec<&Ident> = ctor.params.iter().map(|(n, _)| n).collect();
    let ctor_types: Vec<&Type> = ctor.params.iter().map(|(_, t)| t).collect();
    let ctor_strs: Vec<String> = ctor_names.iter().map(|n| n.to_string()).collect();
    let ctor_what = format!("{class}::new");
    let n_ctor = ctor.params.len();
    let remote_doc = format!(
        "Creates a `{class}` actor: runs `{class}::new` on the runtime and returns its handle at \
         once. Each argument may be a value, an `ObjectRef` or a `&ObjectRef`."
    );

    let proxy_methods = methods.iter().map(|m| {
        let Method { vis, name, docs, exclusive, is_async, params, ret } = m;
        let names: Vec<&Ident> = params.iter().map(|(n, _)| n).collect();
        let types: Vec<&Type> = params.iter().map(|(_, t)| t).collect();
        let strs: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let what = format!("{class}::{name}");
        let method_str = name.to_string();
        let n = params.len();
        let body = match (exclusive, is_async) {
            (false, false) => quote! {
                ::raykit::__private::MethodBody::Ref(::std::boxed::Box::new(move |__this: &#self_ty| {
                    #(let #names = #names.resolve(#what, #strs)?;)*
                    ::core::result::Result::Ok(<#self_ty>::#name(__this, #(#names),*))
                }))
            },
            (true, false) => quote! {
                ::raykit::__private::MethodBody::Mut(::std::boxed::Box::new(move |__this: &mut #self_ty| {
                    #(let #names = #names.resolve(#what, #strs)?;)*
                    ::core::result::Result::Ok(<#self_ty>::#name(__this, #(#names),*))
                }))
            },
            (false, true) => quote! {
                ::raykit::__private::MethodBody::RefAsync(::std::boxed::Box::new(
                    move |__this: ::raykit::__private::ReadGuard<#self_ty>| {
                        ::std::boxed::Box::pin(async move {
                            #(let #names = #names.resolve(#what, #strs)?;)*
                            ::core::result::Result::Ok(<#self_ty>::#name(&*__this, #(#names),*).await)
                        })
                    }
                ))
            },
            (true, true) => quote! {
                ::raykit::__private::MethodBody::MutAsync(::std::boxed::Box::new(
                    move |mut __this: ::raykit::__private::WriteGuard<#self_ty>| {
                        ::std::boxed::Box::pin(async move {
                            #(let #names = #names.resolve(#what, #strs)?;)*
                            ::core::result::Result::Ok(<#self_ty>::#name(&mut *__this, #(#names),*).await)
                        })
                    }
                ))
            },
        };
        quote! {
            #(#docs)*
            #vis fn #name(&self, #(#names: impl ::raykit::IntoArg<#types>),*) -> ::raykit::ObjectRef<#ret> {
                #[allow(unused_imports)]
                use ::raykit::__private::{ViaClone as _, ViaSerde as _};
                #(let #names = ::raykit::IntoArg::into_arg(#names);)*
                let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n] =
                    [#(#names.dependency()),*];
                let (__out, __ref) = ::raykit::__private::One::<#ret>::new(
                    (&::raykit::__private::Probe::<#ret>::new()).cloner(),
                );
                self.0.call(#method_str, &__deps, __out, #body);
                __ref
            }
        }
    });

    let proxy_doc =
        format!("The methods of a `{class}` actor handle: each returns an `ObjectRef` at once.");
    quote! {
        #imp

        const _: () = { #(#checks)* };

        #[doc = #proxy_doc]
        #[doc(hidden)]
        #[derive(Clone)]
        #[allow(unreachable_pub, missing_debug_implementations)]
        pub struct #proxy(::raykit::__private::RawHandle<#self_ty>);

        #[allow(unreachable_pub, clippy::too_many_arguments, clippy::unused_unit)]
        impl #proxy {
            #(#proxy_methods)*
        }

        impl ::raykit::__private::ActorMethods for #self_ty {
            type Proxy = #proxy;

            fn __proxy(raw: ::raykit::__private::RawHandle<Self>) -> #proxy {
                #proxy(raw)
            }

            fn __raw(proxy: &#proxy) -> &::raykit::__private::RawHandle<Self> {
                &proxy.0
            }
        }

        #[allow(clippy::too_many_arguments)]
        impl #self_ty {
            #[doc = #remote_doc]
            #ctor_vis fn remote(#(#ctor_names: impl ::raykit::IntoArg<#ctor_types>),*) -> ::raykit::ActorHandle<#self_ty> {
                Self::options(::raykit::ActorOptions::new()).remote(#(#ctor_names),*)
            }

            /// Creates the actor with options (name, resources, concurrency): finish with `.remote(..)`.
            #ctor_vis fn options(options: ::raykit::ActorOptions) -> #create {
                #create(options)
            }
        }

        #[doc = concat!("Creation of a `", #class_str, "` actor with options; finish it with `.remote(..)`.")]
        #[doc(hidden)]
        #[allow(unreachable_pub, missing_debug_implementations)]
        pub struct #create(::raykit::ActorOptions);

        #[allow(unreachable_pub, clippy::too_many_arguments)]
        impl #create {
            #[doc = #remote_doc]
            pub fn remote(self, #(#ctor_names: impl ::raykit::IntoArg<#ctor_types>),*) -> ::raykit::ActorHandle<#self_ty> {
                #(let #ctor_names = ::raykit::IntoArg::into_arg(#ctor_names);)*
                let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n_ctor] =
                    [#(#ctor_names.dependency()),*];
                ::raykit::ActorHandle::from_raw(::raykit::__private::RawHandle::<#self_ty>::create(
                    self.0,
                    &__deps,
                    move || {
                        #(let #ctor_names = #ctor_names.resolve(#ctor_what, #ctor_strs)?;)*
                        ::core::result::Result::Ok(<#self_ty>::new(#(#ctor_names),*))
                    },
                ))
            }
        }
    }
}
