use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "UserChanged", category = "user", stream = "user-{usr_id}")]
enum UserChanged {
    Created { user_id: u64, email: String },
    Deleted { user_id: u64 },
}

fn main() {}
