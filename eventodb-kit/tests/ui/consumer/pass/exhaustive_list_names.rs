//! `exhaustive = NAME` where `NAME` is also the name of a constant inside the macro's check
//! (`MESSAGE`, as eventodb-kit-codegen names the list of a category `message`; `EXPECTED`):
//! the path once resolved to the check's own constant (E0391, a cycle).
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "message", stream = "message-{id}")]
struct MessageSent {
    id: u64,
}

mod categories {
    pub const MESSAGE: &[&str] = &["MessageSent"];
}

use categories::MESSAGE;

const EXPECTED: &[&str] = &["MessageSent"];

struct Chat;

#[consumer(category = "message", exhaustive = MESSAGE)]
impl Chat {
    async fn sent(&self, _event: MessageSent) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct Audit;

#[consumer(category = "message", exhaustive = EXPECTED)]
impl Audit {
    async fn sent(&self, _event: MessageSent) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Chat);
    is_consumer(Audit);
}
