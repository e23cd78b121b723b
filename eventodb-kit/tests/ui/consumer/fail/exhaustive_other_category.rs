use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

#[allow(dead_code)]
mod categories {
    pub const USER: &[&str] = &["UserCreated", "UserDeleted"];
    pub const ORDER: &[&str] = &["OrderCancelled", "OrderPlaced"];
}

struct Users;

#[consumer(category = "user", exhaustive = categories::ORDER)]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}
fn main() {}
