use std::rc::Rc;

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
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        // Not `Send`, and alive across the `.await`: the consumer runs on a thread pool.
        let seen = Rc::new(event.user_id);
        std::future::ready(()).await;
        assert!(*seen > 0);
        Ok(())
    }
}
fn main() {}
