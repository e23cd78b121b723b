//! `#[consumer(category = "...")]` on an impl block: parse (a typed model keeping the syn
//! nodes), validate, expand.

mod expand;
mod parse;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ImplItem, Item, ItemImpl};

use crate::attr::Errors;

/// Expands `#[consumer(args)]` on `item`: the impl as written plus the `Consumer` impl, or
/// the impl, every error and a stub impl.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let parsed_args = parse::Args::parse(args, &mut errors);
    let item: Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        // Not an item at all: rustc reports the syntax error when it parses the tokens.
        Err(_) => return item,
    };
    let Item::Impl(item) = item else {
        errors.spanned(
            &item,
            "`#[consumer]` goes on an impl block whose `async fn`s are the handlers: `#[consumer(category = \"user\")] impl MyConsumer { ... }`",
        );
        let errors = errors.finish().err().map(|error| error.to_compile_error());
        return quote!(#item #errors);
    };
    let krate = valid::krate(&parsed_args, &mut errors);
    let category = valid::category(&parsed_args, &mut errors);
    let (handlers, candidates) = parse::handlers(&item, &mut errors);
    let checked = valid::check(
        &item,
        &parsed_args,
        category.clone(),
        &handlers,
        candidates,
        &mut errors,
    );
    let cleaned = without_method_attrs(&item);
    match (errors.finish(), checked) {
        (Ok(()), Some(checked)) => {
            let generated = expand::expand(&item, &krate, &checked);
            quote!(#cleaned #generated)
        }
        (result, _) => {
            let errors = result.err().map(|error| error.to_compile_error());
            let stub = expand::stub(&item, &krate, category.as_deref().unwrap_or_default());
            quote!(#cleaned #errors #stub)
        }
    }
}

/// The impl block as written, minus the `#[consumer(...)]` attributes on its methods.
fn without_method_attrs(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(method) = impl_item {
            method.attrs.retain(|attr| !parse::is_consumer_attr(attr));
        }
    }
    item
}
