//! [`Model`] to Rust tokens: the types, their validation, the `Event` impls and the registry.

mod derives;
mod doc;
mod json;
mod registry;
mod validate;

use crate::model::{Field, Model, Presence, Shape, Ty, TypeDef, TypeKind};
use doc::doc_lines;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;
use std::collections::BTreeMap;

/// How to write the code.
pub(crate) struct Options {
    /// Path of the runtime crate, e.g. `::eventodb_kit`.
    pub(crate) krate: syn::Path,
    /// Extra derives for every generated type.
    pub(crate) derives: Vec<syn::Path>,
    /// Implement `Event` with `#[derive(Event)]` instead of a generated impl.
    pub(crate) derive_event: bool,
}

/// The code, in chunks (the header, each type, the registry) that parse on their own.
pub(crate) fn emit(model: &Model, options: &Options) -> Vec<TokenStream> {
    // Generated code names the runtime crate through short aliases: less code to parse and
    // format (output size dominates generation time), and serde/schemars attributes that stay
    // short. One generated file per module (the aliases would clash).
    let alias: syn::Path = syn::parse_quote!(__eventodb);
    let emitter = Emitter {
        model,
        krate: &alias,
        real_krate: &options.krate,
        derives: &options.derives,
        derive_event: options.derive_event,
        checked: validate::checked_types(model),
    };
    let real = &options.krate;
    let mut out = vec![quote! {
        #[allow(unused_imports)]
        use #real::{
            self as __eventodb,
            __private::{codegen as __eventodb_codegen, schemars as __eventodb_schemars, serde as __eventodb_serde},
        };
    }];
    for def in model.types.values() {
        out.push(emitter.type_def(def));
    }
    out.push(registry::emit(&emitter));
    out
}

pub(crate) struct Emitter<'m> {
    model: &'m Model,
    /// `__eventodb`, the alias of the runtime crate.
    krate: &'m syn::Path,
    /// The runtime crate's real path, for `#[event(crate = ..)]`.
    real_krate: &'m syn::Path,
    derives: &'m [syn::Path],
    derive_event: bool,
    /// Names of the types that have a `__eventodb_validate` method.
    checked: BTreeMap<String, bool>,
}

pub(crate) fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

