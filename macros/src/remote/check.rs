//! Checks of a remote function: what its signature may not be (`const`, `unsafe`, generic,
//! taking `self`), arguments and return value that cannot cross a process boundary, and
//! `num_returns` against the return type.

use quote::{format_ident, ToTokens};
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use super::{RemoteFn, MAX_RETURNS};
use crate::checks::{check_owned, Owner};
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
        let outputs = match options.num_returns {
            None | Some((1, _)) => vec![ret.clone()],
            Some((n, span)) if n > MAX_RETURNS => {
                errors.push(syn::Error::new(
                    span,
                    format!("`num_returns` can be at most {MAX_RETURNS}; return a `Vec` or a struct for more"),
                ));
                return None;
            }
            Some((n, span)) => match &ret {
                Type::Tuple(t) if t.elems.len() == n => t.elems.iter().cloned().collect(),
                Type::Tuple(t) if t.elems.is_empty() => {
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "`num_returns = {n}` but the function returns nothing; return a tuple of {n} elements, like `(A, B)`"
                        ),
                    ));
                    return None;
                }
                Type::Tuple(t) => {
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "`num_returns = {n}` but the function returns a tuple of {}: `{}`; make them agree",
                            t.elems.len(),
                            t.to_token_stream(),
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
}
