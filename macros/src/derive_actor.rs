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
    let generics = &input.generics.params;
    if generics
        .iter()
        .all(|p| matches!(p, syn::GenericParam::Lifetime(_)))
    {
        for p in generics {
            errors.spanned(
                p,
                "an actor's state cannot borrow: the actor outlives its creator and runs on \
                 other threads; use owned types (`String`, `Vec<T>`, `Arc<T>`)",
            );
        }
    } else {
        errors.spanned(
            &input.generics,
            "an actor type cannot be generic: every node must find its methods by name; \
             write one actor type per concrete type",
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
    if !input.generics.params.is_empty() {
        return errors.into_compile_errors().unwrap_or_default();
    }
    // With a bad option the type is still an actor (with default options), so the
    // `#[raykit::actor]` block reports nothing more.
    let errs = errors.into_compile_errors();
    let ident = &input.ident;
    let class = ident.to_string();
    let num_cpus = opts.num_cpus.unwrap_or(0.0);
    let num_gpus = opts.num_gpus.unwrap_or(0.0);
    let max_restarts = opts.max_restarts.unwrap_or(0);
    let max_concurrency = opts.max_concurrency.unwrap_or(1);
    let res_names = opts.resources.iter().map(|(n, _)| n);
    let res_amounts = opts.resources.iter().map(|(_, a)| a);
    // `#[raykit::actor]` implements `ActorMethods` assuming the state is `Send + Sync` (a state
    // that is not is reported once, on this `impl Actor`), so the check assumes it too.
    let check = quote_spanned! {ident.span()=>
        const _: () = {
            #[allow(dead_code)]
            fn __raykit_has_actor_block()
            where
                for<'__raykit> #ident: ::core::marker::Send + ::core::marker::Sync,
            {
                ::raykit::__private::assert_actor_methods::<#ident>();
            }
        };
    };
    quote! {
        #errs
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
