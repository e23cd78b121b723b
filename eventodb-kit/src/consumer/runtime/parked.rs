//! Failed messages: the failure policy, parked streams and the events held behind them,
//! and the replay of a stream an operator released.

use tokio_util::sync::CancellationToken;

use crate::client::{CategoryMessage, GetStreamOptions, MessageId};
use crate::consumer::handler::Consumer;
use crate::consumer::options::FailurePolicy;
use crate::consumer::store::ParkedRow;
use crate::error::{Error, Result};
use crate::outbox::Backend;

use super::{Outcome, Runtime, db, processed_row};

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// Applies the failure policy to a message that failed for good. `false` when cancelled
    /// before the policy's record was written (the position stays before the message).
    /// Database errors are retried (see [`Runtime::retrying_database`]).
    pub(super) async fn apply_policy(
        &mut self,
        message: &CategoryMessage,
        error: String,
        attempts: u32,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        match self.options.failure_policy {
            FailurePolicy::Stop => {
                tracing::error!(
                    consumer = %self.key.consumer,
                    id = %message.id,
                    stream = %message.stream_name,
                    global_position = message.global_position,
                    %error,
                    "handler failed; stopping the consumer"
                );
                // Only fails when cancelled meanwhile; the task saves once more as it ends.
                if let Err(save_error) = self.save_retrying(cancel).await {
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&save_error), "could not save the position");
                }
                Err(Error::ConsumerStopped {
                    consumer: self.key.consumer.clone(),
                    category: self.key.category.clone(),
                    event_id: message.id.clone(),
                    stream: message.stream_name.clone(),
                    global_position: message.global_position,
                    message: error,
                })
            }
            FailurePolicy::ParkStream => {
                tracing::error!(
                    consumer = %self.key.consumer,
                    id = %message.id,
                    stream = %message.stream_name,
                    global_position = message.global_position,
                    %error,
                    "handler failed; parking the stream"
                );
                let row = parked_row(message, &error, attempts, "parked");
                let (pool, key, row, error) = (&self.pool, &self.key, &row, error.as_str());
                let this = &*self;
                let parked = self
                    .retrying_database(cancel, "parking a stream", move || async move {
                        let mut tx = DB::begin_write(pool).await?;
                        // A decision of the run an operator's reset ended does not stand.
                        this.check_not_reset(&mut tx).await?;
                        DB::park_event(&mut *tx, key, row).await?;
                        DB::hold_stream(
                            &mut *tx,
                            key,
                            &row.stream,
                            &row.event_id,
                            row.global_position,
                            error,
                        )
                        .await?;
                        tx.commit().await.map_err(db)
                    })
                    .await?;
                if parked.is_none() {
                    return Ok(false);
                }
                self.held.insert(message.stream_name.clone(), false);
                Ok(true)
            }
            FailurePolicy::Skip => {
                tracing::error!(
                    consumer = %self.key.consumer,
                    id = %message.id,
                    stream = %message.stream_name,
                    global_position = message.global_position,
                    %error,
                    "handler failed; skipping the event (recorded)"
                );
                let row = parked_row(message, &error, attempts, "skipped");
                let processed = [processed_row(message)];
                let (pool, key, row, processed) = (&self.pool, &self.key, &row, &processed);
                let this = &*self;
                let skipped = self
                    .retrying_database(cancel, "skipping an event", move || async move {
                        let mut tx = DB::begin_write(pool).await?;
                        // After a reset the event is to be handled again, not recorded as
                        // processed (the reset may have forgotten its record already).
                        this.check_not_reset(&mut tx).await?;
                        DB::park_event(&mut *tx, key, row).await?;
                        DB::insert_processed(&mut *tx, key, processed).await?;
                        tx.commit().await.map_err(db)
                    })
                    .await?;
                Ok(skipped.is_some())
            }
        }
    }

    /// Records a message of a parked stream, held back behind the parked one. `false` when
    /// cancelled before it was recorded (the position stays before it).
    pub(super) async fn hold_behind(
        &mut self,
        message: &CategoryMessage,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        tracing::debug!(consumer = %self.key.consumer, id = %message.id, stream = %message.stream_name, "stream parked; holding the event back");
        let row = parked_row(message, "held back: its stream is parked", 0, "parked");
        let (pool, key, row) = (&self.pool, &self.key, &row);
        let held = self
            .retrying_database(cancel, "holding an event back", move || async move {
                let mut tx = DB::begin_write(pool).await?;
                DB::park_event(&mut *tx, key, row).await?;
                tx.commit().await.map_err(db)
            })
            .await?;
        Ok(held.is_some())
    }

    pub(super) async fn reload_held(&mut self) {
        match DB::parked_streams(&self.pool, &self.key).await {
            Ok(rows) => {
                self.held = super::owned_parked(rows, self.member, self.size);
                let held = &self.held;
                self.replay_waits
                    .retain(|stream, _| held.contains_key(stream));
            }
            Err(error) => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not read parked streams");
            }
        }
    }

    /// Handles the parked events of released streams, in order, up to the read position; a
    /// stream is unparked once none is left. A stream whose event fails again is parked again
    /// from that event on. Database errors are retried (see
    /// [`Runtime::retrying_database`]); when cancelled meanwhile, what is not done stays
    /// parked and released, for the next start.
    pub(super) async fn replay_released(&mut self, cancel: &CancellationToken) -> Result<()> {
        let released: Vec<String> = self
            .held
            .iter()
            .filter(|(_, released)| **released)
            .map(|(stream, _)| stream.clone())
            .collect();
        // Whether this call made sure that no reset since the read position was set is
        // pending (a handler run for a parked event of the old run could not be undone).
        let mut checked = false;
        for stream in released {
            if self
                .replay_waits
                .get(&stream)
                .is_some_and(|&ahead| self.position < ahead)
            {
                continue;
            }
            let (pool, key, name) = (&self.pool, &self.key, stream.as_str());
            let Some(rows) = self
                .retrying_database(cancel, "reading parked events", move || {
                    DB::parked_events(pool, key, Some(name), "parked")
                })
                .await?
            else {
                return Ok(());
            };
            // After a reset below the parked events, the stream's earlier events come again
            // when the read reaches them: the parked ones wait, held with everything the
            // stream has until then, and the stream stays released until the read has passed
            // them all (the replays in between keep the stream's order).
            let position = self.position;
            let (rows, ahead): (Vec<ParkedRow>, Vec<ParkedRow>) = rows
                .into_iter()
                .partition(|row| row.global_position <= position);
            match ahead.first() {
                Some(first) => self
                    .replay_waits
                    .insert(stream.clone(), first.global_position),
                None => self.replay_waits.remove(&stream),
            };
            if rows.is_empty() && !ahead.is_empty() {
                continue;
            }
            // The read position may be one an operator's reset has just replaced (a busy
            // consumer's heartbeat was not due): start again from the reset first, before
            // handling a parked event out of the stream's new order.
            if !rows.is_empty() && !checked {
                self.heartbeat().await?;
                checked = true;
            }
            tracing::info!(consumer = %self.key.consumer, %stream, events = rows.len(), waiting = ahead.len(), "stream released; handling its parked events");
            let mut cleared = ahead.is_empty();
            for row in rows {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                // A long replay says it is alive between events, as other handling does.
                self.heartbeat_if_due().await?;
                // A plain consumer's replay claims no processed record (a transactional
                // one's does): an event handled meanwhile, e.g. by the member that had the
                // stream before a resize, is only dropped from the parked events.
                if !self.transactional {
                    let Some(done) = self.drop_if_processed(&row, cancel).await? else {
                        return Ok(());
                    };
                    if done {
                        continue;
                    }
                }
                let message = self.recover(&row).await;
                match crate::trace_context::around_event(
                    &message,
                    self.attempts(&message, true, cancel, None),
                )
                .await?
                {
                    Outcome::Handled => {
                        self.metrics.handled();
                        if !self.transactional {
                            let processed = [processed_row(&message)];
                            let (pool, key, processed, id) =
                                (&self.pool, &self.key, &processed, row.event_id.as_str());
                            let this = &*self;
                            let done = self
                                .retrying_database(
                                    cancel,
                                    "recording a replayed event",
                                    move || async move {
                                        let mut tx = DB::begin_write(pool).await?;
                                        // A reset since asks for the event again: a record
                                        // made now could outlive the reset's forgetting.
                                        this.check_not_reset(&mut tx).await?;
                                        DB::insert_processed(&mut *tx, key, processed).await?;
                                        DB::delete_parked(&mut *tx, key, id).await?;
                                        tx.commit().await.map_err(db)
                                    },
                                )
                                .await?;
                            if done.is_none() {
                                return Ok(());
                            }
                            // After a reset the event can lie ahead of the position: the
                            // read that reaches it must look at the processed records.
                            self.dedupe_until = self.dedupe_until.max(message.global_position);
                        }
                    }
                    Outcome::Interrupted => return Ok(()),
                    Outcome::Failed { error, attempts } => {
                        self.metrics.failed();
                        tracing::error!(consumer = %self.key.consumer, %stream, id = %row.event_id, %error, "released event failed again; stream parked again");
                        let (pool, key, row, error) = (&self.pool, &self.key, &row, error.as_str());
                        let this = &*self;
                        let parked = self
                            .retrying_database(
                                cancel,
                                "parking a stream again",
                                move || async move {
                                    let mut tx = DB::begin_write(pool).await?;
                                    this.check_not_reset(&mut tx).await?;
                                    DB::hold_stream(
                                        &mut *tx,
                                        key,
                                        &row.stream,
                                        &row.event_id,
                                        row.global_position,
                                        error,
                                    )
                                    .await?;
                                    // The tries are counted with the hold, in one commit: a
                                    // crash between two commits kept the hold and lost the
                                    // count, and a try that fails changes neither.
                                    DB::parked_failed_again(
                                        &mut *tx,
                                        key,
                                        &row.event_id,
                                        error,
                                        i64::from(attempts),
                                    )
                                    .await?;
                                    tx.commit().await.map_err(db)
                                },
                            )
                            .await?;
                        if parked.is_none() {
                            return Ok(());
                        }
                        self.held.insert(stream.clone(), false);
                        // Looked at again in full once released again.
                        self.replay_waits.remove(&stream);
                        cleared = false;
                        break;
                    }
                }
            }
            if cleared {
                let (pool, key, name) = (&self.pool, &self.key, stream.as_str());
                let unheld = self
                    .retrying_database(cancel, "unparking a stream", move || async move {
                        let mut tx = DB::begin_write(pool).await?;
                        DB::unhold_stream(&mut *tx, key, name).await?;
                        tx.commit().await.map_err(db)
                    })
                    .await?;
                if unheld.is_none() {
                    return Ok(());
                }
                self.held.remove(&stream);
                // The gauge follows `held` here too: a quiet category may not advance (where
                // it is set otherwise) for a long time, and an alert on it would not clear.
                self.metrics.parked(self.held.len());
                tracing::info!(consumer = %self.key.consumer, %stream, "stream unparked");
            }
        }
        Ok(())
    }

    /// Deletes a parked event that is recorded as processed. `Some(true)` when it was;
    /// `None` when cancelled first.
    async fn drop_if_processed(
        &self,
        row: &ParkedRow,
        cancel: &CancellationToken,
    ) -> Result<Option<bool>> {
        let (pool, key, id, gp) = (
            &self.pool,
            &self.key,
            row.event_id.as_str(),
            row.global_position,
        );
        self.retrying_database(cancel, "checking a parked event", move || async move {
            let ids = [id.to_owned()];
            if DB::processed_among(pool, key, &ids, gp, gp)
                .await?
                .is_empty()
            {
                return Ok(false);
            }
            let mut tx = DB::begin_write(pool).await?;
            DB::delete_parked(&mut *tx, key, id).await?;
            tx.commit().await.map_err(db)?;
            tracing::debug!(consumer = %key.consumer, %id, "already processed; no longer parked");
            Ok(true)
        })
        .await
    }

    /// The parked message as EventoDB has it (with its time); the stored copy if it cannot
    /// be read.
    pub(super) async fn recover(&self, row: &ParkedRow) -> CategoryMessage {
        let options = GetStreamOptions::new().position(row.position).batch_size(1);
        if let Ok(found) = self.client.stream_get(&row.stream, &options).await
            && let Some(message) = found.into_iter().next()
            && message.id.as_str() == row.event_id
        {
            return CategoryMessage {
                id: message.id,
                stream_name: row.stream.clone(),
                message_type: message.message_type,
                position: message.position,
                global_position: message.global_position,
                data: message.data,
                metadata: message.metadata,
                time: message.time,
            };
        }
        CategoryMessage {
            id: MessageId::new(row.event_id.as_str()),
            stream_name: row.stream.clone(),
            message_type: row.message_type.clone(),
            position: row.position,
            global_position: row.global_position,
            data: row.data.clone(),
            metadata: row.metadata.clone(),
            time: chrono::Utc::now(),
        }
    }
}

pub(super) fn parked_row(
    message: &CategoryMessage,
    error: &str,
    attempts: u32,
    status: &str,
) -> ParkedRow {
    ParkedRow {
        event_id: message.id.as_str().to_owned(),
        stream: message.stream_name.clone(),
        message_type: message.message_type.clone(),
        position: message.position,
        global_position: message.global_position,
        data: message.data.clone(),
        metadata: message.metadata.clone(),
        error: error.to_owned(),
        attempts: i64::from(attempts),
        status: status.to_owned(),
    }
}
