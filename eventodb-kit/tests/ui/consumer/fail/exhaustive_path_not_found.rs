use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

mod categories {
    pub const USER: &[&str] = &["UserCreated", "UserDeleted", "UserEmailChanged"];
}

struct Users;

#[consumer(category = "user", exhaustive = categories::USERS)]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}
fn main() {}
