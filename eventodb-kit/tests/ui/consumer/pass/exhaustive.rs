//! `exhaustive` with the per-category list the codegen emits (`categories::USER`).

use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

/// What `eventodb-kit-codegen` generates beside the events.
mod categories {
    pub const USER: &[&str] = &["UserCreated", "UserDeleted"];
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserDeleted {
    user_id: u64,
}

struct Users;

#[consumer(category = "user", exhaustive = categories::USER)]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
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
