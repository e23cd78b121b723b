//! Procedural macros for eventodb-kit. Use them through `eventodb_kit`, which re-exports them.

use proc_macro::TokenStream;

/// Derives `eventodb_kit::Event`. See the `eventodb_kit` docs.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
