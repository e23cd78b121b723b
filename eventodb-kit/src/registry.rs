//! The registry of every event generated from a schema folder.
//!
//! `eventodb-kit-codegen` emits, beside the event structs, an `AnyEvent` enum with one variant
//! per event type and a unit struct `Events` implementing [`EventRegistry`]. It answers the
//! questions a consumer asks about a message it has not decoded yet: which category does this
//! type belong to, which types does a category have, and what typed event is this `(type, data)`.
//!
//! # Examples
//!
//! ```ignore
//! mod events { eventodb_kit::include_events!(); }
//! use eventodb_kit::registry::EventRegistry;
//!
//! assert_eq!(events::Events::category_of("UserCreated"), Some("user"));
//! let event = events::Events::decode("UserCreated", &data)?; // an `events::AnyEvent`
//! ```
//!
//! A proc macro cannot read another crate's constants, so the category lists are meant for
//! compile-time checks written as `const` items: [`missing_type`] is a `const fn`, and a
//! generated `categories::USER` constant lists the types of category `user`:
//!
//! ```
//! use eventodb_kit::registry::missing_type;
//! const USER: &[&str] = &["UserCreated", "UserDeleted"];
//! const _: () = if let Some(event_type) = missing_type(USER, &["UserCreated", "UserDeleted"]) {
//!     panic!("{}", event_type)
//! };
//! ```

use crate::event::ValidationError;

/// The event types of one category, as generated from the schema folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryTypes {
    /// The category name, e.g. `user`.
    pub category: &'static str,
    /// Its event types, sorted, e.g. `["UserCreated", "UserDeleted"]`.
    pub types: &'static [&'static str],
}

/// Every event type a schema folder defines. Implemented by the generated `Events` struct.
pub trait EventRegistry {
    /// The enum of all events (`AnyEvent` in generated code).
    type Event;

    /// Every event type, sorted.
    const TYPES: &'static [&'static str];

    /// Every category with its event types, sorted by category.
    const CATEGORIES: &'static [CategoryTypes];

    /// The category of an event type, `None` when the type is unknown.
    fn category_of(event_type: &str) -> Option<&'static str> {
        Self::CATEGORIES
            .iter()
            .find(|category| category.types.contains(&event_type))
            .map(|category| category.category)
    }

    /// The event types of a category; empty when the category is unknown.
    fn types_in(category: &str) -> &'static [&'static str] {
        Self::CATEGORIES
            .iter()
            .find(|entry| entry.category == category)
            .map_or(&[], |entry| entry.types)
    }

    /// Decodes a stored message's `data` into the typed event its `event_type` names, and
    /// validates it against its schema.
    ///
    /// # Errors
    /// [`DecodeError::UnknownType`] for a type the registry does not know,
    /// [`DecodeError::Invalid`] when the data does not match the type's schema.
    fn decode(event_type: &str, data: &serde_json::Value) -> Result<Self::Event, DecodeError>;
}

/// Why a `(type, data)` pair did not decode into a registered event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The registry has no event of this type.
    #[error("unknown event type `{event_type}`")]
    UnknownType {
        /// The type that was asked for.
        event_type: String,
    },
    /// The data does not match the event's schema.
    #[error("invalid `{event_type}` event")]
    Invalid {
        /// The event type.
        event_type: String,
        /// Every violation found.
        #[source]
        source: ValidationError,
    },
}

/// The first entry of `expected` that `handled` lacks, or `None`. A `const fn`, so a macro can
/// check at compile time that a consumer handles every event of its category.
pub const fn missing_type(expected: &[&'static str], handled: &[&str]) -> Option<&'static str> {
    let mut index = 0;
    while index < expected.len() {
        let mut found = false;
        let mut other = 0;
        while other < handled.len() {
            if str_eq(expected[index], handled[other]) {
                found = true;
            }
            other += 1;
        }
        if !found {
            return Some(expected[index]);
        }
        index += 1;
    }
    None
}

const fn str_eq(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if left.len() != right.len() {
        return false;
    }
    let mut index = 0;
    while index < left.len() {
        if left[index] != right[index] {
            return false;
        }
        index += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_type_names_the_first_unhandled_type() {
        const ALL: &[&str] = &["A", "B", "C"];
        assert_eq!(missing_type(ALL, &["C", "A"]), Some("B"));
        assert_eq!(missing_type(ALL, &["C", "B", "A"]), None);
        assert_eq!(missing_type(&[], &["A"]), None);
    }
}
