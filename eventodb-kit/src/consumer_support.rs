//! What the code `#[consumer]` generates calls: decoding with the failure policy's error,
//! the handler-result conversion, and `const fn`s for its compile-time checks.
//!
//! Not a public API (reached through `__private`); anything here may change in any release.

use std::future::Future;

pub use crate::client::CategoryMessage as Message;
pub use crate::consumer::HandlerError;
pub use crate::event::{Event, ValidationError};
use crate::registry::DecodeError;

pub use crate::Backend;
pub use crate::consumer::{BoxFuture, Consumer, Context, Handled};
pub use std::boxed::Box;

/// The result of `E::decode` for a message, its error made a permanent [`HandlerError`]:
/// the consumer's failure policy applies at once, as retrying cannot fix the data. The
/// error is the [`ValidationError`] itself, so the parked or skipped record lists every
/// violation (the record has the message type beside it).
///
/// # Errors
/// When the data did not deserialize into the event or broke one of its rules.
#[inline]
pub fn decoded<E>(result: Result<E, ValidationError>) -> Result<E, HandlerError> {
    result.map_err(HandlerError::permanent)
}

/// The error of a strict consumer for a message type it has no handler for (permanent).
pub fn unknown_type(message: &Message) -> HandlerError {
    HandlerError::permanent(DecodeError::UnknownType {
        event_type: message.message_type.clone(),
    })
}

/// What a handler may return: `Result<(), E>` where `E` converts into [`HandlerError`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not what a `#[consumer]` handler returns",
    label = "return `Result<(), HandlerError>` here",
    note = "a handler returns `Result<(), E>` where `E` is `HandlerError` or converts into it (any `std::error::Error + Send + Sync + 'static` does)"
)]
pub trait HandlerResult {
    /// The result with the error converted.
    ///
    /// # Errors
    /// The handler's error, converted.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl<E: Into<HandlerError>> HandlerResult for Result<(), E> {
    #[inline]
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// Converts a handler's output; the macro names `R`, spanned at the declared return type, so
/// a wrong one is reported there.
///
/// # Errors
/// The handler's error, converted.
#[inline]
pub fn handler_result<R: HandlerResult>(result: R) -> Result<(), HandlerError> {
    result.into_handler_result()
}

/// Requires a handler's future to be `Send` (the runtime runs consumers on a multi-threaded
/// runtime); the macro spans the call at the handler's name, so rustc's "future cannot be
/// sent between threads safely" points there and names this function's bound.
///
/// It returns the future boxed, as a type that is `Send` whatever `F` is: when `F` is not,
/// the one error is this bound's, and the `Consumer::handle` future around the call (which
/// must be `Send` too) raises no second one at the `#[consumer]` attribute.
#[inline]
pub fn handler_future_must_be_send<'a, F>(future: F) -> BoxFuture<'a, F::Output>
where
    F: Future + Send + 'a,
{
    Box::pin(future)
}

/// `left == right`, in a `const` context.
pub const fn str_eq(left: &str, right: &str) -> bool {
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

/// Whether `list` contains `item`, in a `const` context.
const fn contains(list: &[&str], item: &str) -> bool {
    let mut index = 0;
    while index < list.len() {
        if str_eq(list[index], item) {
            return true;
        }
        index += 1;
    }
    false
}

/// The length of `parts` joined, for [`concat`]'s array size.
pub const fn concat_len(parts: &[&str]) -> usize {
    let mut len = 0;
    let mut index = 0;
    while index < parts.len() {
        len += parts[index].len();
        index += 1;
    }
    len
}

/// `parts` joined into an array of `N` bytes (`N` from [`concat_len`]): how the checks build
/// a panic message naming values only known at compile time (`E::CATEGORY`).
pub const fn concat<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut index = 0;
    while index < parts.len() {
        let bytes = parts[index].as_bytes();
        let mut byte = 0;
        while byte < bytes.len() && at < N {
            out[at] = bytes[byte];
            at += 1;
            byte += 1;
        }
        index += 1;
    }
    out
}

/// The bytes [`concat`] built, as a `str` (they are joined `str`s, so always UTF-8).
pub const fn as_str(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => "",
    }
}

/// The entries of `expected` missing from `handled`, joined as `` `A`, `B` `` (empty when
/// none is missing), written into `N` bytes (`N` from [`missing_len`]).
pub const fn missing<const N: usize>(expected: &[&str], handled: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut index = 0;
    while index < expected.len() {
        if !contains(handled, expected[index]) {
            let parts: [&str; 3] = [if at == 0 { "`" } else { ", `" }, expected[index], "`"];
            let mut part = 0;
            while part < parts.len() {
                let bytes = parts[part].as_bytes();
                let mut byte = 0;
                while byte < bytes.len() && at < N {
                    out[at] = bytes[byte];
                    at += 1;
                    byte += 1;
                }
                part += 1;
            }
        }
        index += 1;
    }
    out
}

/// The length of [`missing`]'s text.
pub const fn missing_len(expected: &[&str], handled: &[&str]) -> usize {
    let mut len = 0;
    let mut index = 0;
    while index < expected.len() {
        if !contains(handled, expected[index]) {
            len += expected[index].len() + if len == 0 { 2 } else { 4 };
        }
        index += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_joins_at_compile_time() {
        const PARTS: &[&str] = &["a `", "user", "` b"];
        const BYTES: [u8; concat_len(PARTS)] = concat(PARTS);
        assert_eq!(as_str(&BYTES), "a `user` b");
    }

    #[test]
    fn missing_lists_every_unhandled_type() {
        const ALL: &[&str] = &["A", "B", "C", "D"];
        const HANDLED: &[&str] = &["B"];
        const LEN: usize = missing_len(ALL, HANDLED);
        const TEXT: [u8; LEN] = missing(ALL, HANDLED);
        assert_eq!(as_str(&TEXT), "`A`, `C`, `D`");
        assert_eq!(missing_len(ALL, ALL), 0);
    }

    #[test]
    fn str_eq_compares_bytes() {
        assert!(str_eq("user", "user"));
        assert!(!str_eq("user", "users"));
        assert!(!str_eq("user", "uses"));
    }
}
