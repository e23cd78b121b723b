//! A handler under a `#[cfg]` that holds names PostgreSQL: the consumer runs on PostgreSQL
//! only, though its other handlers run on any backend.
use eventodb_kit::consumer::{Consumer, Context, HandlerError};
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserDeleted {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(all())]
    async fn deleted(
        &self,
        _event: UserDeleted,
        _ctx: &mut Context<'_, sqlx::Postgres>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
}
