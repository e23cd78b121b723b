//! `#[cfg]` on handlers: a handler compiled out is not dispatched to, and its event type (which
//! may not exist then) is not named by the checks; `exhaustive` counts only compiled handlers.

use eventodb_kit::client::CategoryMessage;
use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

mod categories {
    pub const USER: &[&str] = &["UserCreated"];
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Users;

#[consumer(category = "user", exhaustive = categories::USER)]
impl Users {
    #[cfg(all())]
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    /// `any()` is always false: this handler and `NotCompiled` do not exist.
    #[cfg(any())]
    async fn not_compiled(&self, _event: NotCompiled) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct Audit;

#[consumer(category = "user")]
impl Audit {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(any())]
    #[consumer(fallback)]
    async fn other(&self, _message: &CategoryMessage) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct Log;

#[consumer(category = "user")]
impl Log {
    #[cfg(all())]
    #[consumer(fallback)]
    async fn any(&self, _message: &CategoryMessage) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
    is_consumer(Audit);
    is_consumer(Log);
}
