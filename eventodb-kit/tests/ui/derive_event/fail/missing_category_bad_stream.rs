use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(stream = 5)]
struct UserCreated {
    user_id: u64,
}

fn main() {}
