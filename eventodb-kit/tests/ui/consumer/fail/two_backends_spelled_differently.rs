use eventodb_kit::consumer::{Context, HandlerError};
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
        _ctx: &mut Context<'_, sqlx::Postgres>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}
fn main() {}
