//! JSON values as Rust tokens: for `serde_json::json!` (schemars `extend`) and as literals.

use crate::model::{Int, Ty};
use proc_macro2::{Literal, TokenStream};
use quote::quote;
use serde_json::{Number, Value};

/// Tokens `serde_json::json!` turns back into `value`.
pub(super) fn tokens(value: &Value) -> TokenStream {
    match value {
        Value::Null => quote!(null),
        Value::Bool(b) => quote!(#b),
        Value::Number(number) => number_tokens(number),
        Value::String(text) => {
            let text = Literal::string(text);
            quote!(#text)
        }
        Value::Array(items) => {
            let items = items.iter().map(tokens);
            quote!([#(#items),*])
        }
        Value::Object(map) => {
            // Sorted: the map's order depends on serde_json's `preserve_order` feature.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            let entries = entries.into_iter().map(|(key, value)| {
                let value = tokens(value);
                quote!(#key: #value)
            });
            quote!({#(#entries),*})
        }
    }
}

/// A number for `json!`. Integers are typed (`i64`, or `u64` past its range): `json!` turns
/// an untyped integer literal into an `i32`, and a bound past that range (`4294967295`,
/// `2^53 - 1`, `i64::MIN`) would not compile.
fn number_tokens(number: &Number) -> TokenStream {
    if let Some(n) = number.as_i64() {
        int(n)
    } else if let Some(n) = number.as_u64() {
        let lit = Literal::u64_suffixed(n);
        quote!(#lit)
    } else {
        let n = number.as_f64().unwrap_or_default();
        let lit = Literal::f64_unsuffixed(n.abs());
        if n < 0.0 { quote!(-#lit) } else { quote!(#lit) }
    }
}

/// A Rust literal of type `ty` for a scalar JSON value (checked to fit when converting).
pub(super) fn literal(value: &Value, ty: &Ty) -> TokenStream {
    match (ty, value) {
        (Ty::Bool, Value::Bool(b)) => quote!(#b),
        (Ty::Int(int), Value::Number(n)) => typed_int(*int, n),
        // Checked to fit when converting.
        (Ty::F32, Value::Number(n)) => float32(n).unwrap_or_else(|| float(n)),
        (_, Value::Number(n)) => float(n),
        (_, Value::String(text)) => quote!(#text),
        _ => quote!(::core::default::Default::default()),
    }
}

/// An `f64` literal (a leading `-` as its own token).
pub(super) fn float(number: &Number) -> TokenStream {
    let n = number.as_f64().unwrap_or_default();
    let lit = Literal::f64_suffixed(n.abs());
    if n < 0.0 { quote!(-#lit) } else { quote!(#lit) }
}

/// An `f32` literal of the `f32` nearest `number`, or `None` past `f32`'s range.
pub(super) fn float32(number: &Number) -> Option<TokenStream> {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the nearest `f32` is the one meant"
    )]
    let n = number.as_f64().unwrap_or_default() as f32;
    if !n.is_finite() {
        return None;
    }
    let lit = Literal::f32_suffixed(n.abs());
    Some(if n < 0.0 { quote!(-#lit) } else { quote!(#lit) })
}

/// The Rust type of `int`.
pub(super) fn int_type(int: Int) -> TokenStream {
    match int {
        Int::I8 => quote!(i8),
        Int::I16 => quote!(i16),
        Int::I32 => quote!(i32),
        Int::I64 => quote!(i64),
        Int::U8 => quote!(u8),
        Int::U16 => quote!(u16),
        Int::U32 => quote!(u32),
        Int::U64 => quote!(u64),
    }
}

/// A literal of type `int` (checked to fit when converting), written as the type's `MIN`
/// when it is (`-128i8` would not compile: the literal `128i8` overflows before the `-`).
fn typed_int(int: Int, number: &Number) -> TokenStream {
    let n = number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
        .unwrap_or_default();
    let ty = int_type(int);
    if n == int.range().0 && n < 0 {
        return quote!(#ty::MIN);
    }
    let digits: TokenStream = format!("{}{ty}", n.unsigned_abs())
        .parse()
        .unwrap_or_default();
    if n < 0 { quote!(-#digits) } else { digits }
}

/// An `i64` literal (a leading `-` as its own token).
pub(super) fn int(n: i64) -> TokenStream {
    if n == i64::MIN {
        return quote!(i64::MIN);
    }
    let lit = Literal::i64_suffixed(n.abs());
    if n < 0 { quote!(-#lit) } else { quote!(#lit) }
}

#[cfg(test)]
mod tests {
    use super::tokens;
    use serde_json::json;

    #[test]
    fn integers_are_typed_for_json() {
        let text = |value| tokens(&value).to_string();
        assert_eq!(text(json!(5)), "5i64");
        assert_eq!(text(json!(-5)), "- 5i64");
        assert_eq!(text(json!(4294967295_u64)), "4294967295i64");
        assert_eq!(text(json!(u64::MAX)), "18446744073709551615u64");
        assert_eq!(text(json!(i64::MIN)), "i64 :: MIN");
        assert_eq!(text(json!(0.5)), "0.5");
        assert_eq!(text(json!([1, -1])), "[1i64 , - 1i64]");
    }
}
