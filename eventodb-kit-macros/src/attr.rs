//! Attribute parsing shared by every macro: an error collector and `key = "value"` helpers.
//!
//! The helpers never stop at the first mistake: a bad argument is reported, its tokens are
//! skipped up to the next comma, and parsing carries on, so one build shows every mistake.

use std::fmt::Display;

use proc_macro2::{Span, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Token};

/// Collects every diagnostic of one macro invocation, to be combined into one
/// `syn::Error` at the end (serde's `Ctxt` idea, without the drop-time check).
#[derive(Default)]
pub(crate) struct Errors {
    list: Vec<syn::Error>,
}

impl Errors {
    /// Records an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.list.push(error);
    }

    /// Records an error on `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an error spanning all of `tokens` (rustc draws the caret from the first token
    /// to the last).
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Combines the collected errors into one, or `Ok` when there are none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut list = self.list.into_iter();
        match list.next() {
            None => Ok(()),
            Some(mut first) => {
                for error in list {
                    first.combine(error);
                }
                Err(first)
            }
        }
    }
}

/// One key's value, remembering where the key was written so a second one can be reported.
pub(crate) struct Slot<T> {
    value: Option<T>,
    /// The key was written, even if its value was bad: a later "needs `key`" would repeat
    /// the one mistake as a second error.
    written: bool,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            value: None,
            written: false,
        }
    }
}

impl<T> Slot<T> {
    /// Records that the key was written, before its value is parsed.
    pub(crate) fn mark_written(&mut self) {
        self.written = true;
    }

    /// Whether the key was written, valid or not.
    pub(crate) fn written(&self) -> bool {
        self.written || self.value.is_some()
    }

    /// Stores `value`, or reports a duplicate `key` (on the second key) and keeps the first.
    pub(crate) fn set(&mut self, errors: &mut Errors, attr: &str, key: &Ident, value: T) {
        if self.value.is_some() {
            errors.at(
                key.span(),
                format_args!("duplicate `{key}` in `#[{attr}]`: give it once"),
            );
        } else {
            self.value = Some(value);
        }
    }

    /// The stored value.
    pub(crate) fn into_inner(self) -> Option<T> {
        self.value
    }
}

/// The key of one argument, as a plain identifier (keywords such as `type` and `crate`
/// included).
pub(crate) fn key_of(meta: &ParseNestedMeta<'_>) -> syn::Result<Ident> {
    meta.path
        .get_ident()
        .cloned()
        .ok_or_else(|| meta.error("expected a key such as `category`, not a path"))
}

/// The error for an unknown key: names the attribute, the valid key it is probably a typo of
/// (see [`closest`]), and lists the valid keys.
pub(crate) fn unknown_key(key: &Ident, attr: &str, valid: &[&str]) -> syn::Error {
    let hint = closest(key, valid)
        .map(|near| format!("did you mean `{near}`? "))
        .unwrap_or_default();
    let valid = valid
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    syn::Error::new(
        key.span(),
        format!("unknown key `{key}` in `#[{attr}]`; {hint}the valid keys are {valid}"),
    )
}

/// The valid key `key` is probably a typo of: the nearest by edit distance, when at most a
/// third of its letters differ (`categroy` → `category`, `stric` → `strict`). A caller that
/// gets one counts that key as written, so the typo is not also reported as a missing key.
pub(crate) fn closest<'v>(key: &Ident, valid: &[&'v str]) -> Option<&'v str> {
    let key = key.to_string();
    valid
        .iter()
        .map(|candidate| (edit_distance(&key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance * 3 <= candidate.len().max(key.len()))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, counting an adjacent swap as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Parses the `= "..."` after `key`, with messages that show the expected form.
pub(crate) fn string_value(meta: &ParseNestedMeta<'_>, key: &Ident) -> syn::Result<LitStr> {
    if !meta.input.peek(Token![=]) {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` needs a value: write `{key} = \"...\"`"),
        ));
    }
    let value: Expr = meta.value()?.parse()?;
    match without_groups(&value) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a string literal: write `{key} = \"...\"`"),
        )),
    }
}

/// `expr` without the invisible group a `macro_rules!` fragment (`$x:expr`, `$x:literal`)
/// arrives in, and without parentheses.
fn without_groups(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => without_groups(&group.expr),
        Expr::Paren(paren) => without_groups(&paren.expr),
        other => other,
    }
}

