//! One mistake in `#[event]` is one error: a stand-in `Event` impl keeps the type usable, so
//! a consumer handling it and code calling it raise nothing more.

use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}", colour = "red")]
struct UserCreated {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        println!("{} {}", UserCreated::TYPE, event.stream_name());
        Ok(())
    }
}

fn main() {}
