use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{1x}")]
struct UserCreated {
    user_id: u64,
}

fn main() {}
