//! The generated `__eventodb_validate` methods: every rule serde cannot check, reported with the
//! JSON pointer of the value that broke it.

use super::{Emitter, ident, json};
use crate::model::{Check, Format, Model, Presence, Shape, Ty, TypeDef, TypeKind};
use proc_macro2::{Literal, TokenStream};
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
                TypeKind::Enum(_) => false,
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
                        _ => quote!(if let Some(value) = &self.#name { #checks }),
                    }
                });
                quote!(#(#fields)*)
            }
            TypeKind::Union { variants, .. } => {
                let arms = variants
                    .iter()
                    .filter(|variant| self.has_checks(&variant.payload))
                    .map(|variant| {
                        let name = ident(&variant.name);
                        quote!(Self::#name(value) => value.__eventodb_validate(pointer, violations),)
                    });
                let rest = variants
                    .iter()
                    .any(|variant| !self.has_checks(&variant.payload))
                    .then(|| quote!(_ => {}));
                quote!(match self { #(#arms)* #rest })
            }
            TypeKind::Enum(_) => TokenStream::new(),
        };
        let name = ident(&def.name);
        quote! {
            impl #name {
                /// Appends every schema rule this value breaks to `violations`, with pointers
                /// starting at `pointer`.
                #[doc(hidden)]
                pub fn __eventodb_validate(
                    &self,
                    pointer: &str,
                    violations: &mut Vec<#krate::Violation>,
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
            return quote!(if let Some(value) = value { #checks });
        }
        let krate = self.krate;
        let mut out = TokenStream::new();
        for check in &shape.checks {
            if let Check::Pattern(pattern) = check {
                // A block statement, not inside the `if` condition.
                out.extend(quote! {
                    static PATTERN: ::std::sync::LazyLock<#krate::__private::regex::Regex> =
                        ::std::sync::LazyLock::new(|| {
                            #krate::__private::regex::Regex::new(#pattern)
                                .expect("the pattern compiled at build time")
                        });
                });
            }
            if let Some((condition, message)) = self.condition(check, &shape.ty) {
                out.extend(quote! {
                    if #condition {
                        #krate::__private::codegen::push(violations, #pointer, #suffix, #message);
                    }
                });
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
                        let pointer = #krate::__private::codegen::entry_pointer(#pointer, #suffix, key);
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

    /// The condition under which `check` fails, and its message; `None` when the Rust type
    /// already guarantees it.
    fn condition(&self, check: &Check, ty: &Ty) -> Option<(TokenStream, String)> {
        let codegen = {
            let krate = self.krate;
            quote!(#krate::__private::codegen)
        };
        let usize_lit = |n: u64| Literal::usize_unsuffixed(n as usize);
        Some(match check {
            Check::MinLength(1) => (quote!(value.is_empty()), "must not be empty".to_owned()),
            Check::MinLength(n) => {
                let lit = usize_lit(*n);
                (
                    quote!(#codegen::char_len(value) < #lit),
                    format!("must be at least {n} characters long"),
                )
            }
            Check::MaxLength(n) => {
                let lit = usize_lit(*n);
                (
                    quote!(#codegen::char_len(value) > #lit),
                    format!("must be at most {n} character{} long", plural(*n)),
                )
            }
            Check::Pattern(pattern) => (
                quote!(!PATTERN.is_match(value)),
                format!("must match the pattern `{pattern}`"),
            ),
            Check::Format(format) => {
                let (function, what) = match format {
                    Format::Email => (quote!(is_email), "an email address"),
                    Format::Uri => (quote!(is_uri), "a URI"),
                    Format::Ipv4 => (quote!(is_ipv4), "an IPv4 address"),
                    Format::Ipv6 => (quote!(is_ipv6), "an IPv6 address"),
                };
                (
                    quote!(!#codegen::#function(value)),
                    format!("must be {what}"),
                )
            }
            Check::Minimum(n) => compare(ty, n, quote!(<), format!("must be at least {n}"))?,
            Check::Maximum(n) => compare(ty, n, quote!(>), format!("must be at most {n}"))?,
            Check::ExclusiveMinimum(n) => {
                compare(ty, n, quote!(<=), format!("must be greater than {n}"))?
            }
            Check::ExclusiveMaximum(n) => {
                compare(ty, n, quote!(>=), format!("must be less than {n}"))?
            }
            Check::MultipleOf(n) => {
                let message = format!("must be a multiple of {n}");
                match (ty, n.as_u64()) {
                    (Ty::I64, Some(divisor)) if divisor <= i64::MAX as u64 => {
                        let lit = json::int(divisor as i64);
                        (quote!(*value % #lit != 0), message)
                    }
                    (Ty::U64, Some(divisor)) => {
                        let lit = Literal::u64_suffixed(divisor);
                        (quote!(*value % #lit != 0), message)
                    }
                    (Ty::F64, _) => {
                        let lit = json::float(n);
                        (quote!(!#codegen::is_multiple_of(*value, #lit)), message)
                    }
                    _ => {
                        let lit = json::float(n);
                        (
                            quote!(!#codegen::is_multiple_of(*value as f64, #lit)),
                            message,
                        )
                    }
                }
            }
            Check::MinItems(1) => (
                quote!(value.is_empty()),
                "must have at least 1 item".to_owned(),
            ),
            Check::MinItems(n) => {
                let lit = usize_lit(*n);
                (
                    quote!(value.len() < #lit),
                    format!("must have at least {n} item{}", plural(*n)),
                )
            }
            Check::MaxItems(n) => {
                let lit = usize_lit(*n);
                (
                    quote!(value.len() > #lit),
                    format!("must have at most {n} item{}", plural(*n)),
                )
            }
            Check::UniqueItems => (
                quote!(!#codegen::all_unique(value)),
                "must not contain duplicate items".to_owned(),
            ),
            Check::MinProperties(1) => (
                quote!(value.is_empty()),
                "must have at least 1 property".to_owned(),
            ),
            Check::MinProperties(n) => {
                let lit = usize_lit(*n);
                (
                    quote!(value.len() < #lit),
                    format!(
                        "must have at least {n} propert{}",
                        if *n == 1 { "y" } else { "ies" }
                    ),
                )
            }
            Check::MaxProperties(n) => {
                let lit = usize_lit(*n);
                (
                    quote!(value.len() > #lit),
                    format!(
                        "must have at most {n} propert{}",
                        if *n == 1 { "y" } else { "ies" }
                    ),
                )
            }
            Check::Const(constant) => {
                let message = format!("must be {constant}");
                let condition = match (ty, constant) {
                    (Ty::String, Value::String(text)) => quote!(value.as_str() != #text),
                    (Ty::Bool, Value::Bool(true)) => quote!(!*value),
                    (Ty::Bool, Value::Bool(false)) => quote!(*value),
                    (Ty::F64, Value::Number(n)) => {
                        let lit = json::float(n);
                        quote!((*value - #lit).abs() > 0.0)
                    }
                    (_, value) => {
                        let lit = json::literal(value, ty);
                        quote!(*value != #lit)
                    }
                };
                (condition, message)
            }
        })
    }
}

/// `*value <op> bound` for a numeric type, or `None` when the type makes the check moot.
fn compare(
    ty: &Ty,
    bound: &Number,
    op: TokenStream,
    message: String,
) -> Option<(TokenStream, String)> {
    let op_text = op.to_string();
    let condition = match ty {
        Ty::I64 if bound.as_i64().is_some() => {
            let lit = json::int(bound.as_i64().unwrap_or_default());
            quote!(*value #op #lit)
        }
        Ty::U64 => {
            let lower = op_text == "<" || op_text == "<=";
            match (bound.as_u64(), bound.as_f64()) {
                // `u64 < 0` can never be true: the type already enforces the bound.
                (Some(0), _) if op_text == "<" => return None,
                (Some(n), _) => {
                    let lit = Literal::u64_suffixed(n);
                    quote!(*value #op #lit)
                }
                (None, Some(n)) if n < 0.0 && lower => return None,
                _ => {
                    let lit = json::float(bound);
                    quote!((*value as f64) #op #lit)
                }
            }
        }
        Ty::F64 => {
            let lit = json::float(bound);
            quote!(*value #op #lit)
        }
        _ => {
            let lit = json::float(bound);
            quote!((*value as f64) #op #lit)
        }
    };
    Some((condition, message))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
