use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user-account", stream = "user-account-{user_id}")]
struct UserCreated {
    user_id: u64,
}

fn main() {}
