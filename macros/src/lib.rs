//! Procedural macros of raykit. Use them through the `raykit` crate, which re-exports them and
//! documents them: `#[raykit::remote]`, `#[derive(raykit::Actor)]`, `#[raykit::actor]` and
//! `#[raykit::method]` (read by `#[raykit::actor]`).
//!
//! Each macro parses its input into a struct (parse), checks what cannot work and reports it on
//! the user's own tokens (check), then writes code that names only `::raykit::…` and `::core::…`
//! paths (expand). On error the original item is still emitted, so the IDE keeps working.
#![warn(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    missing_debug_implementations
)]

use proc_macro::TokenStream;

mod actor;
mod checks;
mod derive_actor;
mod errors;
mod hash;
mod options;
mod remote;

/// Turns a function into a remote function. Documented on `raykit::remote`.
#[proc_macro_attribute]
pub fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    remote::expand(args.into(), item.into()).into()
}

/// Makes a type an actor; options in `#[actor(..)]`. Documented on `raykit::Actor`.
#[proc_macro_derive(Actor, attributes(actor))]
pub fn derive_actor(input: TokenStream) -> TokenStream {
    derive_actor::expand(input.into()).into()
}

/// Turns an impl block into an actor's methods. Documented on `raykit::actor`.
#[proc_macro_attribute]
pub fn actor(args: TokenStream, item: TokenStream) -> TokenStream {
    actor::expand(args.into(), item.into()).into()
}

/// Options of one method of an actor (`num_returns`), read by `#[raykit::actor]` on its impl
/// block; anywhere else an error. Documented on `raykit::method`.
#[proc_macro_attribute]
pub fn method(args: TokenStream, item: TokenStream) -> TokenStream {
    if args.to_string() == actor::READ_MARKER {
        return TokenStream::new(); // the trace of an attribute `#[raykit::actor]` read
    }
    actor::outside(item.into()).into()
}
