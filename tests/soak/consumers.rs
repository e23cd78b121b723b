//! The two consumers: `effects`, a 3-member group with a transactional handler that inserts
//! one effect row per event, and `audit`, a plain handler that records what it saw. Both fail
//! about 1% of events on their first try (the effects handler after inserting its row, which
//! the rollback must take back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventodb_kit::client::CategoryMessage;
use eventodb_kit::consumer::{
    BoxFuture, Consumer, ConsumerOptions, Context, Handled, HandlerError, RetryPolicy,
};
use sqlx::Postgres;
use uuid::Uuid;

use crate::writers::CATEGORY;

/// Members of the `effects` group.
pub(crate) const GROUP: i64 = 3;

/// The UUID of an event the soak's writers wrote (they write nothing else).
fn written(message: &CategoryMessage) -> Uuid {
    message
        .id
        .as_uuid()
        .unwrap_or_else(|| panic!("{} was not written by the soak", message.id))
}

/// Whether the handler fails this event on its first try.
fn fails_first_try(id: Uuid, salt: u128) -> bool {
    (id.as_u128() ^ salt) % 97 == 0
}

fn retry() -> RetryPolicy {
    RetryPolicy::new(8, Duration::from_millis(5), Duration::from_millis(200))
}

/// The transactional handler of the group.
pub(crate) struct Effects {
    pub(crate) member: i64,
}

impl Consumer<Postgres> for Effects {
    fn category(&self) -> &str {
        CATEGORY
    }

    fn transactional(&self) -> bool {
        true
    }

    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        ctx: &'a mut Context<'_, Postgres>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            let id = written(message);
            sqlx::query("INSERT INTO soak_effects (event_id, stream, member) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(&message.stream_name)
                .bind(i32::try_from(self.member).expect("member"))
                .execute(ctx.transaction()?)
                .await?;
            if ctx.attempt() == 1 && fails_first_try(id, 0) {
                return Err(HandlerError::new(format!(
                    "injected failure after the effect of {}",
                    message.id
                )));
            }
            Ok(Handled::Done)
        })
    }
}

/// Options of group member `member`.
pub(crate) fn effects_options(member: i64) -> ConsumerOptions {
    ConsumerOptions::new("effects")
        .group(member, GROUP)
        .transactional(true)
        .batch_size(100)
        .poll_interval(Duration::from_millis(300))
        // An aborted unit's members are taken over by the next unit after this.
        .takeover_after(Duration::from_millis(1500))
        .read_retry_max(Duration::from_millis(500))
        .retry(retry())
}

/// What the plain consumer saw: times each event id was handled, and the (stream, position)
/// of each first sighting in handling order.
#[derive(Clone, Default)]
pub(crate) struct Seen(pub(crate) Arc<Mutex<HashMap<Uuid, u32>>>);

/// The plain handler: records, fails about 1% of events once.
pub(crate) fn audit(seen: &Seen) -> impl Consumer<Postgres> + use<> {
    let seen = seen.clone();
    let tries = Arc::new(Mutex::new(HashMap::<Uuid, u32>::new()));
    eventodb_kit::consumer::consumer_fn(CATEGORY, move |message: CategoryMessage| {
        let seen = seen.clone();
        let tries = tries.clone();
        async move {
            let id = written(&message);
            let first = {
                let mut tries = tries.lock().unwrap();
                let n = tries.entry(id).or_insert(0);
                *n += 1;
                *n == 1
            };
            if first && fails_first_try(id, 0x5a5a) {
                return Err(HandlerError::new(format!(
                    "injected failure of {}",
                    message.id
                )));
            }
            *seen.0.lock().unwrap().entry(id).or_insert(0) += 1;
            Ok(Handled::Done)
        }
    })
}

/// Options of the plain consumer.
pub(crate) fn audit_options() -> ConsumerOptions {
    ConsumerOptions::new("audit")
        .batch_size(200)
        .position_update_interval(50)
        .poll_interval(Duration::from_millis(300))
        // An aborted unit's members are taken over by the next unit after this.
        .takeover_after(Duration::from_millis(1500))
        .read_retry_max(Duration::from_millis(500))
        .retry(retry())
}
