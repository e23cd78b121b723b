//! Code generation: the `Event` impl for a checked input, or a stub impl when it has errors.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{DeriveInput, Field, Generics, Ident, Path, Type, parse_quote};

use super::valid::{Cases, Checked};

/// The `Event` impl, wrapped in `const _: () = { ... };`.
pub(crate) fn expand(input: &DeriveInput, krate: &Path, checked: &Checked<'_>) -> TokenStream {
    let ident = &input.ident;
    let placeholders: Vec<&Field> = match &checked.cases {
        Cases::Struct(fields) => fields.clone(),
        Cases::Enum(cases) => cases
            .iter()
            .flat_map(|(_, fields)| fields.iter().copied())
            .collect(),
    };
    let generics = bounded(input, krate, &placeholders);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let Checked {
        type_name,
        category,
        template,
        ..
    } = checked;
    let stream_name = stream_name(krate, checked);
    let validate = checked.validate.as_ref().map(|path| {
        // Coerced to a fn pointer at the literal's span: a missing function or a wrong
        // signature is reported on `validate = "..."`, against the expected signature. The
        // local is named at the call site, where it is used: the literal may come from a
        // `macro_rules!` caller, whose hygiene would hide a local named at its span.
        let span = path.span();
        let function = Ident::new("__eventodb_kit_validate", Span::call_site());
        let declare = quote_spanned! {span=>
            let #function: fn(&Self) -> ::core::result::Result<(), #krate::ValidationError> = #path;
        };
        quote! {
            fn validate(&self) -> ::core::result::Result<(), #krate::ValidationError> {
                #declare
                #function(self)
            }
        }
    });
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::Event for #ident #ty_generics #where_clause {
                const TYPE: &'static str = #type_name;
                const CATEGORY: &'static str = #category;
                const STREAM_TEMPLATE: &'static str = #template;

                fn stream_name(&self) -> #krate::__private::String {
                    #stream_name
                }

                #validate
            }
        };
    }
}

/// The input's generics, plus what `Event` needs of a generic type: the type itself
/// serializable, deserializable, `Send + Sync + 'static` (the supertraits; bounding the type
/// rather than each parameter asks exactly what its serde impls need), and each placeholder
/// field whose type uses a type parameter able to fill a placeholder. A type without type
/// parameters gets nothing more: rustc checks its supertraits and fields directly, at their
/// spans.
fn bounded(input: &DeriveInput, krate: &Path, placeholders: &[&Field]) -> Generics {
    let mut generics = input.generics.clone();
    let params: Vec<Ident> = generics
        .type_params()
        .map(|param| param.ident.clone())
        .collect();
    if params.is_empty() {
        return generics;
    }
    let ident = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let serde = quote!(#krate::__private::serde);
    let where_clause = generics.make_where_clause();
    where_clause.predicates.push(parse_quote! {
        #ident #ty_generics: #serde::Serialize
            + #serde::de::DeserializeOwned
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static
    });
    let mut seen: Vec<&Type> = Vec::new();
    for field in placeholders {
        let ty = &field.ty;
        if !seen.contains(&ty) && uses_any(ty, &params) {
            seen.push(ty);
            where_clause
                .predicates
                .push(parse_quote!(#ty: #krate::__private::StreamPart));
        }
    }
    generics
}

/// Whether `ty` names one of `params` anywhere inside it.
fn uses_any(ty: &Type, params: &[Ident]) -> bool {
    struct Find<'a> {
        params: &'a [Ident],
        found: bool,
    }
    impl<'ast> Visit<'ast> for Find<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if path.leading_colon.is_none()
                && let Some(first) = path.segments.first()
                && self.params.contains(&first.ident)
            {
                self.found = true;
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut find = Find {
        params,
        found: false,
    };
    find.visit_type(ty);
    find.found
}

/// The body of `stream_name`: a `format!` over the placeholder fields, reached by a pattern.
fn stream_name(krate: &Path, checked: &Checked<'_>) -> TokenStream {
    let format = &checked.format;
    match &checked.cases {
        Cases::Struct(fields) if fields.is_empty() => {
            let template = &checked.template;
            quote!(#krate::__private::String::from(#template))
        }
        Cases::Struct(fields) => {
            let (pattern, args) = bind(krate, fields);
            quote! {
                let Self { #pattern .. } = self;
                #krate::__private::format!(#format, #(#args),*)
            }
        }
        Cases::Enum(cases) if cases.is_empty() => quote!(match *self {}),
        Cases::Enum(cases) => {
            let arms = cases.iter().map(|(variant, fields)| {
                let (pattern, args) = bind(krate, fields);
                quote! {
                    Self::#variant { #pattern .. } => #krate::__private::format!(#format, #(#args),*),
                }
            });
            quote! {
                match self {
                    #(#arms)*
                }
            }
        }
    }
}

/// Binds each distinct placeholder field once (`field: __eventodb_kit_0,`) and returns the
/// pattern and one format argument per placeholder. Each argument goes through
/// `__private::stream_part`, spanned at the field's type, so a field that is not `Display`
/// is reported there.
fn bind(krate: &Path, fields: &[&Field]) -> (TokenStream, Vec<TokenStream>) {
    let mut bound: Vec<(&Field, Ident)> = Vec::new();
    let mut pattern = TokenStream::new();
    let mut args = Vec::new();
    for &field in fields {
        let binding = match bound.iter().find(|(seen, _)| std::ptr::eq(*seen, field)) {
            Some((_, binding)) => binding.clone(),
            None => {
                let span = Span::mixed_site().located_at(field.ty.span());
                let binding = format_ident!("__eventodb_kit_{}", bound.len(), span = span);
                let name = &field.ident;
                pattern.extend(quote!(#name: #binding,));
                bound.push((field, binding.clone()));
                binding
            }
        };
        let span = binding.span();
        args.push(quote_spanned!(span=> #krate::__private::stream_part(#binding)));
    }
    (pattern, args)
}

/// What is emitted next to the errors: an impl with the right items and no behaviour, so the
/// user's other code still type-checks and one mistake gives one error.
pub(crate) fn fallback(input: &DeriveInput, krate: &Path, type_name: &str) -> TokenStream {
    let ident = &input.ident;
    let generics = bounded(input, krate, &[]);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::Event for #ident #ty_generics #where_clause {
                const TYPE: &'static str = #type_name;
                const CATEGORY: &'static str = "";
                const STREAM_TEMPLATE: &'static str = "";

                fn stream_name(&self) -> #krate::__private::String {
                    ::core::unreachable!()
                }
            }
        };
    }
}
