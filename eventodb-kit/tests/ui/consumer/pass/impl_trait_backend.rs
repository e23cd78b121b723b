//! `ctx: &mut Context<'_, impl Backend>` is generic like `<DB: Backend>`: it was once taken
//! for a concrete backend and pasted into `impl Consumer<impl Backend>` (E0562).
use eventodb_kit::consumer::{Context, HandlerError};
use eventodb_kit::{Backend, Event, consumer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created(
        &self,
        _event: UserCreated,
        ctx: &mut Context<'_, impl Backend>,
    ) -> Result<(), HandlerError> {
        let _ = ctx.attempt();
        Ok(())
    }
}

fn is_consumer<DB: Backend, C: eventodb_kit::consumer::Consumer<DB>>(_: C) {}

fn main() {
    is_consumer::<sqlx::Sqlite, _>(Users);
    is_consumer::<sqlx::Postgres, _>(Users);
}
