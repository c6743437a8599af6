//! `#[raykit::method(num_returns = N)]` on a method of an `#[raykit::actor]` block: the actor
//! macro finds it (also written `#[::raykit::method]`, or `#[method]` imported), reads its
//! options and takes it off the method, leaving a marker so the path still resolves as written.
//! Where no actor macro reads it, the attribute expands on its own to an error ([`outside`]).

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Attribute, Ident, ImplItem, Item, ItemImpl, Meta};

use crate::errors::Errors;
use crate::options;

/// The keys of `#[raykit::method(..)]`.
const METHOD_KEYS: &[&str] = &["num_returns"];

/// What `#[raykit::method(..)]` on a function of the block says.
pub(super) struct MethodAttr {
    /// The attribute as written, for errors about where it is.
    pub(super) attr: Attribute,
    pub(super) num_returns: Option<(usize, Span)>,
}

/// Whether `attr` is `#[raykit::method]`: written so, as `#[::raykit::method]`, or as
/// `#[method]` with the macro imported.
fn is_method_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [method] => method == "method" && path.leading_colon.is_none(),
        [krate, method] => krate == "raykit" && method == "method",
        _ => false,
    }
}

/// Takes every `#[raykit::method(..)]` off the functions of the block, with what each says:
/// one entry per item of the block, in order.
pub(super) fn take_method_attrs(
    imp: &mut ItemImpl,
    errors: &mut Errors,
) -> Vec<Option<MethodAttr>> {
    let mut found = Vec::new();
    for it in &mut imp.items {
        let ImplItem::Fn(f) = it else {
            found.push(None);
            continue;
        };
        let (ours, others): (Vec<Attribute>, Vec<Attribute>) = std::mem::take(&mut f.attrs)
            .into_iter()
            .partition(is_method_attr);
        f.attrs = others;
        let mut ours = ours.into_iter();
        let Some(attr) = ours.next() else {
            found.push(None);
            continue;
        };
        for again in ours {
            errors.spanned(
                &again,
                "`#[raykit::method(..)]` given twice; put every option in one",
            );
        }
        let tokens = match &attr.meta {
            Meta::Path(_) => TokenStream::new(),
            Meta::List(list) => list.tokens.clone(),
            Meta::NameValue(nv) => {
                errors.spanned(
                    nv,
                    "write the options as `#[raykit::method(num_returns = 2)]`",
                );
                TokenStream::new()
            }
        };
        let options = options::parse(tokens, METHOD_KEYS, errors);
        found.push(Some(MethodAttr {
            attr,
            num_returns: options.num_returns,
        }));
    }
    found
}

/// The argument of the marker [`read_markers`] writes.
pub(crate) const READ_MARKER: &str = "__raykit_read_by_actor";

/// For each `#[raykit::method]` this macro read, the attribute's own path again on an empty
/// item, with an argument for which the `method` macro expands to nothing: the path resolves
/// as the user wrote it, so an import of `method` counts as used, and `#[method]` without one
/// is reported as unknown.
pub(super) fn read_markers(attrs: &[Option<MethodAttr>]) -> TokenStream {
    let marker = Ident::new(READ_MARKER, Span::call_site());
    let paths = attrs.iter().flatten().map(|a| a.attr.path());
    quote!(#(#[#paths(#marker)] const _: () = ();)*)
}

/// `#[raykit::method]` where no `#[raykit::actor]` block reads it: the item as written and an
/// error on the attribute.
pub(crate) fn outside(item: TokenStream) -> TokenStream {
    let hint = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(f)) if f.sig.receiver().is_none() => {
            "; for a function use `#[raykit::remote(num_returns = N)]`"
        }
        Ok(Item::Impl(_)) => {
            "; put it on one of the block's methods, and `#[raykit::actor]` on the block"
        }
        _ => "; mark the impl block `#[raykit::actor]`",
    };
    let error = syn::Error::new(
        Span::call_site(),
        format!(
            "`#[raykit::method]` goes on a method inside a `#[raykit::actor]` impl block, which \
             reads it{hint}"
        ),
    )
    .into_compile_error();
    quote!(#item #error)
}
