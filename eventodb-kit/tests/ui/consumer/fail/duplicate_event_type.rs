use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

mod v2 {
    /// The same message type as `UserCreated`, under another Rust name.
    #[derive(serde::Serialize, serde::Deserialize, eventodb_kit::Event)]
    #[event(type = "UserCreated", category = "user", stream = "user-{user_id}")]
    pub struct UserCreatedV2 {
        pub user_id: u64,
    }
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn created_v2(&self, _event: v2::UserCreatedV2) -> Result<(), HandlerError> {
        Ok(())
    }
}
fn main() {}
