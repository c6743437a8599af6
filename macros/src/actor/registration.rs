//! The registry entry of an actor class: how a cluster worker process builds the actor from
//! encoded constructor arguments and runs its methods by name, answering each call with its
//! encoded outputs.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, Type};

use super::expand::{method_body, remote_bounds, send_sync};
use super::{Constructor, Method};

/// The class's registry entry: how a cluster worker builds the actor from encoded constructor
/// arguments and runs its methods by name. Written like a remote function's (checked and
/// unchecked traits), so a type that fails the compile-time check gives no error here.
pub(super) fn host_registration(
    self_ty: &Type,
    class: &str,
    hash: u64,
    ctor: &Constructor,
    methods: &[Method],
) -> TokenStream {
    let send_sync = send_sync(self_ty);
    let bounds = remote_bounds(
        ctor.params
            .iter()
            .map(|(_, t)| t)
            .chain(methods.iter().flat_map(|m| {
                m.params
                    .iter()
                    .map(|(_, t)| t)
                    .chain([&m.ret])
                    .chain(&m.outputs)
            })),
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
        // Where the call's outputs go: its value encoded, or each element of the tuple
        // encoded on its own (`num_returns > 1`), one per object of the caller.
        let returns = if m.outputs.len() == 1 {
            quote!(::raykit::__private::Encoded::<#ret>::new(#what, __done))
        } else {
            let values: Vec<Ident> = (0..m.outputs.len())
                .map(|i| format_ident!("__value{}", i))
                .collect();
            quote! {
                ::raykit::__private::Encoded::<#ret>::split(#what, __done, |__what, (#(#values,)*)| {
                    ::core::result::Result::Ok(::std::vec![#(::raykit::__private::encode(__what, &#values)?),*])
                })
            }
        };
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
                    #returns,
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
