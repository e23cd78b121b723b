use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "us er", stream = "us er-{user_id}")]
struct UserCreated {
    user_id: u64,
}

fn main() {}
