//! Collects every error of one macro invocation, so the user sees them all at once.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Errors found so far, each spanned on the offending token.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The errors as `compile_error!` invocations, or `None` when there were none.
    pub(crate) fn into_compile_errors(self) -> Option<TokenStream> {
        self.0.map(|e| e.into_compile_error())
    }
}

impl Errors {
    /// Whether no error was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}
