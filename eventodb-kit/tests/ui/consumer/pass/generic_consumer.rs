//! Generic consumer types: over the backend (named by the contexts), over other parameters,
//! and with `crate = "..."` for a renamed dependency.

use std::marker::PhantomData;

use eventodb_kit::consumer::{Consumer, Context, HandlerError};
use eventodb_kit::{Backend, Event, consumer};
use serde::{Deserialize, Serialize};

extern crate eventodb_kit as kit;

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
}

struct Projector<DB> {
    db: PhantomData<fn() -> DB>,
}

#[consumer(category = "user")]
impl<DB: Backend> Projector<DB> {
    async fn created(
        &self,
        _event: UserCreated,
        ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        let _ = ctx.consumer();
        Ok(())
    }
}

struct Labelled<T> {
    label: T,
}

#[consumer(category = "user", crate = "kit")]
impl<T> Labelled<T>
where
    T: AsRef<str> + Send + Sync + 'static,
{
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        assert!(!self.label.as_ref().is_empty());
        Ok(())
    }
}

fn is_consumer<DB: Backend, C: Consumer<DB>>(_: C) {}

fn main() {
    is_consumer::<sqlx::Sqlite, _>(Projector::<sqlx::Sqlite> { db: PhantomData });
    is_consumer::<sqlx::Postgres, _>(Labelled { label: "x" });
}
