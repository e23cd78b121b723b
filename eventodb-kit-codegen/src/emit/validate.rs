//! The generated `__eventodb_validate` methods: every rule serde cannot check, reported with the
//! JSON pointer of the value that broke it.

use super::{Emitter, ident, json};
use crate::model::{Check, Format, Int, Model, Presence, Shape, Ty, TypeDef, TypeKind};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;
use serde_json::{Number, Value};
use std::collections::BTreeMap;

/// Which named types need a validate method: those with a check anywhere inside (a fixpoint,
/// because types may refer to each other).
pub(super) fn checked_types(model: &Model) -> BTreeMap<String, bool> {
    let mut checked: BTreeMap<String, bool> = model
        .types
        .keys()
        .map(|name| (name.clone(), false))
        .collect();
    loop {
        let mut changed = false;
        for def in model.types.values() {
            let has = match &def.kind {
                TypeKind::Struct(s) => s
                    .fields
                    .iter()
                    .any(|f| shape_has_checks(&f.shape, &checked)),
                TypeKind::Enum(_) | TypeKind::IntEnum(_) => false,
                TypeKind::Union { variants, .. } => variants
                    .iter()
                    .any(|v| checked.get(&v.payload).copied().unwrap_or(false)),
            };
            if has && !checked[&def.name] {
                checked.insert(def.name.clone(), true);
                changed = true;
            }
        }
        if !changed {
            return checked;
        }
    }
}

