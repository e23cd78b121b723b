//! Procedural macros for eventodb-kit. Use them through `eventodb_kit`, which re-exports them.
//!
//! This file holds only the entry points; each macro lives in its own module (parse,
//! validate, expand), and attribute helpers shared by all macros live in `attr`.

mod attr;
mod event;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `eventodb_kit::Event` for a struct with named fields or an enum.
///
/// ```
/// use eventodb_kit::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(category = "class_membership", stream = "class_membership-{class_id}+{student_id}")]
/// struct ClassMembershipRequested {
///     class_id: String,
///     student_id: u64,
/// }
///
/// let event = ClassMembershipRequested { class_id: "c1".into(), student_id: 7 };
/// assert_eq!(ClassMembershipRequested::TYPE, "ClassMembershipRequested");
/// assert_eq!(ClassMembershipRequested::CATEGORY, "class_membership");
/// assert_eq!(event.stream_name(), "class_membership-c1+7");
/// ```
///
/// The type must also implement `Serialize` and `Deserialize` (the event's data is its JSON),
/// and be `Send + Sync + 'static`.
///
/// # `#[event(...)]` keys
///
/// All values are string literals. `#[event]` may be split over several attributes; each key
/// may be given once.
///
/// | key | | meaning |
/// |---|---|---|
/// | `category = "user"` | required | The category of the event's streams. Not empty; no `-` (EventoDB ends a category at the first `-` of a stream name), braces, spaces or control characters. `:` is allowed (`user:command`). |
/// | `stream = "user-{user_id}"` | required | The stream-name template, see below. |
/// | `type = "UserCreated"` | optional | The message type written to EventoDB. Defaults to the Rust type's name (without `r#`). Not empty; no spaces or control characters. |
/// | `validate = "path"` | optional | A function `fn(&Self) -> Result<(), ValidationError>` (a free function or a method such as `Self::check`) that `Event::validate`, and so `Event::decode`, calls. Without it, `validate` accepts everything. |
/// | `crate = "path"` | optional | The path of the eventodb-kit crate, for a renamed or re-exported dependency. Defaults to `::eventodb_kit`. |
///
/// # Stream templates
///
/// A template is literal text with `{field}` placeholders, e.g. `user-{user_id}` or
/// `class_membership-{class_id}+{student_id}`. `stream_name()` replaces each placeholder by
/// the field's value formatted with `Display`, so each placeholder field must implement
/// `Display` (the compiler says so at the field's type otherwise).
///
/// - Each placeholder names a field of the struct (its Rust name, not a serde rename; write
///   raw identifiers with or without `r#`). Placeholders may repeat and come in any order.
/// - The text before the first `-` is the stream's category: it must be literal and equal
///   `category`, and an id must follow the `-`. A template without placeholders
///   (`settings-global`) names one fixed stream.
/// - Braces have no escape: a stream name cannot contain `{` or `}`, so `{{` and `}}` are
///   errors and every `{` in `STREAM_TEMPLATE` opens a placeholder. Format specs
///   (`{id:?}`) are errors too.
///
/// # Enums
///
/// An enum is one event type (one `type`, whatever the variant) whose variants are the
/// shapes its data can take (use serde's enum representations, e.g. `#[serde(tag = "kind")]`,
/// to choose how they look in JSON). Every variant must have a named field for each
/// placeholder of the template, so every value has a stream; with a template without
/// placeholders the variants may be of any kind.
///
/// # Compile errors
///
/// Mistakes are compile errors on the token that is wrong, all reported in one build: a
/// missing `category` or `stream`, an unknown or repeated key (the message lists the valid
/// keys), a value that is not a string, an empty or malformed category or type, a template
/// whose placeholder is not a field, whose category is not `category`, or that has no id;
/// `#[event]` on a field or variant; a tuple struct, unit struct or union. For example, a
/// placeholder that names no field:
///
/// ```compile_fail
/// use eventodb_kit::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(category = "user", stream = "user-{id}")] // error: `UserCreated` has no field `id`
/// struct UserCreated {
///     user_id: u64,
/// }
/// ```
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::derive(&input).into()
}
