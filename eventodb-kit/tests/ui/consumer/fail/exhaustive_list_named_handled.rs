//! The list is named `HANDLED`, like a constant inside the macro's check: the path once
//! resolved to that constant (the handled types), and the missing handlers compiled.
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

const HANDLED: &[&str] = &["UserCreated", "UserDeleted", "UserRenamed"];

struct Users;

#[consumer(category = "user", exhaustive = HANDLED)]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
