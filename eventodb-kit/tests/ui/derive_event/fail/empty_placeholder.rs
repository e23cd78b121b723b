use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{}")]
struct UserCreated {
    user_id: u64,
}

fn main() {}
