//! A consumer written by a `macro_rules!` macro: the category as `$x:expr` or `$x:literal`
//! (an invisible group, once refused as "not a string literal"), the handler's name as
//! `$name:ident` (the call once wrote `self` and the context at the name's span, so rustc
//! looked them up in the macro's hygiene context: E0424, E0425), and the event, context and
//! return types as `$x:ty` (the context was once not recognised inside its group).
use eventodb_kit::consumer::{Context, HandlerError};
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

macro_rules! expr_category {
    ($ty:ident, $category:expr) => {
        struct $ty;

        #[consumer(category = $category)]
        impl $ty {
            async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
                Ok(())
            }
        }
    };
}

macro_rules! literal_category {
    ($ty:ident, $category:literal) => {
        struct $ty;

        #[consumer(category = $category)]
        impl $ty {
            async fn created(&self, _event: UserCreated) -> Result<(), HandlerError> {
                Ok(())
            }
        }
    };
}

macro_rules! named_handlers {
    ($ty:ident, $with_ctx:ident, $without_ctx:ident) => {
        struct $ty;

        #[consumer(category = "user")]
        impl $ty {
            async fn $with_ctx(
                &self,
                _event: UserCreated,
                _ctx: &mut Context<'_, sqlx::Sqlite>,
            ) -> Result<(), HandlerError> {
                Ok(())
            }

            async fn $without_ctx(&self, _event: UserDeleted) -> Result<(), HandlerError> {
                Ok(())
            }
        }
    };
}

macro_rules! typed_handlers {
    ($ty:ident, $event:ty, $ctx:ty, $output:ty) => {
        struct $ty;

        #[consumer(category = "user")]
        impl $ty {
            async fn created(&self, _event: $event, _ctx: $ctx) -> $output {
                Ok(())
            }
        }
    };
}

expr_category!(ByExpr, "user");
literal_category!(ByLiteral, "user");
named_handlers!(Named, created, deleted);
typed_handlers!(
    Typed,
    UserCreated,
    &mut Context<'_, sqlx::Sqlite>,
    Result<(), HandlerError>
);

fn is_consumer<C: eventodb_kit::consumer::Consumer<sqlx::Sqlite>>(_: C) {}

fn main() {
    is_consumer(ByExpr);
    is_consumer(ByLiteral);
    is_consumer(Named);
    is_consumer(Typed);
}
