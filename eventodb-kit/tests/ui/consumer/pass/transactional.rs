//! A consumer for one backend (the context names it) whose handlers write in the
//! transaction the position commits in.

use eventodb_kit::consumer::{Consumer, Context, HandlerError};
use eventodb_kit::{Event, consumer};
use serde::{Deserialize, Serialize};
use sqlx::Sqlite;

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserDeleted {
    user_id: i64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: i64,
}

struct Profiles;

#[consumer(category = "user", transactional)]
impl Profiles {
    async fn deleted(
        &self,
        event: UserDeleted,
        ctx: &mut Context<'_, Sqlite>,
    ) -> Result<(), HandlerError> {
        sqlx::query("DELETE FROM profiles WHERE id = ?1")
            .bind(event.user_id)
            .execute(ctx.transaction()?)
            .await?;
        Ok(())
    }

    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    assert!(Consumer::<Sqlite>::transactional(&Profiles));
    assert_eq!(Consumer::<Sqlite>::category(&Profiles), "user");
}