impl Emitter<'_> {
    fn has_checks(&self, name: &str) -> bool {
        self.checked.get(name).copied().unwrap_or(false)
    }

    /// The Rust type of a shape. Every path is absolute: a schema type may be named `Option`,
    /// `String`, `Vec` or `Box` and would shadow the prelude's.
    fn ty(&self, shape: &Shape) -> TokenStream {
        let krate = self.krate;
        let inner = match &shape.ty {
            Ty::String => quote!(::std::string::String),
            Ty::Uuid => quote!(#krate::__private::uuid::Uuid),
            Ty::DateTime => {
                quote!(#krate::__private::chrono::DateTime<#krate::__private::chrono::Utc>)
            }
            Ty::Date => quote!(#krate::__private::chrono::NaiveDate),
            Ty::Int(int) => json::int_type(*int),
            Ty::F64 => quote!(f64),
            Ty::F32 => quote!(f32),
            Ty::Bool => quote!(bool),
            Ty::Any => quote!(#krate::__private::serde_json::Value),
            Ty::Vec(item) => {
                let item = self.ty(item);
                quote!(::std::vec::Vec<#item>)
            }
            Ty::Map(value) => {
                let value = self.ty(value);
                quote!(::std::collections::BTreeMap<::std::string::String, #value>)
            }
            Ty::Named { name, boxed } => {
                let name = ident(name);
                if *boxed {
                    quote!(::std::boxed::Box<#name>)
                } else {
                    quote!(#name)
                }
            }
        };
        if shape.nullable {
            quote!(::core::option::Option<#inner>)
        } else {
            inner
        }
    }

    fn field_ty(&self, field: &Field) -> TokenStream {
        let ty = self.ty(&field.shape);
        match field.presence {
            Presence::Required | Presence::Defaulted(_) => ty,
            _ => quote!(::core::option::Option<#ty>),
        }
    }

    /// The derive list: the generator's, `std_extra` (std traits for this kind of type),
    /// `event` (the `Event` derive or nothing), then the user's that are not already there.
    fn derives(&self, std_extra: &[&str], event: TokenStream) -> TokenStream {
        let user = derives::user_derives(self.derives, std_extra);
        let std_extra = std_extra.iter().map(|name| format_ident!("{name}"));
        quote! {
            #[derive(
                Debug, Clone, PartialEq, #(#std_extra,)* #event
                __eventodb_serde::Serialize,
                __eventodb_serde::Deserialize,
                __eventodb_schemars::JsonSchema,
                #(#user,)*
            )]
            #[serde(crate = "__eventodb_serde")]
            #[schemars(crate = "__eventodb_schemars")]
        }
    }

    /// One generated type and its impls. Each item allows `dead_code`, as the registry's do:
    /// a binary crate that includes the file without using a type (a shared type no event
    /// refers to) must not warn, and the user cannot edit the generated file to silence it.
    /// Enums also allow `clippy::enum_variant_names` (which skips public items only in a
    /// library): their variants are named by the JSON values, which the user cannot change.
    fn type_def(&self, def: &TypeDef) -> TokenStream {
        let name = ident(&def.name);
        let mut doc = def.doc.clone();
        if doc.is_empty() {
            doc = match &def.kind {
                TypeKind::Struct(s) if s.event.is_some() => format!("The `{}` event.", def.name),
                _ => format!("The `{}` type.", def.name),
            };
        }
        doc.push_str(&format!("\n\nGenerated from `{}`.", def.origin));
        // The lint allows go with the doc, so every generated type has them.
        let allow = doc::allow_prose_lints();
        let doc = doc_lines(&doc);
        let doc = quote!(#doc #allow);
        let validate = self.validate_impl(def);
        match &def.kind {
            TypeKind::Struct(s) => {
                let fields = s.fields.iter().map(|field| self.field(def, field));
                let deny = s
                    .deny_unknown_fields
                    .then(|| quote!(#[serde(deny_unknown_fields)]));
                let (event_derive, event_attr, event_impl) = match &s.event {
                    Some(event) => self.event_impl(def, event),
                    None => Default::default(),
                };
                let defaults = self.defaults(def, &s.fields);
                let derives = self.derives(&[], event_derive);
                quote! {
                    #doc
                    #derives
                    #event_attr
                    #deny
                    #[allow(dead_code)]
                    pub struct #name { #(#fields)* }
                    #defaults
                    #validate
                    #event_impl
                }
            }
            TypeKind::Enum(variants) => {
                let variants = variants.iter().map(|(variant, value)| {
                    let variant = ident(variant);
                    // The value as JSON (`"a\nb"`), so a line break or a bare CR in it
                    // (which rustc refuses in a doc comment) stays an escape.
                    let json = Value::from(value.as_str()).to_string();
                    let doc = doc_lines(&doc::inline_code(&json));
                    quote!(#doc #[serde(rename = #value)] #variant,)
                });
                let derives = self.derives(derives::ENUM_EXTRA, TokenStream::new());
                quote! {
                    #doc
                    #derives
                    #[allow(dead_code, clippy::enum_variant_names)]
                    pub enum #name { #(#variants)* }
                }
            }
            TypeKind::IntEnum(variants) => self.integer_enum(&name, &doc, variants),
            TypeKind::Union { tag, variants } => {
                let variants = variants.iter().map(|variant| {
                    let name = ident(&variant.name);
                    let payload = ident(&variant.payload);
                    let value = &variant.value;
                    let doc = doc_lines(
                        variant
                            .doc
                            .as_deref()
                            .unwrap_or(&format!("`{tag}` = `\"{value}\"`.")),
                    );
                    quote!(#doc #[serde(rename = #value)] #name(#payload),)
                });
                let derives = self.derives(&[], TokenStream::new());
                quote! {
                    #doc
                    #derives
                    #[serde(tag = #tag)]
                    #[allow(clippy::large_enum_variant, clippy::enum_variant_names, dead_code)]
                    pub enum #name { #(#variants)* }
                    #validate
                }
            }
        }
    }

    fn field(&self, def: &TypeDef, field: &Field) -> TokenStream {
        let name = ident(&field.ident);
        let ty = self.field_ty(field);
        let doc = doc_lines(
            field
                .doc
                .as_deref()
                .unwrap_or(&format!("The `{}` property.", field.json_name)),
        );
        let rename = field.rename.then(|| {
            let json = &field.json_name;
            quote!(#[serde(rename = #json)])
        });
        let presence = match &field.presence {
            Presence::Required => TokenStream::new(),
            Presence::RequiredNullable => {
                quote! {
                    #[serde(deserialize_with = "__eventodb_codegen::deserialize_nullable")]
                    #[schemars(required, transform = __eventodb_codegen::add_null)]
                }
            }
            Presence::Optional => {
                let inner = self.ty(&field.shape).to_string().replace(' ', "");
                quote! {
                    #[serde(default, skip_serializing_if = "::core::option::Option::is_none", deserialize_with = "__eventodb_codegen::deserialize_some")]
                    #[schemars(with = #inner)]
                }
            }
            Presence::OptionalNullable => {
                quote!(#[serde(default, skip_serializing_if = "::core::option::Option::is_none")])
            }
            Presence::Defaulted(_) => {
                let path = format!("{}::{}", def.name, default_fn(field));
                quote!(#[serde(default = #path)])
            }
        };
        let extend = schemars_extend(&field.shape);
        let extend = (!extend.is_empty()).then(|| {
            let pairs = extend.iter().map(|(key, value)| {
                let value = json::tokens(value);
                quote!(#key = #value)
            });
            quote!(#[schemars(extend(#(#pairs),*))])
        });
        quote! {
            #doc
            #rename
            #presence
            #extend
            pub #name: #ty,
        }
    }

    /// `fn __default_x() -> T` for every field with a `default`.
    fn defaults(&self, def: &TypeDef, fields: &[Field]) -> TokenStream {
        let fns: Vec<TokenStream> = fields
            .iter()
            .filter_map(|field| {
                let Presence::Defaulted(value) = &field.presence else {
                    return None;
                };
                let name = format_ident!("{}", default_fn(field));
                let ty = self.ty(&field.shape);
                let expr = match (&field.shape.ty, value) {
                    (Ty::String, Value::String(text)) => quote!(::std::string::String::from(#text)),
                    (Ty::Named { name, .. }, Value::String(text)) => {
                        let variant = self.enum_variant(name, text);
                        let name = ident(name);
                        quote!(#name::#variant)
                    }
                    (Ty::Named { name, .. }, Value::Number(number)) => {
                        let variant = self.integer_enum_variant(name, number.as_i64());
                        let name = ident(name);
                        quote!(#name::#variant)
                    }
                    (_, value) => json::literal(value, &field.shape.ty),
                };
                Some(quote!(fn #name() -> #ty { #expr }))
            })
            .collect();
        if fns.is_empty() {
            return TokenStream::new();
        }
        let name = ident(&def.name);
        quote!(#[allow(dead_code)] impl #name { #(#fns)* })
    }

    /// An integer enum: serde's derives write a unit variant as its name, so the value is
    /// written and read by hand, and the schemars schema says what the JSON holds.
    fn integer_enum(
        &self,
        name: &Ident,
        doc: &TokenStream,
        variants: &[(String, i64)],
    ) -> TokenStream {
        let idents: Vec<Ident> = variants.iter().map(|(variant, _)| ident(variant)).collect();
        let values: Vec<proc_macro2::Literal> = variants
            .iter()
            .map(|(_, value)| proc_macro2::Literal::i64_unsuffixed(*value))
            .collect();
        // Typed: inside `json_schema!` an untyped literal is an `i32`, and one past its range
        // would not compile.
        let typed: Vec<TokenStream> = variants
            .iter()
            .map(|(_, value)| json::int(*value))
            .collect();
        let docs = variants.iter().map(|(_, value)| format!(" `{value}`"));
        let listed = variants
            .iter()
            .map(|(_, value)| value.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let refused = format!("{{}} is not one of the values of `{name}`: {listed}");
        let type_name = name.to_string();
        let user = derives::user_derives(self.derives, derives::ENUM_EXTRA);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, Copy, Eq, Hash, #(#user,)*)]
            #[allow(dead_code, clippy::enum_variant_names)]
            pub enum #name { #(#[doc = #docs] #idents,)* }

            #[allow(dead_code)]
            impl #name {
                /// The JSON value.
                pub const fn value(self) -> i64 {
                    match self { #(Self::#idents => #values,)* }
                }
            }

            impl __eventodb_serde::Serialize for #name {
                fn serialize<S: __eventodb_serde::Serializer>(
                    &self,
                    serializer: S,
                ) -> ::core::result::Result<S::Ok, S::Error> {
                    serializer.serialize_i64(self.value())
                }
            }

            impl<'de> __eventodb_serde::Deserialize<'de> for #name {
                fn deserialize<D: __eventodb_serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> ::core::result::Result<Self, D::Error> {
                    match <i64 as __eventodb_serde::Deserialize>::deserialize(deserializer)? {
                        #(#values => ::core::result::Result::Ok(Self::#idents),)*
                        other => ::core::result::Result::Err(
                            <D::Error as __eventodb_serde::de::Error>::custom(
                                ::core::format_args!(#refused, other),
                            ),
                        ),
                    }
                }
            }

            impl __eventodb_schemars::JsonSchema for #name {
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(#type_name)
                }

                fn schema_id() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(::core::concat!(::core::module_path!(), "::", #type_name))
                }

                fn json_schema(
                    _: &mut __eventodb_schemars::SchemaGenerator,
                ) -> __eventodb_schemars::Schema {
                    __eventodb_schemars::json_schema!({ "type": "integer", "enum": [#(#typed),*] })
                }
            }
        }
    }

    fn integer_enum_variant(&self, name: &str, value: Option<i64>) -> Ident {
        let Some(TypeKind::IntEnum(variants)) = self.model.types.get(name).map(|def| &def.kind)
        else {
            unreachable!("checked when converting the default")
        };
        let variant = variants
            .iter()
            .find(|(_, json)| Some(*json) == value)
            .map(|(variant, _)| variant.as_str())
            .unwrap_or_default();
        ident(variant)
    }

    fn enum_variant(&self, name: &str, value: &str) -> Ident {
        let Some(TypeKind::Enum(variants)) = self.model.types.get(name).map(|def| &def.kind) else {
            unreachable!("checked when converting the default")
        };
        let variant = variants
            .iter()
            .find(|(_, json)| json == value)
            .map(|(variant, _)| variant.as_str())
            .unwrap_or_default();
        ident(variant)
    }
}

fn default_fn(field: &Field) -> String {
    format!("__default_{}", field.ident.trim_start_matches("r#"))
}

/// `::eventodb_kit` as text, for serde's and schemars' string attributes.
fn path_text(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Keywords to add to the schemars schema of a field: the shape's own, and for a list or map of
/// constrained scalars the whole element schema.
fn schemars_extend(shape: &Shape) -> BTreeMap<String, Value> {
    let mut extend = shape.extend.clone();
    let (key, inner) = match &shape.ty {
        Ty::Vec(item) => ("items", item),
        Ty::Map(value) => ("additionalProperties", value),
        _ => return extend,
    };
    let nested = schemars_extend(inner);
    if !nested.is_empty()
        && let Some(mut schema) = scalar_schema(inner)
    {
        schema.extend(nested);
        extend.insert(key.to_owned(), Value::Object(schema.into_iter().collect()));
    }
    extend
}

/// The JSON Schema of a scalar or list shape, for `schemars_extend`.
fn scalar_schema(shape: &Shape) -> Option<BTreeMap<String, Value>> {
    let ty = match &shape.ty {
        Ty::String => "string",
        Ty::Int(_) => "integer",
        Ty::F64 | Ty::F32 => "number",
        Ty::Bool => "boolean",
        Ty::Vec(_) => "array",
        _ => return None,
    };
    let mut schema = BTreeMap::new();
    schema.insert(
        "type".to_owned(),
        if shape.nullable {
            serde_json::json!([ty, "null"])
        } else {
            Value::from(ty)
        },
    );
    if let Ty::Vec(item) = &shape.ty {
        let mut item_schema = scalar_schema(item)?;
        item_schema.extend(schemars_extend(item));
        schema.insert(
            "items".to_owned(),
            Value::Object(item_schema.into_iter().collect()),
        );
    }
    Some(schema)
}
