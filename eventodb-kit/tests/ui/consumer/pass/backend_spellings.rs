//! One backend spelled two ways (imported, and by its path) in two handlers' contexts is one
//! backend: the consumer runs on it.

use eventodb_kit::consumer::{Consumer, Context, HandlerError};
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};
use sqlx::Sqlite;

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
    async fn created(
        &self,
        _event: UserCreated,
        _ctx: &mut Context<'_, Sqlite>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn deleted(
        &self,
        _event: UserDeleted,
        _ctx: &mut Context<'_, ::sqlx::Sqlite>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<C: Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
}
