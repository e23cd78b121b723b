//! Two handlers with one name: rustc's E0592 is the one error; the macro once added errors
//! of its own internals (E0428, E0308).
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

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

#[consumer(category = "user")]
impl Users {
    async fn handle(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn handle(&self, _event: UserDeleted) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
