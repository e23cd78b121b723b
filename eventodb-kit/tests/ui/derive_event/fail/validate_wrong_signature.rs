use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}", validate = "check")]
struct UserCreated {
    user_id: u64,
}

fn check(event: &UserCreated) -> bool {
    event.user_id > 0
}

fn main() {}
