//! Procedural macros for eventodb-kit. Use them through `eventodb_kit`, which re-exports them.
//!
//! This file holds only the entry points; each macro lives in its own module (parse,
//! validate, expand), and attribute helpers shared by all macros live in `attr`.

mod attr;
mod consumer;
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

/// Implements `eventodb_kit::consumer::Consumer` for the type of an impl block whose
/// `async fn`s each handle one event type: the macro builds the dispatch table (message
/// type → `Event::decode`, i.e. serde plus the event's validation → the handler).
///
/// ```
/// use eventodb_kit::consumer::{Context, HandlerError};
/// use eventodb_kit::{Backend, Event, consumer};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(category = "user", stream = "user-{user_id}")]
/// struct UserCreated { user_id: u64, email: String }
///
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(category = "user", stream = "user-{user_id}")]
/// struct UserDeleted { user_id: u64 }
///
/// struct Welcome;
///
/// #[consumer(category = "user")]
/// impl Welcome {
///     async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
///         println!("welcome, {}", event.email);
///         Ok(())
///     }
///
///     async fn deleted<DB: Backend>(
///         &self,
///         event: UserDeleted,
///         ctx: &mut Context<'_, DB>,
///     ) -> Result<(), HandlerError> {
///         println!("{} left (attempt {})", event.user_id, ctx.attempt());
///         Ok(())
///     }
/// }
/// ```
///
/// Run it like any consumer: `kit.workers().consumer(Welcome, ConsumerOptions::new("welcome"))`.
///
/// # Handlers
///
/// Every method of the impl block (a function taking `self`) is a handler; associated
/// functions without `self` that are not `async` (constructors) and associated consts are
/// left alone. Put helper methods in another `impl` block. A handler is
///
/// ```text
/// async fn name(&self, event: EventType) -> Result<(), E>
/// async fn name(&self, event: EventType, ctx: &mut Context<'_, DB>) -> Result<(), E>
/// ```
///
/// - `EventType` implements `Event` (derived, or generated from a JSON Schema) and belongs to
///   the consumer's category. Each event type has at most one handler.
/// - The handler's future is `Send` (consumers run on a multi-threaded runtime): do not
///   hold an `Rc`, a `RefCell` borrow or a `std::sync::MutexGuard` across an `.await`.
/// - `E` is `HandlerError` or anything that converts into it (any
///   `std::error::Error + Send + Sync + 'static`): `?` works on most errors. An error is
///   retried, then the consumer's `FailurePolicy` applies; `HandlerError::permanent` skips
///   the retries.
/// - The context's backend decides which `Consumer<DB>` impls exist: with a concrete backend
///   (`Context<'_, sqlx::Sqlite>`, or a type parameter of the impl block) the consumer runs on
///   that one; when no handler names one (no context, or a handler generic over
///   `<DB: Backend>`), it runs on any backend. All handlers must agree; one backend may be
///   written with or without its path (`Sqlite`, `sqlx::Sqlite`).
///
/// A message whose data does not decode or validate never reaches a handler: it fails
/// permanently with the `ValidationError` (every violation), and the consumer's failure
/// policy (stop, park the stream, skip with a record) applies at once.
///
/// # `#[consumer(...)]` keys
///
/// | key | | meaning |
/// |---|---|---|
/// | `category = "user"` | required | The category the consumer reads (`Consumer::category`). |
/// | `strict` | optional | A message type without a handler is a permanent failure (the failure policy applies) instead of being ignored. Same as `ConsumerOptions::strict_types(true)`. |
/// | `transactional` | optional | Every message is handled in a database transaction that also records it as processed and saves the position: `ctx.transaction()` is that transaction, so a handler's writes happen exactly once. Same as `ConsumerOptions::transactional(true)`. A handler whose body calls `ctx.transaction()` turns it on too; without any of these, `ctx.transaction()` returns an error. |
/// | `exhaustive = path` | optional | Every event type in the list at `path` (a `&[&str]` constant) must have a handler: with the events `eventodb-kit-codegen` generates, `exhaustive = events::categories::USER`. A type without a handler is a compile error naming it; a list that names none of the handled types is refused as another category's list. |
/// | `crate = "path"` | optional | The path of the eventodb-kit crate, for a renamed or re-exported dependency. |
///
/// A message type without a handler is ignored by default. To see it, mark one method
/// `#[consumer(fallback)]`: it takes the raw message instead of an event
/// (`async fn other(&self, message: &CategoryMessage, ...) -> Result<(), E>`) and gets every
/// type without a handler. `strict` and a fallback exclude each other.
///
/// A handler may carry `#[cfg(...)]`: when it is compiled out, nothing dispatches to it and
/// its event type need not exist (for `exhaustive`, its type then counts as unhandled), and
/// its context does not decide the backend: handlers without `#[cfg]` do, and when they run
/// on any backend, a backend named under `#[cfg]` applies only when that handler is compiled.
/// Handler event types are concrete types, not type parameters of the handler (for every
/// type, use a fallback). A consumer is `'static`: the impl block has no lifetime parameters.
///
/// # Compile errors
///
/// Mistakes are compile errors on the token that is wrong: a missing `category`, an unknown
/// key (the message lists the valid ones), a handler that is not `async`, does not take
/// `&self`, takes its event by reference or something that is not a context, takes too many
/// arguments or returns something other than `Result<(), E>`; an argument type that is not
/// an event; an event of another category; two handlers for one event type (written alike,
/// or two Rust types with the same `Event::TYPE`); a handler whose future is not `Send`
/// (rustc's "future cannot be sent between threads safely", at the handler's name, with the
/// value held across an `.await`); in exhaustive mode, the types without a handler. A
/// mistake leaves the impl block in place (with a stand-in `Consumer` impl), so it causes
/// no other errors. For example, an event of another category:
///
/// ```compile_fail,E0080
/// use eventodb_kit::consumer::HandlerError;
/// use eventodb_kit::{Event, consumer};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(category = "order", stream = "order-{order_id}")]
/// struct OrderPlaced { order_id: u64 }
///
/// struct Welcome;
///
/// #[consumer(category = "user")]
/// impl Welcome {
///     // error: `OrderPlaced` is an event of category `order`, but this consumer reads `user`
///     async fn placed(&self, event: OrderPlaced) -> Result<(), HandlerError> {
///         Ok(())
///     }
/// }
/// ```
///
/// The category and duplicate-type checks are `const` items that read `Event::CATEGORY` and
/// `Event::TYPE`, so they need the event types to be nameable outside the impl block: an
/// event type that uses a type parameter of the impl block (`impl<E: Event> Generic<E>`) is a
/// compile error at that type, like one that uses a type parameter of the handler.
#[proc_macro_attribute]
pub fn consumer(args: TokenStream, item: TokenStream) -> TokenStream {
    consumer::expand(args.into(), item.into()).into()
}
