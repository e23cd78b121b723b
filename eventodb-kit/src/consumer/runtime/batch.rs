//! Handling a batch in shared transactions: several messages committed at once, each in a
//! savepoint, with the per-event path as the fallback.

use std::collections::HashSet;

use sqlx::Transaction;
use tokio_util::sync::CancellationToken;

use crate::client::CategoryMessage;
use crate::consumer::handler::{Consumer, Handled, HandlerError};
use crate::error::{Error, Result};
use crate::outbox::Backend;

use super::attempt::{broken, broken_by_handler};
use super::{OpenBatch, Runtime, db, processed_row};

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// Deals with every message of a batch in order. `false` when cancelled midway (after
    /// the message in hand).
    pub(super) async fn handle_batch(
        &mut self,
        batch: Vec<CategoryMessage>,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        let candidates: Vec<&CategoryMessage> = batch
            .iter()
            .filter(|message| message.global_position <= self.dedupe_until)
            .collect();
        let processed: HashSet<String> = match (candidates.first(), candidates.last()) {
            (Some(first), Some(last)) => {
                let ids: Vec<String> = candidates.iter().map(|m| m.id.to_string()).collect();
                let (pool, key, ids) = (&self.pool, &self.key, &ids);
                let (first, last) = (first.global_position, last.global_position);
                let found = self
                    .retrying_database(cancel, "reading processed records", move || {
                        DB::processed_among(pool, key, ids, first, last)
                    })
                    .await?;
                match found {
                    Some(found) => found.into_iter().collect(),
                    None => return Ok(false),
                }
            }
            _ => HashSet::new(),
        };
        if self.transactional && self.options.transaction_batch > 1 {
            return self.handle_batch_together(&batch, &processed, cancel).await;
        }
        for message in &batch {
            if cancel.is_cancelled() {
                return Ok(false);
            }
            if message.global_position <= self.position {
                continue;
            }
            if !self.handle_one(message, &processed, cancel).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A transactional consumer's batch in shared transactions (see
    /// [`ConsumerOptions::transaction_batch`]): each message in a savepoint of the open
    /// transaction, which commits with the position when it holds `transaction_batch`
    /// messages, before a message that takes the one-transaction-per-try path (a failing
    /// handler, a parked stream), at the end of the batch, and on cancel. A database error
    /// rolls the open transaction back; its messages and the rest of the batch then take
    /// the per-event path, which retries database trouble.
    pub(super) async fn handle_batch_together(
        &mut self,
        batch: &[CategoryMessage],
        processed: &HashSet<String>,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        let mut open: Option<OpenBatch<DB>> = None;
        let mut batched = true;
        let mut i = 0;
        loop {
            let at_end = i >= batch.len();
            let cancelled = cancel.is_cancelled();
            if let Some(batch_tx) = &open {
                let full = i - batch_tx.first >= self.options.transaction_batch;
                let alone = !at_end && self.held.contains_key(&batch[i].stream_name);
                if (at_end || cancelled || full || alone)
                    && let Some(first) = self.commit_open(&mut open).await?
                {
                    batched = false;
                    i = first;
                    // Cancelled: rolled back, the position stays before them.
                    if !cancelled {
                        continue;
                    }
                }
            }
            if cancelled {
                return Ok(false);
            }
            let Some(message) = batch.get(i) else {
                return Ok(true);
            };
            i += 1;
            if message.global_position <= self.position {
                continue;
            }
            if !batched || self.held.contains_key(&message.stream_name) {
                if !self.handle_one(message, processed, cancel).await? {
                    return Ok(false);
                }
                continue;
            }
            if processed.contains(message.id.as_str()) {
                tracing::debug!(consumer = %self.key.consumer, id = %message.id, "already processed");
                match &mut open {
                    Some(batch_tx) => batch_tx.upto = message.global_position,
                    None => self.advance(message.global_position),
                }
                continue;
            }
            if open.is_none() {
                match DB::begin_write(&self.pool).await {
                    Ok(tx) => {
                        open = Some(OpenBatch {
                            tx,
                            first: i - 1,
                            upto: self.position,
                            handled: 0,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not begin a transaction; handling events one by one");
                        batched = false;
                        i -= 1;
                        continue;
                    }
                }
            }
            let batch_tx = open.as_mut().expect("open");
            let step = crate::trace_context::around_event(
                message,
                self.try_in_savepoint(&mut batch_tx.tx, message),
            )
            .await;
            match step {
                Ok(None) => {
                    batch_tx.upto = message.global_position;
                    batch_tx.handled += 1;
                    // A shared transaction can outlast the member's claim: renew it between
                    // events, in the transaction (a claim lost meanwhile rolls it back).
                    self.heartbeat_if_due_in(&mut batch_tx.tx).await?;
                }
                Ok(Some(result)) => {
                    // Commit the events before it, then retry it on its own.
                    if let Some(first) = self.commit_open(&mut open).await? {
                        batched = false;
                        i = first;
                        continue;
                    }
                    let outcome = crate::trace_context::around_event(
                        message,
                        self.attempts(message, false, cancel, Some(result)),
                    )
                    .await?;
                    if !self.settle(message, outcome, cancel).await? {
                        return Ok(false);
                    }
                }
                Err(error) => {
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "database error in a batch of events; rolled back, handling them one by one");
                    i = open.take().expect("open").first;
                    batched = false;
                }
            }
        }
    }

    /// Commits the open shared transaction, if any. On failure it is rolled back: returns
    /// the batch index of its first message, to handle again one by one. A reset of the
    /// position is not such a failure: it goes up, and the consumer starts again.
    pub(super) async fn commit_open(
        &mut self,
        open: &mut Option<OpenBatch<DB>>,
    ) -> Result<Option<usize>> {
        let Some(batch_tx) = open.take() else {
            return Ok(None);
        };
        let first = batch_tx.first;
        match self.commit_batch(batch_tx).await {
            Ok(()) => Ok(None),
            Err(error @ Error::ConsumerPositionReset { .. }) => Err(error),
            Err(error) => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not commit a batch of events; handling them one by one");
                Ok(Some(first))
            }
        }
    }

    /// Commits a shared transaction with the position after its last message.
    pub(super) async fn commit_batch(&mut self, open: OpenBatch<DB>) -> Result<()> {
        let OpenBatch {
            mut tx,
            upto,
            handled,
            ..
        } = open;
        if upto > self.position {
            DB::save_position(&mut *tx, &self.key, self.position_row(upto), self.resets).await?;
        }
        tx.commit().await.map_err(db)?;
        for _ in 0..handled {
            self.metrics.handled();
        }
        if upto > self.position {
            self.advance(upto);
        }
        self.saved = self.saved.max(upto);
        self.saving_to = self.saving_to.max(upto);
        Ok(())
    }

    /// One try of a message in a savepoint of a shared transaction: claims the processed
    /// record (a message another member already handled counts as handled), runs the
    /// handler, and keeps both or rolls both back. `None` when kept; the handler's result
    /// when it was rolled back (the message takes the per-event path then).
    pub(super) async fn try_in_savepoint(
        &self,
        tx: &mut Transaction<'static, DB>,
        message: &CategoryMessage,
    ) -> Result<Option<Result<Handled, HandlerError>>> {
        let mut savepoint = sqlx::Connection::begin(&mut **tx).await.map_err(db)?;
        let claimed =
            DB::insert_processed(&mut *savepoint, &self.key, &[processed_row(message)]).await?;
        if claimed == 0 {
            savepoint.commit().await.map_err(db)?;
            tracing::debug!(consumer = %self.key.consumer, id = %message.id, "already processed");
            return Ok(None);
        }
        let result = {
            let mut ctx = self.context(1, false, Some(&mut *savepoint));
            self.run_handler(message, &mut ctx).await
        };
        if self.keeps(&result) {
            match savepoint.commit().await.map_err(db) {
                Ok(()) => Ok(None),
                // The handler broke its savepoint's part of the transaction (see
                // `broken_by_handler`): a failed try, rolled back to the savepoint when
                // `savepoint` drops, and the batch goes on.
                Err(error) if broken_by_handler(&error) => Ok(Some(Err(broken(&error)))),
                Err(error) => Err(error),
            }
        } else {
            savepoint.rollback().await.map_err(db)?;
            Ok(Some(result))
        }
    }
}
