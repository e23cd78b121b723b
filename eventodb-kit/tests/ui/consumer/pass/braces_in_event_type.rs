//! An event type written with braces (`UserV<{ 1 + 1 }>`): the duplicate check once passed
//! its message, which quotes the type, to `panic!` as a format string (an error about `{`).
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}", type = "UserV")]
struct UserV<const N: usize> {
    user_id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserDeleted {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn versioned(&self, _event: UserV<{ 1 + 1 }>) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn deleted(&self, _event: UserDeleted) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
}
