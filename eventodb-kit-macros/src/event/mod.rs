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
            // No stub for a union: it cannot be an event, and the stub's serde bounds would
            // only add errors.
            let stub = (!matches!(input.data, syn::Data::Union(_)))
                .then(|| expand::fallback(input, &krate, &valid::type_name(&parsed)));
            quote::quote!(#errors #stub)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    /// The messages of the `compile_error!`s in an expansion.
    fn errors(input: DeriveInput) -> Vec<String> {
        let tokens = derive(&input).to_string();
        tokens
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
        let messages = errors(parse_quote! {
            #[event(category = "", stream = "x-{nope}", colour = "red")]
            #[event(type = "A B", type = "C")]
            struct E { id: u64 }
        });
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert!(messages[0].starts_with("unknown key `colour`"));
        assert!(messages[1].starts_with("duplicate `type`"));
        assert!(messages[2].starts_with("an event type is a name without spaces"));
        assert!(messages[3].starts_with("the category cannot be empty"));
        assert!(messages[4].starts_with("the stream template names `{nope}`"));
    }

    #[test]
    fn errors_come_with_a_stub_impl() {
        let input: DeriveInput = parse_quote! {
            #[event(stream = "user-{id}")]
            struct E { id: u64 }
        };
        let tokens = derive(&input).to_string();
        assert_eq!(tokens.matches("compile_error").count(), 1);
        assert!(
            tokens.contains("impl :: eventodb_kit :: Event for E"),
            "{tokens}"
        );
        assert!(tokens.contains("unreachable"), "{tokens}");
    }

    #[test]
    fn a_bad_value_is_not_also_missing() {
        let messages = errors(parse_quote! {
            #[event(category = user, stream = 5)]
            struct E { id: u64 }
        });
        assert_eq!(messages.len(), 2, "{messages:#?}");
    }

    #[test]
    fn the_impl_is_hygienic() {
        let input: DeriveInput = parse_quote! {
            #[event(category = "user", stream = "user-{id}+{id}", crate = "kit")]
            struct E<T> where T: Send { id: u64, value: T }
        };
        let tokens = derive(&input).to_string();
        assert!(tokens.starts_with("const _ : () = {"), "{tokens}");
        assert!(tokens.contains("# [automatically_derived]"), "{tokens}");
        assert!(
            tokens.contains("impl < T > kit :: Event for E < T > where T : Send"),
            "{tokens}"
        );
        // What `Event` needs of a generic type, asked of the type itself.
        assert!(
            tokens.contains("E < T > : kit :: __private :: serde :: Serialize"),
            "{tokens}"
        );
        assert!(tokens.contains("\"user-{}+{}\""), "{tokens}");
        // The field is bound once and used twice.
        assert_eq!(
            tokens.matches("id : __eventodb_kit_0").count(),
            1,
            "{tokens}"
        );
        assert_eq!(
            tokens.matches("stream_part (__eventodb_kit_0)").count(),
            2,
            "{tokens}"
        );
    }
}
