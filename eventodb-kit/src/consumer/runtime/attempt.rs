//! Handling one message: its tries, with or without a transaction of its own, and what
//! becomes of it.

use std::any::Any;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;

use crate::client::CategoryMessage;
use crate::consumer::backoff;
use crate::consumer::handler::{Consumer, Context, Handled, HandlerError};
use crate::error::{Error, Result};
use crate::outbox::Backend;

use super::{Outcome, Runtime, db, processed_row};

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// Whether a handler's result is kept (committed and recorded as processed).
    pub(super) fn keeps(&self, result: &Result<Handled, HandlerError>) -> bool {
        match result {
            Ok(Handled::Done) => true,
            Ok(Handled::Unknown) => !self.options.strict_types,
            Err(_) => false,
        }
    }

    /// One message on its own: skipped when already processed, held back behind a parked
    /// stream, or tried (one transaction per try for a transactional consumer) with the
    /// failure policy after the last try. `false` when cancelled before it was handled.
    pub(super) async fn handle_one(
        &mut self,
        message: &CategoryMessage,
        processed: &HashSet<String>,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        // Processed first: a message handled already (by another member, or before a
        // resize moved the position back) is not held back behind its parked stream, which
        // would hand it to the handler again on release.
        if processed.contains(message.id.as_str()) {
            tracing::debug!(consumer = %self.key.consumer, id = %message.id, "already processed");
            self.advance(message.global_position);
            return Ok(true);
        }
        if self.held.contains_key(&message.stream_name) {
            if !self.hold_behind(message, cancel).await? {
                return Ok(false);
            }
            self.advance(message.global_position);
            return Ok(true);
        }
        let outcome = crate::trace_context::around_event(
            message,
            self.attempts(message, false, cancel, None),
        )
        .await?;
        self.settle(message, outcome, cancel).await
    }

    /// Records what became of a message tried on its own and moves past it. `false` when
    /// it was interrupted (the position stays before it).
    pub(super) async fn settle(
        &mut self,
        message: &CategoryMessage,
        outcome: Outcome,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        match outcome {
            Outcome::Handled => {
                self.metrics.handled();
                if !self.transactional {
                    self.pending.push(processed_row(message));
                }
            }
            Outcome::Interrupted => return Ok(false),
            Outcome::Failed { error, attempts } => {
                self.metrics.failed();
                if !self.apply_policy(message, error, attempts, cancel).await? {
                    return Ok(false);
                }
            }
        }
        self.advance(message.global_position);
        if self.since_save >= self.options.position_update_interval {
            self.save_soon(cancel, true).await?;
        }
        self.heartbeat_if_due().await?;
        Ok(true)
    }

    /// Tries a message until it is handled, fails for good, or the consumer is cancelled.
    /// Database trouble is retried without counting as a try.
    /// `first` is the result of a first try made elsewhere (in a shared transaction, rolled
    /// back): the tries go on from the second.
    pub(super) async fn attempts(
        &self,
        message: &CategoryMessage,
        replay: bool,
        cancel: &CancellationToken,
        mut first: Option<Result<Handled, HandlerError>>,
    ) -> Result<Outcome> {
        let retry = self.options.retry;
        let mut attempt: u32 = 0;
        let mut infrastructure: u32 = 0;
        loop {
            attempt += 1;
            let result = if let Some(result) = first.take() {
                Ok(result)
            } else if self.transactional {
                self.try_in_transaction(message, attempt, replay).await
            } else {
                Ok(self.try_plain(message, attempt, replay).await)
            };
            let wait = match result {
                // Not database trouble: the consumer starts again from the reset position.
                Err(error @ Error::ConsumerPositionReset { .. }) => return Err(error),
                // The kit's own records of this event (its id or stream as text) are refused,
                // and would be on every try.
                Err(Error::Database { source })
                    if crate::error::database_refuses_for_good(&source) =>
                {
                    tracing::error!(consumer = %self.key.consumer, id = %message.id, error = %source, "the database refuses to record this event for good; the consumer stops");
                    return Err(Error::Database { source });
                }
                Err(error) => {
                    attempt -= 1;
                    infrastructure = infrastructure.saturating_add(1);
                    let wait = self.database_wait(infrastructure);
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), ?wait, "database error while handling; retrying");
                    wait
                }
                Ok(Ok(Handled::Done)) => return Ok(Outcome::Handled),
                Ok(Ok(Handled::Unknown)) if !self.options.strict_types => {
                    tracing::trace!(consumer = %self.key.consumer, message_type = %message.message_type, "no handler; ignored");
                    return Ok(Outcome::Handled);
                }
                Ok(Ok(Handled::Unknown)) => {
                    return Ok(Outcome::Failed {
                        error: format!("no handler for message type {:?}", message.message_type),
                        attempts: attempt,
                    });
                }
                Ok(Err(error)) => {
                    if error.is_permanent() || attempt >= retry.attempts {
                        return Ok(Outcome::Failed {
                            error: error.to_string(),
                            attempts: attempt,
                        });
                    }
                    let wait = backoff::delay(retry.initial, retry.max, attempt);
                    tracing::warn!(
                        consumer = %self.key.consumer,
                        id = %message.id,
                        stream = %message.stream_name,
                        attempt,
                        error = crate::error::log_field(error.source()),
                        ?wait,
                        "handler failed; retrying"
                    );
                    wait
                }
            };
            if self.sleep_alive(wait, cancel).await? {
                return Ok(Outcome::Interrupted);
            }
        }
    }

    /// Runs the handler once. A panic is this try's failure, with the panic's message: the
    /// retry and failure policies apply to it as to an error. Unwinding out of the consumer's
    /// task instead would end it with nothing recorded: its handle would still say it runs,
    /// no failure would reach `next_failure`, and the database would not say it stopped.
    pub(super) async fn run_handler(
        &self,
        message: &CategoryMessage,
        ctx: &mut Context<'_, DB>,
    ) -> Result<Handled, HandlerError> {
        // The handler's state is not looked at again after a panic but through its own
        // later calls, as after any failed try.
        let handled = AssertUnwindSafe(async { self.consumer.handle(message, ctx).await });
        match handled.catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let text = panic_text(panic.as_ref());
                tracing::error!(
                    consumer = %self.key.consumer,
                    id = %message.id,
                    stream = %message.stream_name,
                    panic = %text,
                    "handler panicked"
                );
                Err(HandlerError::new(format!("handler panicked: {text}")))
            }
        }
    }

    pub(super) fn context<'c>(
        &'c self,
        attempt: u32,
        replay: bool,
        transaction: Option<&'c mut DB::Connection>,
    ) -> Context<'c, DB> {
        Context {
            consumer: &self.key.consumer,
            category: &self.key.category,
            group: self.options.group,
            attempt,
            replay,
            transaction,
        }
    }

    pub(super) async fn try_plain(
        &self,
        message: &CategoryMessage,
        attempt: u32,
        replay: bool,
    ) -> Result<Handled, HandlerError> {
        let mut ctx = self.context(attempt, replay, None);
        self.run_handler(message, &mut ctx).await
    }

    /// One try in a transaction that first claims the processed record (a message another
    /// member already handled is skipped), then runs the handler, then saves the position
    /// (or, for a replay, deletes the parked record) and commits.
    pub(super) async fn try_in_transaction(
        &self,
        message: &CategoryMessage,
        attempt: u32,
        replay: bool,
    ) -> Result<Result<Handled, HandlerError>> {
        let mut tx = DB::begin_write(&self.pool).await?;
        let claimed = DB::insert_processed(&mut *tx, &self.key, &[processed_row(message)]).await?;
        if claimed == 0 {
            if replay {
                self.check_not_reset(&mut tx).await?;
                DB::delete_parked(&mut *tx, &self.key, message.id.as_str()).await?;
                tx.commit().await.map_err(db)?;
            } else {
                tx.rollback().await.map_err(db)?;
            }
            tracing::debug!(consumer = %self.key.consumer, id = %message.id, "already processed");
            return Ok(Ok(Handled::Done));
        }
        let result = {
            let mut ctx = self.context(attempt, replay, Some(&mut *tx));
            self.run_handler(message, &mut ctx).await
        };
        if !self.keeps(&result) {
            tx.rollback().await.map_err(db)?;
            return Ok(result);
        }
        let finished = async {
            if replay {
                // A replay saves no position, which would have seen a reset: its processed
                // record must not outlive one.
                self.check_not_reset(&mut tx).await?;
                DB::delete_parked(&mut *tx, &self.key, message.id.as_str()).await?;
            } else {
                DB::save_position(
                    &mut *tx,
                    &self.key,
                    self.position_row(message.global_position),
                    self.resets,
                )
                .await?;
            }
            tx.commit().await.map_err(db)
        };
        match finished.await {
            Ok(()) => Ok(result),
            // The handler's own work broke its transaction: a try that failed, which the
            // retry and failure policies deal with. Retried as database trouble, it would
            // run the handler again for good.
            Err(error) if broken_by_handler(&error) => Ok(Err(broken(&error))),
            Err(error) => Err(error),
        }
    }
}

/// Whether an error met after a transactional handler returned comes from what the handler
/// did in its transaction rather than from the database being in trouble: PostgreSQL
/// refuses every statement of a transaction in which one failed (`25P02`, when the handler
/// ignored an error); both databases check deferred constraints at the commit (PostgreSQL
/// `23…`, SQLite `SQLITE_CONSTRAINT_FOREIGNKEY`); a handler may have made its transaction
/// read-only (`25006`). None of these goes away when the same handler runs again.
pub(super) fn broken_by_handler(error: &Error) -> bool {
    let Error::Database { source } = error else {
        return false;
    };
    // A read-only transaction here is the handler's doing (elsewhere it may be a failover
    // that passes, see `database_refuses_for_good`).
    let aborted_or_read_only = source
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code == "25P02" || code == "25006");
    aborted_or_read_only || crate::error::database_refuses_for_good(source)
}

/// The handler's failure when [`broken_by_handler`].
pub(super) fn broken(error: &Error) -> HandlerError {
    HandlerError::new(format!(
        "the handler's transaction could not commit: {}",
        crate::error::with_causes(error)
    ))
}

/// What a panic said: its `&str` or `String` payload (what `panic!` and `unwrap` give).
fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a payload that is not text")
}
