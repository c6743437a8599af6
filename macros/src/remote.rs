//! `#[raykit::remote]`: parse the function and its options, check what cannot cross a process
//! boundary, and expand to the function itself plus a module of the same name holding
//! `remote`, `options` and the registry entry.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Item, ItemFn, Pat, ReturnType, Type};

use crate::errors::Errors;
use crate::hash::signature_hash;
use crate::options::{self, Options};

const KEYS: &[&str] = &[
    "num_cpus",
    "num_gpus",
    "resources",
    "max_retries",
    "num_returns",
];

/// A checked remote function.
struct RemoteFn {
    func: ItemFn,
    options: Options,
    params: Vec<(Ident, Type)>,
    /// One type per output object: the return type, or its elements with `num_returns > 1`.
    outputs: Vec<Type>,
    ret: Type,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = options::parse(args, KEYS, &mut errors);
    let func = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(f)) => f,
        Ok(other) => {
            let hint = match &other {
                Item::Struct(_) | Item::Enum(_) => {
                    "; for a stateful actor use `#[derive(raykit::Actor)]` on the type and \
                     `#[raykit::actor]` on its impl block"
                }
                Item::Impl(_) => "; on an impl block use `#[raykit::actor]`",
                _ => "",
            };
            errors.spanned(
                &other,
                format!("`#[raykit::remote]` goes on a function{hint}"),
            );
            return with_errors(item, errors);
        }
        Err(e) => {
            errors.push(e);
            return with_errors(item, errors);
        }
    };
    match RemoteFn::check(func, options, &mut errors) {
        Some(f) if errors.is_empty() => f.expand(),
        _ => with_errors(item, errors),
    }
}

