//! The [`Event`] trait: what a typed event knows about itself.
//!
//! Implemented by `#[derive(Event)]` and by the code `eventodb-kit-codegen` generates from JSON
//! Schema files.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// A typed event: its type name, its category, the stream it belongs to, and the checks its
/// schema makes beyond what serde can express.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an eventodb-kit event",
    label = "not an event",
    note = "derive it with `#[derive(eventodb_kit::Event)]` and `#[event(category = \"...\", stream = \"...\")]`, or generate it from a JSON Schema with eventodb-kit-codegen"
)]
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The message type stored in EventoDB, e.g. `UserCreated`.
    const TYPE: &'static str;
    /// The category of the event's streams, e.g. `user`. Never empty: `""` marks the
    /// stand-in impl `#[derive(Event)]` emits beside its compile errors, which `#[consumer]`
    /// does not check again.
    const CATEGORY: &'static str;
    /// The stream-name template, e.g. `user-{user_id}` or `class_membership-{class_id}+{student_id}`.
    const STREAM_TEMPLATE: &'static str;

    /// The name of the stream this event is written to, filled in from the template.
    fn stream_name(&self) -> String;

    /// Checks what serde cannot: patterns, lengths, ranges, formats. Returns every violation.
    ///
    /// # Errors
    /// A [`ValidationError`] listing each violation with its JSON pointer.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }

    /// Decodes the `data` of a stored message into this event and validates it.
    ///
    /// # Errors
    /// A [`ValidationError`] when the data does not deserialize or breaks a schema rule.
    fn decode(data: &serde_json::Value) -> Result<Self, ValidationError> {
        let event: Self = serde_json::from_value(data.clone()).map_err(|error| {
            ValidationError::new(vec![Violation {
                pointer: String::new(),
                message: error.to_string(),
            }])
        })?;
        event.validate()?;
        Ok(event)
    }
}

/// One rule an event broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value (`/email`, `/items/2/qty`); empty for the whole event.
    pub pointer: String,
    /// What is wrong, in lowercase words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// Every rule an event broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    violations: Vec<Violation>,
}

impl ValidationError {
    /// Wraps a list of violations.
    pub fn new(violations: Vec<Violation>) -> Self {
        Self { violations }
    }

    /// The violations, in the order they were found.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid event: ")?;
        for (index, violation) in self.violations.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}
