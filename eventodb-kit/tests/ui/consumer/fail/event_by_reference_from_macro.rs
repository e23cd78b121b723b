//! `&UserCreated` passed as `$event:ty` arrives in an invisible group: it once escaped the
//! "by value" check.
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

macro_rules! users {
    ($event:ty) => {
        struct Users;

        #[consumer(category = "user")]
        impl Users {
            async fn created(&self, _event: $event) -> Result<(), HandlerError> {
                Ok(())
            }
        }
    };
}

users!(&UserCreated);

fn main() {}
