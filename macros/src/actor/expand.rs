//! Expansion of a checked actor block: the block as written, the compile-time `RemoteValue`
//! checks, the handle's proxy with one method per actor method, the `ActorMethods` impl, and
//! `T::remote` / `T::options(..).remote` with the creation builder.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, ItemImpl, Type};

use super::registration::host_registration;
use super::{Constructor, Method};
use crate::hash::signature_hash;

/// The bound every generated item assumes of the actor's state.
pub(super) fn send_sync(ty: &Type) -> TokenStream {
    quote!(for<'__raykit> #ty: ::core::marker::Send + ::core::marker::Sync)
}

/// `for<'__raykit> T: RemoteValue` for each distinct type, each spanned on the type.
pub(super) fn remote_bounds<'a>(types: impl IntoIterator<Item = &'a Type>) -> Vec<TokenStream> {
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

/// `impl IntoArg<T>` for each parameter, spanned on its type, so a wrong argument's "required
/// by this bound" points at the parameter.
fn into_args(params: &[(Ident, Type)]) -> Vec<TokenStream> {
    params
        .iter()
        .map(|(_, ty)| quote_spanned!(ty.span()=> impl ::raykit::IntoArg<#ty>))
        .collect()
}

/// How a handle's method makes the objects of one call: one per output type.
struct OutputRefs {
    /// What the method returns: `ObjectRef<T>`, or a tuple of refs with `num_returns > 1`.
    refs_type: TokenStream,
    /// `let`s making each pending object and its ref.
    make: TokenStream,
    /// The `Returns` the call fills: `One<T>`, or a tuple of them.
    returns: TokenStream,
    /// The refs, returned to the caller.
    refs: TokenStream,
}

fn output_refs(outputs: &[Type]) -> OutputRefs {
    let one = |ty: &Type, out: &Ident, r: &Ident| {
        quote! {
            let (#out, #r) = ::raykit::__private::One::<#ty>::new(
                (&::raykit::__private::Probe::<#ty>::new()).cloner(),
                (&::raykit::__private::Probe::<#ty>::new()).decoder(),
            );
        }
    };
    if let [ty] = outputs {
        let (out, r) = (format_ident!("__out"), format_ident!("__ref"));
        return OutputRefs {
            refs_type: quote!(::raykit::ObjectRef<#ty>),
            make: one(ty, &out, &r),
            returns: quote!(#out),
            refs: quote!(#r),
        };
    }
    let outs: Vec<Ident> = (0..outputs.len())
        .map(|i| format_ident!("__out{}", i))
        .collect();
    let refs: Vec<Ident> = (0..outputs.len())
        .map(|i| format_ident!("__ref{}", i))
        .collect();
    let make = outputs
        .iter()
        .zip(&outs)
        .zip(&refs)
        .map(|((ty, out), r)| one(ty, out, r));
    OutputRefs {
        refs_type: quote!((#(::raykit::ObjectRef<#outputs>,)*)),
        make: quote!(#(#make)*),
        returns: quote!((#(#outs,)*)),
        refs: quote!((#(#refs,)*)),
    }
}

pub(super) fn generate(
    imp: &ItemImpl,
    class: &Ident,
    ctor: Constructor,
    methods: Vec<Method>,
) -> TokenStream {
    let self_ty = &imp.self_ty;
    let proxy = format_ident!("__RaykitProxy{}", class);
    let create = format_ident!("__RaykitCreate{}", class);
    let class_str = class.to_string();
    let send_sync = send_sync(self_ty);
    let hash = class_hash(&ctor, &methods);

    let all_types = ctor.params.iter().map(|(_, t)| t).chain(
        methods
            .iter()
            .flat_map(|m| m.params.iter().map(|(_, t)| t).chain(&m.outputs)),
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
        let Method { vis, name, docs, params, ret, outputs, .. } = m;
        let names: Vec<&Ident> = params.iter().map(|(n, _)| n).collect();
        let args = into_args(params);
        let bounds = remote_bounds(params.iter().map(|(_, t)| t).chain([ret]).chain(outputs));
        let OutputRefs { refs_type, make, returns, refs } = output_refs(outputs);
        let what = format!("{class}::{name}");
        let method_str = name.to_string();
        let n = params.len();
        let index = (0..n).map(syn::Index::from);
        let body = method_body(m, self_ty, &what, true);
        quote! {
            #[allow(unreachable_pub, clippy::too_many_arguments, clippy::unused_unit)]
            impl #proxy where #send_sync, #(#bounds,)* {
                #(#docs)*
                #vis fn #name(&self, #(#names: #args),*) -> #refs_type {
                    #[allow(unused_imports)]
                    use ::raykit::__private::{NoDecode as _, ViaClone as _, ViaDecode as _, ViaSerde as _};
                    #(let #names = ::raykit::IntoArg::into_arg(#names);)*
                    let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n] =
                        [#(#names.dependency()),*];
                    #make
                    // The arguments go as one tuple with the way to encode them, used when the
                    // actor lives in another process.
                    self.0.call(
                        #method_str,
                        &__deps,
                        (#(#names,)*),
                        |__a| ::std::vec![#(__a.#index.to_wire()),*],
                        #returns,
                        move |(#(#names,)*)| #body,
                    );
                    #refs
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
pub(super) fn method_body(m: &Method, self_ty: &Type, what: &str, resolve: bool) -> TokenStream {
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
        // The number of objects a call makes changes what the worker sends back. (Counted only
        // when it is not one, so one-output classes hash as they did before `num_returns`.)
        if m.outputs.len() > 1 {
            parts.push(format!("num_returns={}", m.outputs.len()));
        }
    }
    signature_hash(parts.iter().map(String::as_str))
}
