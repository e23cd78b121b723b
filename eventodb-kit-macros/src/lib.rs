//! Procedural macros for eventodb-kit. Use them through `eventodb_kit`, which re-exports them.
//!
//! This file holds only the entry points; each macro lives in its own module (parse,
//! validate, expand), and attribute helpers shared by all macros live in `attr`.

mod attr;
mod event;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `eventodb_kit::Event` for a hand-written struct or enum.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::derive(&input).into()
}
