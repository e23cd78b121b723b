use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{0}")]
struct UserCreated(u64);

fn main() {}
