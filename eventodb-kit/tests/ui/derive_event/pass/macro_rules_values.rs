//! `#[event(...)]` values passed through `macro_rules!` fragments (`$x:expr`, `$x:literal`)
//! arrive in invisible groups: they once were refused as "not a string literal", and a
//! `validate` function named by a fragment was called through a local of another hygiene
//! context (E0425). A parenthesized value is read like the literal inside.
use eventodb_kit::{Event, ValidationError};
use serde::{Deserialize, Serialize};

macro_rules! expr_event {
    ($name:ident, $category:expr, $stream:expr, $validate:expr) => {
        #[derive(Serialize, Deserialize, Event)]
        #[event(category = $category, stream = $stream, validate = $validate)]
        struct $name {
            user_id: u64,
        }
    };
}

macro_rules! literal_event {
    ($name:ident, $category:literal, $stream:literal, $validate:literal) => {
        #[derive(Serialize, Deserialize, Event)]
        #[event(category = $category, stream = $stream, validate = $validate)]
        struct $name {
            user_id: u64,
        }
    };
}

macro_rules! tt_event {
    ($name:ident, $category:tt, $stream:tt) => {
        #[derive(Serialize, Deserialize, Event)]
        #[event(category = $category, stream = $stream, validate = "Self::check")]
        struct $name {
            user_id: u64,
        }

        impl $name {
            fn check(&self) -> Result<(), ValidationError> {
                Ok(())
            }
        }
    };
}

fn accept<E>(_: &E) -> Result<(), ValidationError> {
    Ok(())
}

expr_event!(UserCreated, "user", ("user-{user_id}"), "accept");
literal_event!(UserDeleted, "user", "user-{user_id}", "accept");
tt_event!(UserRenamed, "user", "user-{user_id}");

fn main() {
    assert_eq!(UserCreated::CATEGORY, "user");
    assert_eq!(UserCreated { user_id: 1 }.stream_name(), "user-1");
    assert!(UserCreated { user_id: 1 }.validate().is_ok());
    assert_eq!(UserDeleted { user_id: 2 }.stream_name(), "user-2");
    assert!(UserDeleted { user_id: 2 }.validate().is_ok());
    assert!(UserRenamed { user_id: 3 }.validate().is_ok());
}
