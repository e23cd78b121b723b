//! Handlers whose names join alike: `a` + `b_and_c` and `a_and_b` + `c` once made two compile-time
//! checks named `a_and_b_and_c_get_different_event_types` (E0428).

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
struct UserRenamed {
    user_id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserMoved {
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
    async fn a(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn b_and_c(&self, _event: UserRenamed) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn a_and_b(&self, _event: UserMoved) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn c(&self, _event: UserDeleted) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
}
