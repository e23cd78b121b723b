//! Failed messages: the failure policy, parked streams and the events held behind them,
//! and the replay of a stream an operator released.

use tokio_util::sync::CancellationToken;

use crate::client::{CategoryMessage, GetStreamOptions};
use crate::consumer::handler::Consumer;
use crate::consumer::options::FailurePolicy;
use crate::consumer::store::ParkedRow;
use crate::error::{Error, Result};
use crate::outbox::Backend;

use super::{Outcome, Runtime, db, processed_row};

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    pub(super) async fn apply_policy(
        &mut self,
        message: &CategoryMessage,
        error: String,
        attempts: u32,
    ) -> Result<()> {
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
                self.save().await?;
                Err(Error::ConsumerStopped {
                    consumer: self.key.consumer.clone(),
                    category: self.key.category.clone(),
                    event_id: message.id,
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
                let mut tx = DB::begin_write(&self.pool).await?;
                let row = parked_row(message, &error, attempts, "parked");
                DB::park_event(&mut *tx, &self.key, &row).await?;
                DB::hold_stream(
                    &mut *tx,
                    &self.key,
                    &message.stream_name,
                    &row.event_id,
                    message.global_position,
                    &error,
                )
                .await?;
                tx.commit().await.map_err(db)?;
                self.held.insert(message.stream_name.clone(), false);
                Ok(())
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
                let mut tx = DB::begin_write(&self.pool).await?;
                let row = parked_row(message, &error, attempts, "skipped");
                DB::park_event(&mut *tx, &self.key, &row).await?;
                DB::insert_processed(&mut *tx, &self.key, &[processed_row(message)]).await?;
                tx.commit().await.map_err(db)?;
                Ok(())
            }
        }
    }

    /// Records a message of a parked stream, held back behind the parked one.
    pub(super) async fn hold_behind(&mut self, message: &CategoryMessage) -> Result<()> {
        tracing::debug!(consumer = %self.key.consumer, id = %message.id, stream = %message.stream_name, "stream parked; holding the event back");
        let mut tx = DB::begin_write(&self.pool).await?;
        let row = parked_row(message, "held back: its stream is parked", 0, "parked");
        DB::park_event(&mut *tx, &self.key, &row).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(super) async fn reload_held(&mut self) {
        match DB::parked_streams(&self.pool, &self.key).await {
            Ok(rows) => self.held = super::owned_parked(rows, self.member, self.size),
            Err(error) => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not read parked streams");
            }
        }
    }

    /// Handles the parked events of released streams, in order. A stream whose event fails
    /// again is parked again from that event on.
    pub(super) async fn replay_released(&mut self, cancel: &CancellationToken) -> Result<()> {
        let released: Vec<String> = self
            .held
            .iter()
            .filter(|(_, released)| **released)
            .map(|(stream, _)| stream.clone())
            .collect();
        for stream in released {
            let rows = DB::parked_events(&self.pool, &self.key, Some(&stream), "parked").await?;
            tracing::info!(consumer = %self.key.consumer, %stream, events = rows.len(), "stream released; handling its parked events");
            let mut cleared = true;
            for row in rows {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                let message = self.recover(&row).await;
                match crate::trace_context::around_event(
                    &message,
                    self.attempts(&message, true, cancel, None),
                )
                .await?
                {
                    Outcome::Handled => {
                        if !self.transactional {
                            let mut tx = DB::begin_write(&self.pool).await?;
                            DB::insert_processed(&mut *tx, &self.key, &[processed_row(&message)])
                                .await?;
                            DB::delete_parked(&mut *tx, &self.key, &row.event_id).await?;
                            tx.commit().await.map_err(db)?;
                        }
                    }
                    Outcome::Interrupted => return Ok(()),
                    Outcome::Failed { error, attempts } => {
                        tracing::error!(consumer = %self.key.consumer, %stream, id = %row.event_id, %error, "released event failed again; stream parked again");
                        DB::parked_failed_again(
                            &self.pool,
                            &self.key,
                            &row.event_id,
                            &error,
                            i64::from(attempts),
                        )
                        .await?;
                        let mut tx = DB::begin_write(&self.pool).await?;
                        DB::hold_stream(
                            &mut *tx,
                            &self.key,
                            &stream,
                            &row.event_id,
                            row.global_position,
                            &error,
                        )
                        .await?;
                        tx.commit().await.map_err(db)?;
                        self.held.insert(stream.clone(), false);
                        cleared = false;
                        break;
                    }
                }
            }
            if cleared {
                let mut tx = DB::begin_write(&self.pool).await?;
                DB::unhold_stream(&mut *tx, &self.key, &stream).await?;
                tx.commit().await.map_err(db)?;
                self.held.remove(&stream);
                tracing::info!(consumer = %self.key.consumer, %stream, "stream unparked");
            }
        }
        Ok(())
    }

    /// The parked message as EventoDB has it (with its time); the stored copy if it cannot
    /// be read.
    pub(super) async fn recover(&self, row: &ParkedRow) -> CategoryMessage {
        let options = GetStreamOptions::new().position(row.position).batch_size(1);
        if let Ok(found) = self.client.stream_get(&row.stream, &options).await
            && let Some(message) = found.into_iter().next()
            && message.id.to_string() == row.event_id
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
            id: uuid::Uuid::parse_str(&row.event_id).unwrap_or_default(),
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
        event_id: message.id.to_string(),
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
