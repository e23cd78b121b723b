use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Users<'a> {
    prefix: &'a str,
}

#[consumer(category = "user")]
impl<'a> Users<'a> {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        let _ = self.prefix;
        Ok(())
    }
}

fn main() {}
