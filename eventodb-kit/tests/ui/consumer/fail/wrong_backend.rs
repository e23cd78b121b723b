use eventodb_kit::consumer::{ConsumerOptions, Context, HandlerError};
use eventodb_kit::{Event, Kit, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

/// Its handler takes a PostgreSQL context: it consumes on a PostgreSQL kit only.
struct PgOnly;

#[consumer(category = "user")]
impl PgOnly {
    async fn created(
        &self,
        _event: UserCreated,
        _ctx: &mut Context<'_, sqlx::Postgres>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn register(kit: &Kit<sqlx::Sqlite>) {
    let _ = kit.workers().consumer(PgOnly, ConsumerOptions::new("pg-only"));
}

fn main() {}
