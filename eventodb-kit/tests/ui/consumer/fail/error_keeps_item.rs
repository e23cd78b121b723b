//! One mistake (a misspelt key) is one error: the impl block is still there (so `Users::new`
//! resolves) and so is a `Consumer` impl (so the workers accept `Users`).

use eventodb_kit::consumer::{ConsumerOptions, HandlerError};
use eventodb_kit::{Event, Kit, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Users {
    greeting: String,
}

#[consumer(category = "user", stirct)]
impl Users {
    fn new() -> Self {
        Users {
            greeting: "hi".into(),
        }
    }

    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        println!("{} {}", self.greeting, event.user_id);
        Ok(())
    }
}

fn run(kit: &Kit<sqlx::Sqlite>) {
    let _ = kit
        .workers()
        .consumer(Users::new(), ConsumerOptions::new("users"));
}

fn main() {
    let _ = run;
}
