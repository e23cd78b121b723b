//! The `#[derive(..)]` list of a generated type: the generator's own derives plus the user's,
//! each trait once.
//!
//! Deriving a trait twice is E0119 (conflicting implementations) inside the generated file,
//! which the user cannot edit. Enums already derive `Copy, Eq, Hash`, so the documented
//! `.derive("Eq")` would break every schema with an `enum`; a user derive that names a trait
//! the type already derives is therefore dropped.

/// A trait the generator derives itself: its name and the crates that export it.
struct Builtin {
    name: &'static str,
    crates: &'static [&'static str],
}

const STD: &[&str] = &["std", "core"];

/// Derived on every generated type.
const ALWAYS: &[Builtin] = &[
    Builtin {
        name: "Debug",
        crates: STD,
    },
    Builtin {
        name: "Clone",
        crates: STD,
    },
    Builtin {
        name: "PartialEq",
        crates: STD,
    },
    Builtin {
        name: "Serialize",
        crates: &["serde"],
    },
    Builtin {
        name: "Deserialize",
        crates: &["serde"],
    },
    Builtin {
        name: "JsonSchema",
        crates: &["schemars"],
    },
];

/// The std derives the generator adds to string enums.
pub(super) const ENUM_EXTRA: &[&str] = &["Copy", "Eq", "Hash"];

/// The user's derives that the type does not already get, in order and each once. `extra` are
/// the std traits derived on this kind of type besides [`ALWAYS`].
pub(super) fn user_derives<'p>(user: &'p [syn::Path], extra: &[&str]) -> Vec<&'p syn::Path> {
    let mut kept: Vec<&syn::Path> = Vec::new();
    for path in user {
        let builtin = ALWAYS.iter().any(|b| names(path, b.name, b.crates))
            || extra.iter().any(|name| names(path, name, STD));
        if !builtin && !kept.contains(&path) {
            kept.push(path);
        }
    }
    kept
}

/// Whether `path` names the trait `name` of one of `crates`: the bare name (as the prelude or
/// a `use` brings it), or a path from the crate, e.g. `::core::cmp::Eq` or `serde::Serialize`.
fn names(path: &syn::Path, name: &str, crates: &[&str]) -> bool {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [] => false,
        [only] => path.leading_colon.is_none() && only == name,
        [first, .., last] => last == name && crates.contains(&first.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<syn::Path> {
        list.iter()
            .map(|text| syn::parse_str(text).expect("a path"))
            .collect()
    }

    fn kept(user: &[&str], extra: &[&str]) -> Vec<String> {
        let user = paths(user);
        user_derives(&user, extra)
            .into_iter()
            .map(|path| quote::quote!(#path).to_string().replace(' ', ""))
            .collect()
    }

    #[test]
    fn a_trait_an_enum_already_derives_is_dropped() {
        assert_eq!(kept(&["Eq", "Ord"], ENUM_EXTRA), ["Ord"]);
        assert!(kept(&["::core::cmp::Eq", "std::hash::Hash"], ENUM_EXTRA).is_empty());
    }

    #[test]
    fn a_struct_keeps_eq_but_drops_its_own_derives() {
        assert_eq!(
            kept(&["Eq", "Debug", "serde::Serialize", "Clone"], &[]),
            ["Eq"]
        );
    }

    #[test]
    fn user_derives_are_kept_once_in_order() {
        assert_eq!(
            kept(&["my::Marker", "Eq", "my::Marker", "Hash"], &[]),
            ["my::Marker", "Eq", "Hash"]
        );
    }

    #[test]
    fn a_trait_of_the_same_name_from_another_crate_is_kept() {
        assert_eq!(kept(&["my_crate::Debug"], &[]), ["my_crate::Debug"]);
    }
}
