//! Expansion of a checked remote function: the function as written, type aliases of its
//! parameters and outputs, the compile-time `RemoteValue` checks, and the module `f` with
//! `f::remote`, `f::options`, the encoded `__invoke` and its registry entry.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::RemoteFn;
use crate::hash::signature_hash;

impl RemoteFn {
    pub(super) fn expand(self) -> TokenStream {
        let func = &self.func;
        let vis = &func.vis;
        let name = &func.sig.ident;
        let is_async = func.sig.asyncness.is_some();
        let alias = |what: String| format_ident!("__raykit_{}_{}", name, what);

        // Type aliases in the function's own scope, so the module below names the types exactly
        // as the user wrote them, wherever they were imported from.
        let param_aliases: Vec<Ident> = (0..self.params.len())
            .map(|i| alias(format!("arg{i}")))
            .collect();
        let out_aliases: Vec<Ident> = (0..self.outputs.len())
            .map(|i| alias(format!("out{i}")))
            .collect();
        let ret_alias = alias("ret".into());
        let param_types: Vec<&Type> = self.params.iter().map(|(_, t)| t).collect();
        let param_names: Vec<&Ident> = self.params.iter().map(|(n, _)| n).collect();
        let param_strs: Vec<String> = param_names.iter().map(|n| n.to_string()).collect();
        let outputs = &self.outputs;
        let ret = &self.ret;

        let checks = param_types.iter().copied().chain(outputs.iter()).map(|ty| {
            quote_spanned! {ty.span()=>
                ::raykit::__private::assert_remote_value::<#ty>();
            }
        });

        let hash = {
            let mut parts = vec![
                name.to_string(),
                if is_async {
                    "async".into()
                } else {
                    "sync".into()
                },
            ];
            parts.extend(param_types.iter().map(|t| t.to_token_stream().to_string()));
            parts.push(ret.to_token_stream().to_string());
            // The number of outputs is part of the signature (a caller expecting one object
            // per tuple element must not meet a binary that makes one object); counted only
            // past one, so single-output functions hash as before.
            if self.outputs.len() > 1 {
                parts.push(format!("returns {}", self.outputs.len()));
            }
            signature_hash(parts.iter().map(String::as_str))
        };
        let num_cpus = self.options.num_cpus.unwrap_or(1.0);
        let num_gpus = self.options.num_gpus.unwrap_or(0.0);
        let max_retries = self.options.max_retries.unwrap_or(3);
        let res_names = self.options.resources.iter().map(|(n, _)| n);
        let res_amounts = self.options.resources.iter().map(|(_, a)| a);

        let ref_types: Vec<TokenStream> = out_aliases
            .iter()
            .map(|a| quote!(::raykit::ObjectRef<#a>))
            .collect();
        let (refs_type, out_vars, ref_vars) = if outputs.len() == 1 {
            let r = &ref_types[0];
            (
                quote!(#r),
                vec![format_ident!("__out0")],
                vec![format_ident!("__ref0")],
            )
        } else {
            let o: Vec<Ident> = (0..outputs.len())
                .map(|i| format_ident!("__out{}", i))
                .collect();
            let r: Vec<Ident> = (0..outputs.len())
                .map(|i| format_ident!("__ref{}", i))
                .collect();
            (quote!((#(#ref_types,)*)), o, r)
        };
        let (returns_expr, refs_expr) = if outputs.len() == 1 {
            (quote!(__out0), quote!(__ref0))
        } else {
            (quote!((#(#out_vars,)*)), quote!((#(#ref_vars,)*)))
        };
        let n_params = self.params.len();

        let call = if is_async {
            quote!(__raykit_fn(#(#param_names),*).await)
        } else {
            quote!(__raykit_fn(#(#param_names),*))
        };
        // A non-`Send` future of an async fn is reported on its `async` keyword.
        let async_span = func
            .sig
            .asyncness
            .as_ref()
            .map_or_else(|| name.span(), |a| a.span);
        // The arguments travel as one tuple with the way to encode them, used by a backend
        // that runs the call in another process.
        let arg_index = (0..self.params.len()).map(syn::Index::from);
        let args_and_encode = quote! {
            (#(#param_names,)*),
            |__a| ::std::vec![#(__a.#arg_index.to_wire()),*]
        };
        let submit = if is_async {
            quote_spanned! {async_span=>
                ::raykit::__private::submit_async(&__SPEC, __options, &__deps, #args_and_encode, #returns_expr, move |(#(#param_names,)*)| async move {
                    #(let #param_names = #param_names.resolve(__SPEC.name, #param_strs)?;)*
                    ::core::result::Result::Ok(#call)
                });
            }
        } else {
            quote! {
                ::raykit::__private::submit_sync(&__SPEC, __options, &__deps, #args_and_encode, #returns_expr, move |(#(#param_names,)*)| {
                    #(let #param_names = #param_names.resolve(__SPEC.name, #param_strs)?;)*
                    ::core::result::Result::Ok(#call)
                });
            }
        };
        let (invoke_arg_ty, invoke_ret, invoke_variant) = if is_async {
            (
                quote!(::std::vec::Vec<u8>),
                quote!(
                    ::raykit::__private::BoxFuture<
                        'static,
                        ::raykit::Result<::std::vec::Vec<::std::vec::Vec<u8>>>,
                    >
                ),
                quote!(Async),
            )
        } else {
            (
                quote!(&[u8]),
                quote!(::raykit::Result<::std::vec::Vec<::std::vec::Vec<u8>>>),
                quote!(Sync),
            )
        };
        let invoke_args = quote!(__args: #invoke_arg_ty);
        // One encoded value per output object: the value, or each element of the tuple.
        let encode_outputs = if outputs.len() == 1 {
            quote!(::core::result::Result::Ok(::std::vec![
                ::raykit::__private::encode(__SPEC.name, &__value)?
            ]))
        } else {
            let elems: Vec<Ident> = (0..outputs.len())
                .map(|i| format_ident!("__value{}", i))
                .collect();
            quote! {
                let (#(#elems,)*) = __value;
                ::core::result::Result::Ok(::std::vec![#(::raykit::__private::encode(__SPEC.name, &#elems)?),*])
            }
        };
        // The arguments' encodings, one after another.
        let decode_args = quote! {
            let (#(#param_names,)*): (#(#param_aliases,)*) = ::raykit::__private::ArgReader::read(
                __SPEC.name,
                &__args,
                |__r| ::core::result::Result::Ok((#(__r.next::<#param_aliases>(#param_strs)?,)*)),
            )?;
        };
        let invoke_body = if is_async {
            quote_spanned! {async_span=>
                ::std::boxed::Box::pin(async move {
                    #decode_args
                    let __value: #ret_alias = #call;
                    #encode_outputs
                })
            }
        } else {
            quote! {
                #decode_args
                let __value: #ret_alias = #call;
                #encode_outputs
            }
        };
        let submit_params = quote! {
            __options: ::core::option::Option<::raykit::TaskOptions>,
            #(#param_names: ::raykit::Arg<#param_aliases>),*
        };
        let wild_params = param_aliases.iter().map(|a| quote!(_: ::raykit::Arg<#a>));
        let checked_bounds = param_aliases
            .iter()
            .chain(&out_aliases)
            .map(|a| quote!(for<'__raykit> #a: ::raykit::__private::RemoteValue));
        // The bound on each argument of `f::remote` is spanned on the parameter's type, so a
        // wrong argument's "required by this bound" points there.
        let into_args: Vec<TokenStream> = param_aliases
            .iter()
            .zip(&param_types)
            .map(|(a, ty)| quote_spanned!(ty.span()=> impl ::raykit::IntoArg<#a>))
            .collect();
        // The module imports the function and the type aliases once, on the function's name: a
        // function declared inside a block (where the module cannot see it) gets one error there.
        let imports = quote_spanned! {name.span()=>
            #[allow(unused_imports)]
            use super::{#name as __raykit_fn, #ret_alias, #(#param_aliases,)* #(#out_aliases,)*};
        };
        // `f::remote` is named at the user's function, so "function defined here" points there.
        let remote_fn = format_ident!("remote", span = name.span());
        let mod_doc = format!(
            "Remote calls of the function `{name}`: `{name}::remote(..)` runs it as a task and \
             returns an `ObjectRef` at once."
        );
        let remote_doc = format!(
            "Runs `{name}` as a task and returns a ref to its result at once. Each argument may \
             be a value, an `ObjectRef` or a `&ObjectRef` of the parameter's type."
        );

        quote! {
            #func

            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            type #ret_alias = #ret;
            #(
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                type #param_aliases = #param_types;
            )*
            #(
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                type #out_aliases = #outputs;
            )*

            // The one place a type that cannot cross a remote boundary is reported, on the
            // user's own type.
            const _: () = { #(#checks)* };

            #[doc = #mod_doc]
            #[allow(unreachable_pub, clippy::too_many_arguments, clippy::unused_unit)]
            #vis mod #name {
                #imports

                #[doc(hidden)]
                pub static __SPEC: ::raykit::__private::TaskSpec = ::raykit::__private::TaskSpec {
                    name: ::core::module_path!(),
                    signature_hash: #hash,
                    num_cpus: #num_cpus,
                    num_gpus: #num_gpus,
                    resources: &[#((#res_names, #res_amounts)),*],
                    max_retries: #max_retries,
                    is_async: #is_async,
                    params: &[#(::core::stringify!(#param_names)),*],
                };

                #[doc = #remote_doc]
                pub fn #remote_fn(#(#param_names: #into_args),*) -> #refs_type {
                    __submit(::core::option::Option::None, #(::raykit::IntoArg::into_arg(#param_names)),*)
                }

                /// Overrides options for one call: `options(TaskOptions::new()..).remote(..)`.
                pub fn options(options: ::raykit::TaskOptions) -> Options {
                    Options(options)
                }

                /// A call with per-call options; finish it with `.remote(..)`.
                #[derive(::core::fmt::Debug, ::core::clone::Clone)]
                pub struct Options(::raykit::TaskOptions);

                impl Options {
                    #[doc = #remote_doc]
                    pub fn #remote_fn(self, #(#param_names: #into_args),*) -> #refs_type {
                        __submit(::core::option::Option::Some(self.0), #(::raykit::IntoArg::into_arg(#param_names)),*)
                    }
                }

                // The code that needs every argument and output to be a `RemoteValue` lives in
                // an impl that assumes it (written `for<'__raykit> T: RemoteValue`, so a false
                // bound is not an error of its own). When a type is not one, method resolution
                // picks the unchecked fallback instead: the only error is the check above, on
                // the user's type, and none points into this module.
                struct __Task;

                trait __Checked {
                    fn __submit(&self, #submit_params) -> #refs_type;
                    fn __invoke(&self, #invoke_args) -> #invoke_ret;
                }

                impl __Checked for __Task where #(#checked_bounds,)* {
                    fn __submit(&self, #submit_params) -> #refs_type {
                        #[allow(unused_imports)]
                        use ::raykit::__private::{NoDecode as _, ViaClone as _, ViaDecode as _, ViaSerde as _};
                        #(
                            let (#out_vars, #ref_vars) = ::raykit::__private::One::<#out_aliases>::new(
                                (&::raykit::__private::Probe::<#out_aliases>::new()).cloner(),
                                (&::raykit::__private::Probe::<#out_aliases>::new()).decoder(),
                            );
                        )*
                        let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n_params] =
                            [#(#param_names.dependency()),*];
                        #submit
                        #refs_expr
                    }

                    fn __invoke(&self, #invoke_args) -> #invoke_ret {
                        #invoke_body
                    }
                }

                #[allow(dead_code)]
                trait __Unchecked {
                    fn __submit(&self, _: ::core::option::Option<::raykit::TaskOptions>, #(#wild_params),*) -> #refs_type {
                        ::core::unreachable!("a remote function whose types failed the compile-time check")
                    }
                    fn __invoke(&self, _: #invoke_arg_ty) -> #invoke_ret {
                        ::core::unreachable!("a remote function whose types failed the compile-time check")
                    }
                }

                impl __Unchecked for &__Task {}

                fn __submit(#submit_params) -> #refs_type {
                    #[allow(unused_imports)]
                    use self::{__Checked as _, __Unchecked as _};
                    (&__Task).__submit(__options, #(#param_names),*)
                }

                fn __invoke(#invoke_args) -> #invoke_ret {
                    #[allow(unused_imports)]
                    use self::{__Checked as _, __Unchecked as _};
                    (&__Task).__invoke(__args)
                }

                ::raykit::__private::inventory::submit! {
                    ::raykit::__private::RemoteFunction::new(&__SPEC, ::raykit::__private::Invoke::#invoke_variant(__invoke))
                }

                // A worker process (started by a cluster node from this executable) serves tasks
                // from here, before `main` runs.
                #[cfg(target_os = "linux")]
                #[used]
                #[unsafe(link_section = ".init_array")]
                static __RAYKIT_WORKER_ENTRY: extern "C" fn() = {
                    extern "C" fn __raykit_worker_entry() {
                        ::raykit::__private::worker_entry();
                    }
                    __raykit_worker_entry
                };
            }
        }
    }
}
