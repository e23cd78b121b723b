//! Two handlers of one type, both under a `#[cfg]` that holds: the macro leaves handlers
//! under `#[cfg]` to the compile-time check (they may be alternatives), which refuses them.
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    #[cfg(all())]
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(not(any()))]
    async fn created_again(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
