//! The `Event` impls and the registry: `AnyEvent`, `Events` and `categories`.

use super::{Emitter, ident};
use crate::model::{EventInfo, TemplatePart, TypeDef, TypeKind};
use proc_macro2::{Ident, TokenStream};
use quote::quote;
use std::collections::BTreeMap;

impl Emitter<'_> {
    /// The `Event` implementation of an event struct: either `(derive, attribute)` for
    /// `#[derive(Event)]`, or a generated `impl` block. Returns `(derive list entry, attribute,
    /// impl)`.
    pub(super) fn event_impl(
        &self,
        def: &TypeDef,
        event: &EventInfo,
    ) -> (TokenStream, TokenStream, TokenStream) {
        let krate = self.krate;
        let name = ident(&def.name);
        let EventInfo {
            event_type,
            category,
            stream,
            parts,
            ..
        } = event;
        let checked = self.has_checks(&def.name);
        // The derive reads placeholders as Rust field names; a renamed property (`{user-id}`,
        // `{type}`) needs the generated impl.
        let template_of_idents: String = parts
            .iter()
            .map(|part| match part {
                TemplatePart::Text(text) => text.clone(),
                TemplatePart::Field(field) => format!("{{{field}}}"),
            })
            .collect();
        if self.derive_event && template_of_idents == *stream {
            let krate_text = super::path_text(self.real_krate);
            let validate = checked.then(|| {
                let path = format!("{}::__eventodb_validate_event", def.name);
                quote!(, validate = #path)
            });
            let helper = checked.then(|| {
                quote! {
                    #[allow(dead_code)]
                    impl #name {
                        #[doc(hidden)]
                        pub fn __eventodb_validate_event(&self) -> ::core::result::Result<(), #krate::ValidationError> {
                            let mut violations = ::std::vec::Vec::new();
                            self.__eventodb_validate("", &mut violations);
                            __eventodb_codegen::finish(violations)
                        }
                    }
                }
            });
            return (
                quote!(#krate::Event,),
                quote!(#[event(type = #event_type, category = #category, stream = #stream, crate = #krate_text #validate)]),
                quote!(#helper),
            );
        }
        let mut format = String::new();
        let mut args = Vec::new();
        for part in parts {
            match part {
                TemplatePart::Text(text) => format.push_str(text),
                TemplatePart::Field(field) => {
                    format.push_str("{}");
                    let field = ident(field);
                    args.push(quote!(self.#field));
                }
            }
        }
        let validate = checked.then(|| {
            quote! {
                fn validate(&self) -> ::core::result::Result<(), #krate::ValidationError> {
                    let mut violations = ::std::vec::Vec::new();
                    self.__eventodb_validate("", &mut violations);
                    __eventodb_codegen::finish(violations)
                }
            }
        });
        let code = quote! {
            impl #krate::Event for #name {
                const TYPE: &'static str = #event_type;
                const CATEGORY: &'static str = #category;
                const STREAM_TEMPLATE: &'static str = #stream;
                fn stream_name(&self) -> ::std::string::String {
                    ::std::format!(#format, #(#args),*)
                }
                #validate
            }
        };
        (TokenStream::new(), TokenStream::new(), code)
    }
}

/// `AnyEvent`, `Events` (the [`EventRegistry`] impl) and `categories`; nothing when the folder
/// has no events.
pub(super) fn emit(emitter: &Emitter<'_>) -> TokenStream {
    let krate = emitter.krate;
    let events: Vec<(&TypeDef, &EventInfo)> = emitter
        .model
        .types
        .values()
        .filter_map(|def| match &def.kind {
            TypeKind::Struct(s) => s.event.as_ref().map(|event| (def, event)),
            _ => None,
        })
        .collect();
    if events.is_empty() {
        return TokenStream::new();
    }
    // Category -> (its constant, its event types).
    let mut by_category: BTreeMap<&str, (Ident, Vec<&str>)> = BTreeMap::new();
    for (_, event) in &events {
        by_category
            .entry(&event.category)
            .or_insert_with(|| (ident(&event.category_const), Vec::new()))
            .1
            .push(&event.event_type);
    }
    for (_, types) in by_category.values_mut() {
        types.sort_unstable();
    }
    let mut sorted: Vec<&(&TypeDef, &EventInfo)> = events.iter().collect();
    sorted.sort_by_key(|(_, event)| &event.event_type);

    let variants = sorted.iter().map(|(def, event)| {
        let name = ident(&def.name);
        let doc = format!(
            " A `{}` event (category `{}`).",
            event.event_type, event.category
        );
        quote!(#[doc = #doc] #name(#name),)
    });
    let names: Vec<_> = sorted.iter().map(|(def, _)| ident(&def.name)).collect();
    let types: Vec<&str> = sorted.iter().map(|(_, e)| e.event_type.as_str()).collect();
    let categories_of: Vec<&str> = sorted.iter().map(|(_, e)| e.category.as_str()).collect();
    let category_consts = by_category.iter().map(|(category, (name, types))| {
        let doc = format!(" The event types of category `{category}`, sorted.");
        quote!(#[doc = #doc] pub const #name: &[&str] = &[#(#types),*];)
    });
    let category_entries = by_category.iter().map(|(category, (name, _))| {
        quote!(#krate::registry::CategoryTypes { category: #category, types: categories::#name },)
    });
    quote! {
        /// Every event generated from the schema folder, one variant per event type.
        // The registry items are there to be used when needed: in a binary crate, one that
        // uses none of them must not warn.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant, dead_code)]
        pub enum AnyEvent { #(#variants)* }

        #[allow(dead_code)]
        impl AnyEvent {
            /// The event's type, e.g. `UserCreated`.
            pub fn event_type(&self) -> &'static str {
                match self { #(Self::#names(_) => <#names as #krate::Event>::TYPE,)* }
            }
            /// The event's category, e.g. `user`.
            pub fn category(&self) -> &'static str {
                match self { #(Self::#names(_) => <#names as #krate::Event>::CATEGORY,)* }
            }
            /// The stream the event belongs to, from its template.
            pub fn stream_name(&self) -> ::std::string::String {
                match self { #(Self::#names(event) => #krate::Event::stream_name(event),)* }
            }
            /// The event as the JSON `data` of a message.
            ///
            /// # Errors
            /// Only if a map key or a value cannot be represented in JSON.
            pub fn to_data(&self) -> ::core::result::Result<#krate::__private::serde_json::Value, #krate::__private::serde_json::Error> {
                match self { #(Self::#names(event) => #krate::__private::serde_json::to_value(event),)* }
            }
        }

        #(
            impl ::core::convert::From<#names> for AnyEvent {
                fn from(event: #names) -> Self { Self::#names(event) }
            }
        )*

        /// The registry of every generated event: types, categories and decoding.
        #[derive(Debug, Clone, Copy, Default)]
        #[allow(dead_code)]
        pub struct Events;

        #[allow(dead_code)]
        impl Events {
            /// The JSON Schema (from schemars) of an event type's `data`, `None` for an
            /// unknown type. It accepts what the source schema accepts.
            pub fn json_schema(event_type: &str) -> ::core::option::Option<__eventodb_schemars::Schema> {
                match event_type {
                    #(#types => ::core::option::Option::Some(__eventodb_schemars::schema_for!(#names)),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl #krate::registry::EventRegistry for Events {
            type Event = AnyEvent;
            const TYPES: &'static [&'static str] = &[#(#types),*];
            const CATEGORIES: &'static [#krate::registry::CategoryTypes] = &[#(#category_entries)*];

            fn category_of(event_type: &str) -> ::core::option::Option<&'static str> {
                match event_type {
                    #(#types => ::core::option::Option::Some(#categories_of),)*
                    _ => ::core::option::Option::None,
                }
            }

            fn decode(
                event_type: &str,
                data: &#krate::__private::serde_json::Value,
            ) -> ::core::result::Result<AnyEvent, #krate::registry::DecodeError> {
                match event_type {
                    #(
                        #types => <#names as #krate::Event>::decode(data)
                            .map(AnyEvent::#names)
                            .map_err(|source| #krate::registry::DecodeError::Invalid {
                                event_type: ::std::string::String::from(event_type),
                                source,
                            }),
                    )*
                    _ => ::core::result::Result::Err(#krate::registry::DecodeError::UnknownType {
                        event_type: ::std::string::String::from(event_type),
                    }),
                }
            }
        }

        /// The event types of each category, as constants a compile-time check can use
        /// (see `eventodb_kit::registry::missing_type`).
        #[allow(dead_code)]
        pub mod categories { #(#category_consts)* }
    }
}
