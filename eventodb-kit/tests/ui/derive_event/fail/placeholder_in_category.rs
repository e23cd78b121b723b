use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "{kind}-{user_id}")]
struct UserCreated {
    kind: String,
    user_id: u64,
}

fn main() {}