/// Skips what is left of one argument, up to (not including) the next top-level comma.
fn skip_argument(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// Runs `on_arg` for each `key ...` argument inside `#[attr(...)]`, recording its errors and
/// carrying on with the next argument.
pub(crate) fn parse_attribute(
    attr: &Attribute,
    errors: &mut Errors,
    mut on_arg: impl FnMut(&ParseNestedMeta<'_>, &mut Errors) -> syn::Result<()>,
) {
    let result = attr.parse_nested_meta(|meta| {
        if let Err(error) = on_arg(&meta, errors) {
            errors.push(error);
            skip_argument(meta.input)?;
        }
        Ok(())
    });
    if let Err(error) = result {
        errors.push(error);
    }
}

/// Like [`parse_attribute`], for the arguments of an attribute macro (`#[consumer(...)]`).
pub(crate) fn parse_arguments(
    tokens: proc_macro2::TokenStream,
    errors: &mut Errors,
    mut on_arg: impl FnMut(&ParseNestedMeta<'_>, &mut Errors) -> syn::Result<()>,
) {
    let mut failed = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if let Err(error) = on_arg(&meta, errors) {
            failed.push(error);
            skip_argument(meta.input)?;
        }
        Ok(())
    });
    let result = parser.parse2(tokens);
    for error in failed {
        errors.push(error);
    }
    if let Err(error) = result {
        errors.push(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_of_a_key_is_named() {
        let ident = |name: &str| Ident::new(name, proc_macro2::Span::call_site());
        let keys = ["category", "strict", "transactional", "exhaustive", "crate"];
        assert_eq!(closest(&ident("categroy"), &keys), Some("category"));
        assert_eq!(closest(&ident("catgory"), &keys), Some("category"));
        assert_eq!(closest(&ident("stric"), &keys), Some("strict"));
        assert_eq!(
            closest(&ident("transactionnal"), &keys),
            Some("transactional")
        );
        assert_eq!(closest(&ident("colour"), &keys), None);
        assert_eq!(closest(&ident("x"), &keys), None);
        assert_eq!(edit_distance("abc", "acb"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
    use syn::parse_quote;

    fn collect(attr: &Attribute) -> (Vec<(String, String)>, Vec<String>) {
        let mut errors = Errors::default();
        let mut seen = Vec::new();
        parse_attribute(attr, &mut errors, |meta, _| {
            let key = key_of(meta)?;
            match key.to_string().as_str() {
                "category" | "type" => {
                    let value = string_value(meta, &key)?;
                    seen.push((key.to_string(), value.value()));
                    Ok(())
                }
                _ => Err(unknown_key(&key, "event", &["category", "type"])),
            }
        });
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (seen, messages)
    }

    #[test]
    fn keywords_are_keys() {
        let attr: Attribute = parse_quote!(#[event(type = "A", category = "b")]);
        let (seen, errors) = collect(&attr);
        assert_eq!(
            seen,
            [("type".into(), "A".into()), ("category".into(), "b".into())]
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn every_mistake_is_reported_and_parsing_goes_on() {
        let attr: Attribute =
            parse_quote!(#[event(colour = "red", category = 5, type, category = "user")]);
        let (seen, errors) = collect(&attr);
        assert_eq!(seen, [("category".into(), "user".into())]);
        assert_eq!(
            errors,
            [
                "unknown key `colour` in `#[event]`; the valid keys are `category`, `type`",
                "`category` takes a string literal: write `category = \"...\"`",
                "`type` needs a value: write `type = \"...\"`",
            ]
        );
    }

    #[test]
    fn values_from_macro_rules_fragments_are_literals() {
        use proc_macro2::{Delimiter, Group};
        // What `category = $category` gives for `$category:expr` or `$category:literal`.
        let category = Group::new(Delimiter::None, quote::quote!("user"));
        let attr: Attribute = parse_quote!(#[event(category = #category, type = ("A"))]);
        let (seen, errors) = collect(&attr);
        assert_eq!(
            seen,
            [
                ("category".into(), "user".into()),
                ("type".into(), "A".into())
            ]
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn slot_reports_the_second_key() {
        let mut errors = Errors::default();
        let mut slot = Slot::default();
        let key: Ident = parse_quote!(category);
        slot.set(&mut errors, "event", &key, 1);
        slot.set(&mut errors, "event", &key, 2);
        assert_eq!(slot.into_inner(), Some(1));
        let error = errors.finish().unwrap_err();
        assert_eq!(
            error.to_string(),
            "duplicate `category` in `#[event]`: give it once"
        );
    }

    #[test]
    fn arguments_of_an_attribute_macro() {
        let mut errors = Errors::default();
        let mut keys = Vec::new();
        parse_arguments(
            quote::quote!(category = "user", strict, x = 1),
            &mut errors,
            |meta, _| {
                let key = key_of(meta)?;
                if key == "x" {
                    return Err(unknown_key(&key, "consumer", &["category", "strict"]));
                }
                if meta.input.peek(Token![=]) {
                    string_value(meta, &key)?;
                }
                keys.push(key.to_string());
                Ok(())
            },
        );
        assert_eq!(keys, ["category", "strict"]);
        assert!(errors.finish().is_err());
    }
}
