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
            // No stub for a borrowing consumer: `Consumer` needs `'static`, so the stub itself
            // would be a second error.
            let stub = valid::borrowed_lifetime(&item)
                .is_none()
                .then(|| expand::stub(&item, &krate, category.as_deref().unwrap_or_default()));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of the `compile_error!`s in an expansion.
    fn errors(tokens: &TokenStream) -> Vec<String> {
        tokens
            .to_string()
            .split("compile_error ! {")
            .skip(1)
            .map(|rest| {
                let start = rest.find('"').unwrap_or(0) + 1;
                let end = rest[start..]
                    .find("\" }")
                    .map_or(rest.len(), |end| start + end);
                rest[start..end].replace("\\\"", "\"")
            })
            .collect()
    }

    #[test]
    fn every_mistake_is_reported_in_one_build() {
        let output = expand(
            quote!(colour = "red", strict),
            quote! {
                impl Users {
                    fn created(&self, event: UserCreated) -> Result<(), HandlerError> { Ok(()) }
                    async fn deleted(&mut self, event: UserDeleted) -> Result<(), HandlerError> { Ok(()) }
                    #[consumer(fallback)]
                    async fn other(&self, message: &CategoryMessage) -> Result<(), HandlerError> { Ok(()) }
                }
            },
        );
        let messages = errors(&output);
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert!(messages[0].starts_with("unknown key `colour`"));
        assert!(messages[1].starts_with("`#[consumer]` needs `category"));
        assert!(messages[2].starts_with("a `#[consumer]` handler is an `async fn`"));
        assert!(messages[3].starts_with("a handler takes `&self`"));
        assert!(messages[4].starts_with("`strict` rejects"));
    }

    #[test]
    fn errors_come_with_the_item_and_a_stub_impl() {
        let output = expand(
            quote!(category = "user"),
            quote! {
                impl Users {
                    fn new() -> Self { Users }
                    async fn created(&self) -> Result<(), HandlerError> { Ok(()) }
                }
            },
        )
        .to_string();
        assert_eq!(output.matches("compile_error").count(), 1, "{output}");
        assert!(output.starts_with("impl Users { fn new"), "{output}");
        assert!(
            output.contains("Consumer < __EventodbKitDb > for Users"),
            "{output}"
        );
    }

    /// Two handlers on one backend, spelled with and without its module.
    fn two_contexts(first: TokenStream, second: TokenStream) -> Vec<String> {
        errors(&expand(
            quote!(category = "user"),
            quote! {
                impl Users {
                    async fn created(&self, event: UserCreated, ctx: &mut Context<'_, #first>) -> Result<(), HandlerError> { Ok(()) }
                    async fn deleted(&self, event: UserDeleted, ctx: &mut Context<'_, #second>) -> Result<(), HandlerError> { Ok(()) }
                }
            },
        ))
    }

    #[test]
    fn one_backend_may_be_spelled_two_ways() {
        assert!(two_contexts(quote!(Sqlite), quote!(sqlx::Sqlite)).is_empty());
        assert!(two_contexts(quote!(::sqlx::Sqlite), quote!(Sqlite)).is_empty());
        let messages = two_contexts(quote!(Sqlite), quote!(sqlx::Postgres));
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert!(
            messages[0].starts_with(
                "this handler's context is for `sqlx::Postgres`, another's for `Sqlite`"
            ),
            "{messages:#?}"
        );
    }

    #[test]
    fn the_impl_is_kept_without_method_attributes_and_the_expansion_is_hygienic() {
        let output = expand(
            quote!(category = "user", transactional, crate = "kit"),
            quote! {
                impl Users {
                    async fn created(&self, event: UserCreated, ctx: &mut Context<'_, Sqlite>) -> Result<(), HandlerError> { Ok(()) }
                    #[consumer(fallback)]
                    async fn other(&self, message: &CategoryMessage) -> Result<(), HandlerError> { Ok(()) }
                }
            },
        )
        .to_string();
        assert!(errors(&output.parse().unwrap()).is_empty(), "{output}");
        assert!(!output.contains("# [consumer"), "{output}");
        assert!(output.contains("const _ : () = {"), "{output}");
        assert!(output.contains("# [automatically_derived]"), "{output}");
        assert!(
            output.contains("impl kit :: __private :: consumer :: Consumer < Sqlite > for Users"),
            "{output}"
        );
        assert!(output.contains("fn transactional"), "{output}");
        assert!(output.contains("fn category_is_fixed"), "{output}");
        assert!(
            output.contains("Self :: other (self , __message)"),
            "{output}"
        );
    }

    /// A handler that calls `ctx.transaction()` makes the consumer transactional, as the
    /// design's example expects of a plain `#[consumer(category = "user")]`.
    #[test]
    fn a_handler_using_its_transaction_makes_the_consumer_transactional() {
        let handler = |body: TokenStream| {
            expand(
                quote!(category = "user", crate = "kit"),
                quote! {
                    impl Users {
                        async fn deleted(&self, event: UserDeleted, ctx: &mut Context<'_, Sqlite>) -> Result<(), HandlerError> {
                            #body
                            Ok(())
                        }
                    }
                },
            )
            .to_string()
        };
        let uses = handler(quote! {
            sqlx::query("delete from profiles").execute(ctx.transaction()?).await?;
        });
        assert!(uses.contains("fn transactional"), "{uses}");
        let deref = handler(quote! { let _ = (*ctx).transaction(); });
        assert!(deref.contains("fn transactional"), "{deref}");
        let plain = handler(quote! { let _ = ctx.attempt(); });
        assert!(!plain.contains("fn transactional"), "{plain}");
        // Another client's `transaction()` (rusqlite, a PostgreSQL client) is not the
        // context's: the consumer stays as it was declared.
        let other = handler(quote! { let tx = self.conn.lock().transaction()?; });
        assert!(!other.contains("fn transactional"), "{other}");
    }
}
