use eventodb_kit::consumer::{Context, HandlerError};
use eventodb_kit::{Backend, Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created<DB: Backend>(
        &self,
        _event: UserCreated,
        _ctx: &mut Context<'_, DB>,
        _retries: u32,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}
fn main() {}