fn with_errors(item: TokenStream, errors: Errors) -> TokenStream {
    let errs = errors.into_compile_errors();
    quote!(#item #errs)
}

impl RemoteFn {
    fn check(func: ItemFn, options: Options, errors: &mut Errors) -> Option<Self> {
        let sig = &func.sig;
        if let Some(c) = &sig.constness {
            errors.spanned(c, "a remote function cannot be `const`");
        }
        if let Some(u) = &sig.unsafety {
            errors.spanned(u, "a remote function cannot be `unsafe`: its callers cannot uphold its contract on another thread or node");
        }
        if let Some(abi) = &sig.abi {
            errors.spanned(abi, "a remote function cannot have an `extern` ABI");
        }
        if let Some(v) = &sig.variadic {
            errors.spanned(v, "a remote function cannot be variadic");
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.spanned(
                &sig.generics,
                "a remote function cannot be generic: every node must find the one function by its name; write one remote function per concrete type",
            );
        }
        let mut params = Vec::new();
        for (i, arg) in sig.inputs.iter().enumerate() {
            match arg {
                FnArg::Receiver(r) => errors.spanned(
                    r,
                    "a remote function cannot take `self`; for methods use `#[raykit::actor]` on the impl block",
                ),
                FnArg::Typed(pt) => {
                    check_owned(&pt.ty, "argument", errors);
                    let name = match &*pt.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                        _ => format_ident!("arg{}", i),
                    };
                    params.push((name, (*pt.ty).clone()));
                }
            }
        }
        let ret: Type = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => {
                check_owned(ty, "return value", errors);
                (**ty).clone()
            }
        };
        let outputs = match options.num_returns {
            None | Some((1, _)) => vec![ret.clone()],
            Some((n, span)) => match &ret {
                Type::Tuple(t) if t.elems.len() == n => t.elems.iter().cloned().collect(),
                Type::Tuple(t) => {
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "`num_returns = {n}` but the function returns a tuple of {}",
                            t.elems.len()
                        ),
                    ));
                    return None;
                }
                other => {
                    errors.spanned(
                        other,
                        format!("`num_returns = {n}` needs a tuple return type of {n} elements, like `(A, B)`"),
                    );
                    return None;
                }
            },
        };
        Some(RemoteFn {
            func,
            options,
            params,
            outputs,
            ret,
        })
    }

    fn expand(self) -> TokenStream {
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
            signature_hash(parts.iter().map(String::as_str))
        };
        let num_cpus = self.options.num_cpus.unwrap_or(1.0);
        let num_gpus = self.options.num_gpus.unwrap_or(0.0);
        let max_retries = self.options.max_retries.unwrap_or(3);
        let res_names = self.options.resources.iter().map(|(n, _)| n);
        let res_amounts = self.options.resources.iter().map(|(_, a)| a);

        let ref_types: Vec<TokenStream> = out_aliases
            .iter()
            .map(|a| quote!(::raykit::ObjectRef<super::#a>))
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
            quote!(super::#name(#(#param_names),*).await)
        } else {
            quote!(super::#name(#(#param_names),*))
        };
        let submit = if is_async {
            quote! {
                ::raykit::__private::submit_async(&__SPEC, __options, &__deps, #returns_expr, move || async move {
                    #(let #param_names = #param_names.resolve(__SPEC.name, #param_strs)?;)*
                    ::core::result::Result::Ok(#call)
                });
            }
        } else {
            quote! {
                ::raykit::__private::submit_sync(&__SPEC, __options, &__deps, #returns_expr, move || {
                    #(let #param_names = #param_names.resolve(__SPEC.name, #param_strs)?;)*
                    ::core::result::Result::Ok(#call)
                });
            }
        };
        let invoke = if is_async {
            quote! {
                fn __invoke(__args: ::std::vec::Vec<u8>) -> ::raykit::__private::BoxFuture<'static, ::raykit::Result<::std::vec::Vec<u8>>> {
                    ::std::boxed::Box::pin(async move {
                        let (#(#param_names,)*): (#(super::#param_aliases,)*) = ::raykit::__private::decode(__SPEC.name, &__args)?;
                        let __value: super::#ret_alias = #call;
                        ::raykit::__private::encode(__SPEC.name, &__value)
                    })
                }
                ::raykit::__private::inventory::submit! {
                    ::raykit::__private::RemoteFunction::new(&__SPEC, ::raykit::__private::Invoke::Async(__invoke))
                }
            }
        } else {
            quote! {
                fn __invoke(__args: &[u8]) -> ::raykit::Result<::std::vec::Vec<u8>> {
                    let (#(#param_names,)*): (#(super::#param_aliases,)*) = ::raykit::__private::decode(__SPEC.name, __args)?;
                    let __value: super::#ret_alias = #call;
                    ::raykit::__private::encode(__SPEC.name, &__value)
                }
                ::raykit::__private::inventory::submit! {
                    ::raykit::__private::RemoteFunction::new(&__SPEC, ::raykit::__private::Invoke::Sync(__invoke))
                }
            }
        };
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

            const _: () = { #(#checks)* };

            #[doc = #mod_doc]
            #[allow(unreachable_pub, clippy::too_many_arguments, clippy::unused_unit)]
            #vis mod #name {
                #[doc(hidden)]
                pub static __SPEC: ::raykit::__private::TaskSpec = ::raykit::__private::TaskSpec {
                    name: ::core::module_path!(),
                    signature_hash: #hash,
                    num_cpus: #num_cpus,
                    num_gpus: #num_gpus,
                    resources: &[#((#res_names, #res_amounts)),*],
                    max_retries: #max_retries,
                    is_async: #is_async,
                };

                #[doc = #remote_doc]
                pub fn remote(#(#param_names: impl ::raykit::IntoArg<super::#param_aliases>),*) -> #refs_type {
                    __submit(::core::option::Option::None, #(::raykit::IntoArg::into_arg(#param_names)),*)
                }

                /// Overrides options for one call: `options(TaskOptions::new()..).remote(..)`.
                pub fn options(options: ::raykit::TaskOptions) -> Options {
                    Options(options)
                }

                /// A call with per-call options; finish it with `.remote(..)`.
                #[derive(Debug, Clone)]
                pub struct Options(::raykit::TaskOptions);

                impl Options {
                    #[doc = #remote_doc]
                    pub fn remote(self, #(#param_names: impl ::raykit::IntoArg<super::#param_aliases>),*) -> #refs_type {
                        __submit(::core::option::Option::Some(self.0), #(::raykit::IntoArg::into_arg(#param_names)),*)
                    }
                }

                fn __submit(
                    __options: ::core::option::Option<::raykit::TaskOptions>,
                    #(#param_names: ::raykit::Arg<super::#param_aliases>),*
                ) -> #refs_type {
                    #[allow(unused_imports)]
                    use ::raykit::__private::{ViaClone as _, ViaSerde as _};
                    #(
                        let (#out_vars, #ref_vars) = ::raykit::__private::One::<super::#out_aliases>::new(
                            (&::raykit::__private::Probe::<super::#out_aliases>::new()).cloner(),
                        );
                    )*
                    let __deps: [::core::option::Option<::raykit::__private::Arc<::raykit::__private::Slot>>; #n_params] =
                        [#(#param_names.dependency()),*];
                    #submit
                    #refs_expr
                }

                #invoke
            }
        }
    }
}

/// Reports parameter or return types that cannot be sent to another thread or node.
pub(crate) fn check_owned(ty: &Type, what: &str, errors: &mut Errors) {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => errors.spanned(
            ty,
            format!(
                "a remote function cannot take `&mut` {what}s: the task works on its own copy, \
                 so changes would never reach the caller; take the value and return the result"
            ),
        ),
        Type::Reference(_) => errors.spanned(
            ty,
            format!(
                "a remote function's {what} must be an owned value, not a reference: it is sent \
                 to another thread or node; take `T` (callers may pass an `ObjectRef<T>`)"
            ),
        ),
        Type::ImplTrait(_) => errors.spanned(
            ty,
            format!("`impl Trait` cannot be a remote function's {what}: name a concrete type"),
        ),
        Type::Infer(_) => errors.spanned(ty, format!("the {what} type must be written out")),
        _ => {}
    }
}
