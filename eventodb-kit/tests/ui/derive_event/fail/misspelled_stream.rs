use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

// One error, on the typo: not also "needs `stream`".
#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", straem = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

fn main() {}
