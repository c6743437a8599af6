//! `#[derive(raykit::Actor)]`: reads the `#[actor(..)]` options of the type and implements
//! `raykit::Actor` with them. The methods come from `#[raykit::actor]` on the impl block; the
//! derive checks at compile time that the block is there.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::DeriveInput;

use crate::errors::Errors;
use crate::options;

const KEYS: &[&str] = &[
    "max_restarts",
    "max_concurrency",
    "num_cpus",
    "num_gpus",
    "resources",
];

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let input: DeriveInput = match syn::parse2(input) {
        Ok(i) => i,
        Err(e) => return e.into_compile_error(),
    };
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "an actor type cannot be generic: every node must find its methods by name",
        );
    }
    let mut opts = options::Options::default();
    let mut seen = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("actor")) {
        if seen {
            errors.spanned(attr, "`#[actor(..)]` given twice; put every option in one");
            continue;
        }
        seen = true;
        match &attr.meta {
            syn::Meta::List(list) => opts = options::parse(list.tokens.clone(), KEYS, &mut errors),
            other => errors.spanned(
                other,
                "write the options as `#[actor(max_concurrency = 2, ..)]`",
            ),
        }
    }
    if let Some(errs) = errors.into_compile_errors() {
        return errs;
    }
    let ident = &input.ident;
    let class = ident.to_string();
    let num_cpus = opts.num_cpus.unwrap_or(0.0);
    let num_gpus = opts.num_gpus.unwrap_or(0.0);
    let max_restarts = opts.max_restarts.unwrap_or(0);
    let max_concurrency = opts.max_concurrency.unwrap_or(1);
    let res_names = opts.resources.iter().map(|(n, _)| n);
    let res_amounts = opts.resources.iter().map(|(_, a)| a);
    let check = quote_spanned! {ident.span()=>
        const _: () = ::raykit::__private::assert_actor_methods::<#ident>();
    };
    quote! {
        impl ::raykit::Actor for #ident {
            const __SPEC: ::raykit::__private::ActorSpec = ::raykit::__private::ActorSpec {
                class: #class,
                num_cpus: #num_cpus,
                num_gpus: #num_gpus,
                resources: &[#((#res_names, #res_amounts)),*],
                max_restarts: #max_restarts,
                max_concurrency: #max_concurrency,
            };
        }
        #check
    }
}
