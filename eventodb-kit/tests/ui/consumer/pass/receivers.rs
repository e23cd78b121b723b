//! Receivers that are `&self` written otherwise: `self: &Self` was once refused with "a
//! handler takes `&self`".
use eventodb_kit::consumer::HandlerError;
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

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserRenamed {
    user_id: u64,
}

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn created(self: &Self, _event: UserCreated) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn deleted<'a>(self: &'a Self, _event: UserDeleted) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn renamed<'a>(
        &'a self,
        UserRenamed { user_id }: UserRenamed,
    ) -> Result<(), HandlerError> {
        let _ = user_id;
        Ok(())
    }
}

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(Users);
}
