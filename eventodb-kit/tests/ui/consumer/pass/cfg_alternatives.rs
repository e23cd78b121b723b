//! Two handlers of one event type under exclusive `#[cfg]`s (one per configuration): they
//! were once refused as a duplicate because they are written alike.
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

mod categories {
    pub const USER: &[&str] = &["UserCreated"];
}

struct Users;

#[consumer(category = "user", exhaustive = categories::USER)]
impl Users {
    #[cfg(debug_assertions)]
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(not(debug_assertions))]
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
}
