//! `#[cfg]` on handlers whose contexts name a backend: a handler compiled out once still
//! decided the consumer's backend, so a consumer whose compiled handlers run on any backend
//! was a consumer for PostgreSQL only. Handlers without `#[cfg]` decide; a backend named
//! only under a `#[cfg]` applies when that handler is compiled in.
use eventodb_kit::consumer::{Consumer, Context, HandlerError};
use eventodb_kit::{Backend, Event, consumer};
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

/// Any backend: the PostgreSQL handler is compiled out (think `#[cfg(feature = "postgres")]`
/// with the feature off).
struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(any())]
    async fn deleted(
        &self,
        _event: UserDeleted,
        _ctx: &mut Context<'_, sqlx::Postgres>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// SQLite, decided by the handler without `#[cfg]`.
struct Audit;

#[consumer(category = "user")]
impl Audit {
    async fn created(
        &self,
        _event: UserCreated,
        _ctx: &mut Context<'_, sqlx::Sqlite>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(any())]
    async fn deleted(
        &self,
        _event: UserDeleted,
        _ctx: &mut Context<'_, sqlx::Postgres>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// One backend per configuration: SQLite here, as the PostgreSQL handler is compiled out.
struct Either;

#[consumer(category = "user")]
impl Either {
    #[cfg(all())]
    async fn created(
        &self,
        _event: UserCreated,
        _ctx: &mut Context<'_, sqlx::Sqlite>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    #[cfg(not(all()))]
    async fn created(
        &self,
        _event: UserCreated,
        _ctx: &mut Context<'_, sqlx::Postgres>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn deleted<DB: Backend>(
        &self,
        _event: UserDeleted,
        _ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn is_consumer<DB: Backend, C: Consumer<DB>>(_: C) {}

fn main() {
    is_consumer::<sqlx::Sqlite, _>(Users);
    is_consumer::<sqlx::Postgres, _>(Users);
    is_consumer::<sqlx::Sqlite, _>(Audit);
    is_consumer::<sqlx::Sqlite, _>(Either);
}