fn shape_has_checks(shape: &Shape, checked: &BTreeMap<String, bool>) -> bool {
    !shape.checks.is_empty()
        || match &shape.ty {
            Ty::Vec(inner) | Ty::Map(inner) => shape_has_checks(inner, checked),
            Ty::Named { name, .. } => checked.get(name).copied().unwrap_or(false),
            _ => false,
        }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Emitter<'_> {
    /// `impl T { pub fn __eventodb_validate(..) }` when `T` has checks.
    pub(super) fn validate_impl(&self, def: &TypeDef) -> TokenStream {
        if !self.has_checks(&def.name) {
            return TokenStream::new();
        }
        let krate = self.krate;
        let body = match &def.kind {
            TypeKind::Struct(s) => {
                let fields = s.fields.iter().map(|field| {
                    if !shape_has_checks(&field.shape, &self.checked) {
                        return TokenStream::new();
                    }
                    let name = ident(&field.ident);
                    let suffix = format!("/{}", escape(&field.json_name));
                    let checks = self.shape_checks(&field.shape, &suffix, false);
                    match field.presence {
                        Presence::Required | Presence::Defaulted(_) => {
                            quote!({ let value = &self.#name; #checks })
                        }
                        _ => quote!(if let ::core::option::Option::Some(value) = &self.#name { #checks }),
                    }
                });
                quote!(#(#fields)*)
            }
            TypeKind::Union { variants, .. } => {
                let checked: Vec<Ident> = variants
                    .iter()
                    .filter(|variant| self.has_checks(&variant.payload))
                    .map(|variant| ident(&variant.name))
                    .collect();
                match checked.as_slice() {
                    [one] if checked.len() < variants.len() => quote! {
                        if let Self::#one(value) = self {
                            value.__eventodb_validate(pointer, violations);
                        }
                    },
                    _ => {
                        let rest = (checked.len() < variants.len()).then(|| quote!(_ => {}));
                        quote! {
                            match self {
                                #(Self::#checked(value) => value.__eventodb_validate(pointer, violations),)*
                                #rest
                            }
                        }
                    }
                }
            }
            TypeKind::Enum(_) | TypeKind::IntEnum(_) => TokenStream::new(),
        };
        let name = ident(&def.name);
        quote! {
            // Unused when the type is (see `Emitter::type_def`).
            #[allow(dead_code)]
            impl #name {
                /// Appends every schema rule this value breaks to `violations`, with pointers
                /// starting at `pointer`.
                #[doc(hidden)]
                pub fn __eventodb_validate(
                    &self,
                    pointer: &str,
                    violations: &mut ::std::vec::Vec<#krate::Violation>,
                ) {
                    #body
                }
            }
        }
    }

    /// Statements checking `value` (a reference to the shape's type); `pointer` (a `&str` or
    /// `String`) and `violations` are in scope, `suffix` is the pointer tail of `value`.
    fn shape_checks(&self, shape: &Shape, suffix: &str, owned: bool) -> TokenStream {
        let pointer = if owned {
            quote!(&pointer)
        } else {
            quote!(pointer)
        };
        if shape.nullable {
            let inner = Shape {
                nullable: false,
                ..shape.clone()
            };
            let checks = self.shape_checks(&inner, suffix, owned);
            return quote!(if let ::core::option::Option::Some(value) = value { #checks });
        }
        let krate = self.krate;
        let mut out = TokenStream::new();
        for check in &shape.checks {
            if let Check::Pattern(pattern) = check {
                out.extend(quote! {
                    static PATTERN: ::std::sync::LazyLock<#krate::__private::regex::Regex> =
                        ::std::sync::LazyLock::new(|| {
                            #krate::__private::regex::Regex::new(#pattern)
                                .expect("the pattern compiled at build time")
                        });
                });
            }
            if let Some((function, args)) = call(check, &shape.ty) {
                out.extend(
                    quote!(__eventodb_codegen::#function(violations, #pointer, #suffix, #args);),
                );
            }
        }
        match &shape.ty {
            Ty::Vec(item) if shape_has_checks(item, &self.checked) => {
                let checks = self.shape_checks(item, "", true);
                out.extend(quote! {
                    for (index, value) in value.iter().enumerate() {
                        let pointer = ::std::format!("{}{}/{}", pointer, #suffix, index);
                        #checks
                    }
                });
            }
            Ty::Map(item) if shape_has_checks(item, &self.checked) => {
                let checks = self.shape_checks(item, "", true);
                out.extend(quote! {
                    for (key, value) in value {
                        let pointer = __eventodb_codegen::entry_pointer(#pointer, #suffix, key);
                        #checks
                    }
                });
            }
            Ty::Named { name, .. } if self.has_checks(name) => {
                out.extend(if suffix.is_empty() {
                    quote!(value.__eventodb_validate(#pointer, violations);)
                } else {
                    quote!(value.__eventodb_validate(&::std::format!("{}{}", pointer, #suffix), violations);)
                });
            }
            _ => {}
        }
        out
    }
}

/// The helper of `eventodb_kit::__private::codegen` (imported as `__eventodb_codegen`) that checks `check`,
/// and its arguments after `violations, pointer, suffix`; `None` when the Rust type already
/// guarantees the rule.
fn call(check: &Check, ty: &Ty) -> Option<(TokenStream, TokenStream)> {
    let count = |n: u64| Literal::usize_unsuffixed(n as usize);
    Some(match check {
        Check::MinLength(n) => {
            let n = count(*n);
            (quote!(min_length), quote!(value, #n))
        }
        Check::MaxLength(n) => {
            let n = count(*n);
            (quote!(max_length), quote!(value, #n))
        }
        Check::Pattern(_) => (quote!(pattern), quote!(value, &PATTERN)),
        Check::Format(format) => {
            let format = match format {
                Format::Email => quote!(Email),
                Format::Uri => quote!(Uri),
                Format::Ipv4 => quote!(Ipv4),
                Format::Ipv6 => quote!(Ipv6),
            };
            (
                quote!(format),
                quote!(value, __eventodb_codegen::Format::#format),
            )
        }
        Check::Minimum(n) => (quote!(minimum), bound_args(ty, n, true)?),
        Check::Maximum(n) => (quote!(maximum), bound_args(ty, n, false)?),
        Check::ExclusiveMinimum(n) => (quote!(exclusive_minimum), bound_args(ty, n, true)?),
        Check::ExclusiveMaximum(n) => (quote!(exclusive_maximum), bound_args(ty, n, false)?),
        Check::MultipleOf(n) => match (ty, n.as_u64()) {
            (Ty::Int(_), Some(divisor)) => {
                let divisor = Literal::u64_unsuffixed(divisor);
                (
                    quote!(multiple_of_int),
                    quote!(i128::from(*value), #divisor),
                )
            }
            (Ty::F64, _) => {
                let divisor = json::float(n);
                (quote!(multiple_of), quote!(*value, #divisor))
            }
            _ => {
                let divisor = json::float(n);
                (quote!(multiple_of), quote!(*value as f64, #divisor))
            }
        },
        Check::MinItems(n) => {
            let n = count(*n);
            (quote!(min_count), quote!(value.len(), #n, "item"))
        }
        Check::MaxItems(n) => {
            let n = count(*n);
            (quote!(max_count), quote!(value.len(), #n, "item"))
        }
        Check::UniqueItems => (quote!(unique_items), quote!(value)),
        Check::MinProperties(n) => {
            let n = count(*n);
            (quote!(min_count), quote!(value.len(), #n, "property"))
        }
        Check::MaxProperties(n) => {
            let n = count(*n);
            (quote!(max_count), quote!(value.len(), #n, "property"))
        }
        Check::Const(constant) => {
            let shown = constant.to_string();
            let expected = match (ty, constant) {
                (Ty::String, Value::String(text)) => quote!(#text),
                (_, value) => {
                    let literal = json::literal(value, ty);
                    quote!(&#literal)
                }
            };
            let value = if *ty == Ty::String {
                quote!(value.as_str())
            } else {
                quote!(value)
            };
            (quote!(constant), quote!(#value, #expected, #shown))
        }
    })
}

/// `value, bound` for a numeric comparison, typed to match, or `None` when the type makes the
/// check moot (`u64` is never below 0).
fn bound_args(ty: &Ty, bound: &Number, lower: bool) -> Option<TokenStream> {
    // A narrower type is compared as its 64-bit kin: a bound may lie outside its range.
    let widened = |wide: TokenStream, int: Int| {
        if matches!(int, Int::I64 | Int::U64) {
            quote!(*value)
        } else {
            quote!(#wide::from(*value))
        }
    };
    match ty {
        Ty::Int(int) if int.signed() && bound.as_i64().is_some() => {
            let lit = json::int(bound.as_i64().unwrap_or_default());
            let value = widened(quote!(i64), *int);
            Some(quote!(#value, #lit))
        }
        Ty::Int(int) if !int.signed() => match (bound.as_u64(), bound.as_f64()) {
            (Some(n), _) => {
                let lit = Literal::u64_suffixed(n);
                let value = widened(quote!(u64), *int);
                Some(quote!(#value, #lit))
            }
            (None, Some(n)) if n < 0.0 && lower => None,
            _ => {
                let lit = json::float(bound);
                Some(quote!(*value as f64, #lit))
            }
        },
        Ty::F64 => {
            let lit = json::float(bound);
            Some(quote!(*value, #lit))
        }
        // Compared as `f32`, as the value was read: `0.1` read into an `f32` is above the
        // `f64` `0.1`, and a bound of 0.1 would refuse it. A bound past `f32`'s range is
        // compared at full width (every `f32` lies on one side of it).
        Ty::F32 => match json::float32(bound) {
            Some(lit) => Some(quote!(*value, #lit)),
            None => {
                let lit = json::float(bound);
                Some(quote!(f64::from(*value), #lit))
            }
        },
        _ => {
            let lit = json::float(bound);
            Some(quote!(*value as f64, #lit))
        }
    }
}
