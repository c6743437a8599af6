//! Checks of a remote function: what its signature may not be (`const`, `unsafe`, generic,
//! taking `self`), arguments and return value that cannot cross a process boundary, and
//! `num_returns` against the return type.

use quote::format_ident;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use super::RemoteFn;
use crate::checks::{check_owned, outputs, Owner};
use crate::errors::Errors;
use crate::options::Options;

impl RemoteFn {
    pub(super) fn check(func: ItemFn, options: Options, errors: &mut Errors) -> Option<Self> {
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
        let generic = "a remote function cannot be generic: every node must find the one function by its name; write one remote function per concrete type";
        if !sig.generics.params.is_empty() {
            errors.spanned(&sig.generics, generic);
        } else if let Some(w) = &sig.generics.where_clause {
            errors.spanned(w, generic);
        }
        let mut params = Vec::new();
        for (i, arg) in sig.inputs.iter().enumerate() {
            match arg {
                FnArg::Receiver(r) => errors.spanned(
                    r,
                    "a remote function cannot take `self`; for methods use `#[raykit::actor]` on the impl block",
                ),
                FnArg::Typed(pt) => {
                    check_owned(&pt.ty, Owner::RemoteFn, "argument", errors);
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
                check_owned(ty, Owner::RemoteFn, "return value", errors);
                (**ty).clone()
            }
        };
        let outputs = outputs(options.num_returns, &ret, Owner::RemoteFn, errors)?;
        Some(RemoteFn {
            func,
            options,
            params,
            outputs,
            ret,
        })
    }
}
