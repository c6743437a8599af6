//! `#[raykit::remote]`: parse the function and its options (here), check what cannot cross a
//! process boundary (`check.rs`), and expand to the function itself plus a module of the same
//! name holding `remote`, `options` and the registry entry (`expand.rs`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, Item, ItemFn, Type};

use crate::checks::item_head;
use crate::errors::Errors;
use crate::options::{self, Options};

mod check;
mod expand;

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
                item_head(&other),
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
