use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(a::b = "x", category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

fn main() {}
