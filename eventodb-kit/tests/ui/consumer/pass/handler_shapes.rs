//! Every handler shape: with and without a context, generic over the backend, a handler
//! generic over the backend itself, other error types; constructors and consts stay.

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

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserRenamed {
    user_id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserBlocked {
    user_id: u64,
}

mod events {
    #[derive(serde::Serialize, serde::Deserialize, eventodb_kit::Event)]
    #[event(category = "user", stream = "user-{user_id}")]
    pub struct UserMerged {
        pub user_id: u64,
    }
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

impl std::error::Error for Failure {}

struct Users {
    greeting: String,
}

#[consumer(category = "user")]
impl Users {
    const NAME: &'static str = "users";

    fn new() -> Self {
        Users {
            greeting: "hi".into(),
        }
    }

    /// Without a context.
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        assert!(!self.greeting.is_empty() && event.user_id < u64::MAX);
        Ok(())
    }

    /// With a context, generic over the backend.
    async fn deleted<DB: Backend>(
        &self,
        _event: UserDeleted,
        ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        let _ = ctx.attempt();
        Ok(())
    }

    /// Any error that converts into `HandlerError`.
    async fn renamed(&self, _: UserRenamed) -> Result<(), Failure> {
        Err(Failure)
    }

    async fn blocked(&self, _: UserBlocked) -> Result<(), std::io::Error> {
        Ok(())
    }

    /// A path to the event type.
    async fn merged(&self, _event: events::UserMerged) -> ::core::result::Result<(), HandlerError> {
        Ok(())
    }
}

fn runs_on<DB: Backend, C: Consumer<DB>>(consumer: &C) -> &str {
    consumer.category()
}

fn main() {
    let users = Users::new();
    assert_eq!(Users::NAME, "users");
    assert_eq!(runs_on::<sqlx::Sqlite, _>(&users), "user");
    assert_eq!(runs_on::<sqlx::Postgres, _>(&users), "user");
    assert!(!Consumer::<sqlx::Sqlite>::transactional(&users));
}
