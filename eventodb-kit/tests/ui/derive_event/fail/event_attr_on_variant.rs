use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "UserChanged", category = "user", stream = "user-{user_id}")]
enum UserChanged {
    #[event(type = "UserCreated")]
    Created {
        user_id: u64,
    },
    Deleted {
        user_id: u64,
    },
}

fn main() {}
