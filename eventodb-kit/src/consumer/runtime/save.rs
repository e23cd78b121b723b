//! Saving the position and the processed records: now, soon (in the background), or
//! retried until it lands.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Pool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::consumer::backoff;
use crate::consumer::handler::Consumer;
use crate::consumer::store::{Key, PositionRow, ProcessedRow};
use crate::error::{Error, Result};
use crate::outbox::Backend;

use super::{COALESCE_LIMIT, Runtime, db};

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    pub(super) fn position_row(&self, global_position: i64) -> PositionRow {
        PositionRow {
            member: self.member,
            size: self.size,
            global_position,
        }
    }

    /// Saves the position and pending processed records in one transaction, now: with them
    /// the records of a background save that gave up (put back in `pending` by
    /// [`finish_save`](Self::finish_save)).
    pub(super) async fn save(&mut self) -> Result<()> {
        match self.finish_save().await {
            Ok(()) => {}
            Err(error @ Error::ConsumerPositionReset { .. }) => return Err(error),
            Err(error) => {
                tracing::debug!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "the background save gave up; saving its records now");
            }
        }
        if self.position == self.saved && self.pending.is_empty() {
            self.since_save = 0;
            return Ok(());
        }
        save_rows(
            &self.pool,
            &self.key,
            &self.pending,
            self.position_row(self.position),
            self.resets,
        )
        .await?;
        self.pending.clear();
        self.saved = self.position;
        self.saving_to = self.position;
        self.since_save = 0;
        Ok(())
    }

    /// Saves the position and pending processed records: a plain consumer in the background
    /// (retrying until it succeeds or the consumer stops) while it handles the next
    /// messages, after the previous save finished; a transactional one now (its own
    /// transactions save positions too, and must not be overtaken).
    ///
    /// With `coalesce`, a plain consumer whose previous save still runs does not wait for
    /// it: the events go with the next save, one larger batch (up to [`COALESCE_LIMIT`]
    /// update intervals behind). Waiting there made handling wait for every commit.
    pub(super) async fn save_soon(
        &mut self,
        cancel: &CancellationToken,
        coalesce: bool,
    ) -> Result<()> {
        if self.transactional {
            return self.save_retrying(cancel).await;
        }
        if self.position == self.saving_to && self.pending.is_empty() {
            self.since_save = 0;
            return Ok(());
        }
        let running = self.saving.as_ref().is_some_and(|task| !task.is_finished());
        if coalesce
            && running
            && self.since_save
                < self
                    .options
                    .position_update_interval
                    .saturating_mul(COALESCE_LIMIT)
        {
            return Ok(());
        }
        if let Err(error) = self.finish_save().await {
            // Given up at the shutdown: its records are back in `pending`, for the final
            // save; the consumer ends cleanly if that one lands.
            if cancel.is_cancelled() && !matches!(error, Error::ConsumerPositionReset { .. }) {
                return Ok(());
            }
            return Err(error);
        }
        let pool = self.pool.clone();
        let key = self.key.clone();
        let rows = Arc::new(std::mem::take(&mut self.pending));
        self.saving_rows = Arc::clone(&rows);
        let position = self.position_row(self.position);
        self.saving_to = self.position;
        let cancel = cancel.clone();
        let retry_max = self.options.read_retry_max;
        let resets = self.resets;
        self.since_save = 0;
        self.saving = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                match save_rows(&pool, &key, &rows, position, resets).await {
                    Ok(()) => return Ok(position.global_position),
                    Err(error @ Error::ConsumerPositionReset { .. }) => return Err(error),
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        let wait = backoff::delay(Duration::from_millis(100), retry_max, failures);
                        tracing::warn!(consumer = %key.consumer, error = crate::error::log_field(&error), ?wait, "could not save the position; retrying");
                        tokio::select! {
                            () = cancel.cancelled() => return Err(error),
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        })));
        Ok(())
    }

    /// Waits for the background save, if one runs.
    pub(super) async fn finish_save(&mut self) -> Result<()> {
        let mut saving = self.saving.take();
        if saving.is_some() {
            let outcome = saved(&mut saving).await;
            self.saved = self.take_back(outcome)?;
        }
        Ok(())
    }

    /// The position a background save saved; when it gave up, its error, with its processed
    /// records put back before the pending ones. Dropped, they were lost for good when a
    /// later save went past them: the position then said handled, and nothing recorded it
    /// for the group members that skip repeats by those records.
    pub(super) fn take_back(&mut self, outcome: Result<i64>) -> Result<i64> {
        let rows = std::mem::take(&mut self.saving_rows);
        if outcome.is_err() {
            let mut rows = Arc::try_unwrap(rows).unwrap_or_else(|shared| (*shared).clone());
            rows.append(&mut self.pending);
            self.pending = rows;
        }
        outcome
    }

    pub(super) async fn save_retrying(&mut self, cancel: &CancellationToken) -> Result<()> {
        let mut failures: u32 = 0;
        loop {
            match self.save().await {
                Ok(()) => return Ok(()),
                Err(error @ Error::ConsumerPositionReset { .. }) => return Err(error),
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff::delay(
                        Duration::from_millis(100),
                        self.options.read_retry_max,
                        failures,
                    );
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), ?wait, "could not save the position; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return Err(error),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// What a background save ended with, once it ends (never, without one). The caller clears
/// `saving` afterwards (a finished task is not polled again) and hands the outcome to
/// [`Runtime::take_back`].
pub(super) async fn saved(saving: &mut Option<AbortOnDropHandle<Result<i64>>>) -> Result<i64> {
    match saving {
        Some(task) => task
            .await
            .map_err(|error| Error::Internal(format!("save task: {error}")))?,
        None => std::future::pending().await,
    }
}

/// Records a batch of processed events (one row) and saves a position, in one transaction:
/// the position never gets ahead of the records that let group members skip repeats. Over a
/// position row reset `resets` times: neither is saved if it was reset since.
pub(super) async fn save_rows<DB: Backend>(
    pool: &Pool<DB>,
    key: &Key,
    rows: &[ProcessedRow],
    position: PositionRow,
    resets: i64,
) -> Result<()> {
    let mut tx = DB::begin_write(pool).await?;
    if !rows.is_empty() {
        DB::insert_processed_batch(&mut *tx, key, rows).await?;
    }
    DB::save_position(&mut *tx, key, position, resets).await?;
    tx.commit().await.map_err(db)
}
