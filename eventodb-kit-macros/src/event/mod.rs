//! `#[derive(Event)]`: parse (a typed model keeping the syn nodes), validate, expand.

mod expand;
mod parse;
mod template;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::attr::Errors;

/// Expands `#[derive(Event)]` on `input`: the impl, or every error plus a stub impl.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let parsed = parse::Input::from_syn(input, &mut errors);
    let krate = valid::krate(&parsed, &mut errors);
    let checked = valid::check(&parsed, &mut errors);
    match (errors.finish(), checked) {
        (Ok(()), Some(checked)) => expand::expand(input, &krate, &checked),
        (result, _) => {
            let errors = result.err().map(|error| error.to_compile_error());
            let stub = expand::fallback(input, &krate, &valid::type_name(&parsed));
            quote::quote!(#errors #stub)
        }
    }
}
