//! What happens to types without a handler: a fallback gets the raw message, `strict`
//! rejects them, by default they are ignored.

use eventodb_kit::client::CategoryMessage;
use eventodb_kit::consumer::{Context, HandlerError};
use eventodb_kit::{Backend, Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct WithFallback;

#[consumer(category = "user")]
impl WithFallback {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    #[consumer(fallback)]
    async fn other<DB: Backend>(
        &self,
        message: &CategoryMessage,
        _ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        println!("{}", message.message_type);
        Ok(())
    }
}

struct OnlyFallback;

#[eventodb_kit::consumer(category = "user")]
impl OnlyFallback {
    #[eventodb_kit::consumer(fallback)]
    async fn any(&self, _message: &CategoryMessage) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct Strict;

#[consumer(category = "user", strict)]
impl Strict {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Postgres>>(_: C) {}

fn main() {
    is_consumer(WithFallback);
    is_consumer(OnlyFallback);
    is_consumer(Strict);
}
