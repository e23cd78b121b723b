//! The consumer task: read a batch from the position, handle each message once (retrying
//! and applying the failure policy), save the position and the processed records, sleep
//! until a poke, a poll or a release.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Pool, Transaction};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::admin::release_signal;
use super::backoff;
use super::group;
use super::handle::Shared;
use super::handler::{Consumer, Context, Handled, HandlerError};
use super::hub::{Hub, Registration};
use super::options::{ConsumerOptions, FailurePolicy};
use super::store::{Key, ParkedRow, PositionRow, ProcessedRow};
use crate::client::{CategoryMessage, Client, GetCategoryOptions, GetStreamOptions};
use crate::error::{Error, Result};
use crate::outbox::Backend;

/// How many update intervals of handled events a plain consumer may run ahead of its
/// saves while one save is still running, before it waits for that save.
const COALESCE_LIMIT: usize = 8;

/// How often processed records below every member's position are purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(300);

/// A transaction shared by several messages of a batch, not yet committed.
struct OpenBatch<DB: Backend> {
    tx: Transaction<'static, DB>,
    /// Index in the batch of its first message (where to start again if it rolls back).
    first: usize,
    /// The position after its last message.
    upto: i64,
    /// Messages it handled (for the metrics, counted when it commits).
    handled: usize,
}

/// What became of one message.
enum Outcome {
    /// Handled (or ignored as an unknown type).
    Handled,
    /// Failed for good: the failure policy applies.
    Failed { error: String, attempts: u32 },
    /// Cancelled before it was handled: the position stays before it.
    Interrupted,
}

/// One consumer, ready to run.
pub(crate) struct Runtime<DB: Backend, C: Consumer<DB>> {
    consumer: C,
    options: ConsumerOptions,
    client: Client,
    pool: Pool<DB>,
    key: Key,
    metrics: crate::metrics::ConsumerMetrics,
    member: i64,
    size: i64,
    transactional: bool,
    shared: Arc<Shared>,
    /// Last global position dealt with (handled, parked or skipped).
    position: i64,
    /// Last global position saved.
    saved: i64,
    /// The global position the last save started (running or done) saves.
    saving_to: i64,
    /// Messages at or below this may be recorded as processed already.
    dedupe_until: i64,
    /// Processed records of a plain consumer, saved with the next position.
    pending: Vec<ProcessedRow>,
    since_save: usize,
    /// Parked streams, and whether an operator released them.
    held: HashMap<String, bool>,
    last_maintenance: Option<Instant>,
    /// A save running in the background (plain consumers), and the position it saves.
    /// Aborted if the consumer task is (as a crash would end it).
    saving: Option<AbortOnDropHandle<Result<i64>>>,
    _registration: Option<Registration>,
}

fn db(source: sqlx::Error) -> Error {
    Error::Database { source }
}

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// Loads the consumer's state: its position (see [`group`]), the highest processed
    /// position and its parked streams.
    pub(crate) async fn start(
        consumer: C,
        options: ConsumerOptions,
        client: Client,
        pool: Pool<DB>,
        namespace: String,
        hub: Option<&Hub>,
    ) -> Result<Self> {
        let category = options
            .category
            .clone()
            .unwrap_or_else(|| consumer.category().to_owned());
        if options.name.is_empty() {
            return Err(Error::InvalidArgument(
                "a consumer needs a non-empty name".into(),
            ));
        }
        if category.contains('-') {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: category {category:?} contains '-' and would match nothing",
                options.name
            )));
        }
        let (member, size) = options.group.unwrap_or((0, 1));
        if size <= 0 || member < 0 || member >= size {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: group member {member} of size {size} is invalid: need 0 <= member < size",
                options.name
            )));
        }
        let key = Key {
            namespace,
            category: category.clone(),
            consumer: options.name.clone(),
        };
        let mut rows = DB::load_positions(&pool, &key).await?;
        if let Some(missing) = group::missing_rows(&rows, size) {
            let mut tx = DB::begin_write(&pool).await?;
            for row in missing {
                DB::insert_position(&mut *tx, &key, row).await?;
            }
            tx.commit().await.map_err(db)?;
            rows = DB::load_positions(&pool, &key).await?;
        }
        let position = group::start_position(&rows, member, size);
        let dedupe_until = DB::max_processed(&pool, &key).await?.unwrap_or(0);
        let held = DB::parked_streams(&pool, &key)
            .await?
            .into_iter()
            .collect::<HashMap<_, _>>();
        let own_saved = rows
            .iter()
            .find(|row| row.member == member && row.size == size)
            .map_or(-1, |row| row.global_position);
        tracing::info!(
            consumer = %options.name,
            %category,
            member,
            size,
            position,
            "consumer starting"
        );
        let shared = Arc::new(Shared::new(
            options.name.clone(),
            category.clone(),
            options.group,
            position,
        ));
        let registration = hub.map(|hub| hub.register(&category, &shared.waker));
        let transactional = options.transactional || consumer.transactional();
        Ok(Self {
            consumer,
            options,
            client,
            pool,
            metrics: crate::metrics::ConsumerMetrics::new(
                &key.namespace,
                &key.category,
                &key.consumer,
                member,
            ),
            key,
            member,
            size,
            transactional,
            shared,
            position,
            saved: own_saved,
            saving_to: own_saved,
            dedupe_until,
            pending: Vec::new(),
            since_save: 0,
            held,
            last_maintenance: None,
            saving: None,
            _registration: registration,
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Runs until `cancel`, or until the failure policy stops it. Saves the position on the
    /// way out.
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> Result<()> {
        let span = crate::trace_context::consumer_span(
            &self.key.namespace,
            &self.key.category,
            &self.key.consumer,
            self.member,
        );
        let result = tracing::Instrument::instrument(self.main(&cancel), span).await;
        let saved = self.save().await;
        if let Err(error) = &saved {
            tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(error), "could not save the position");
        }
        let result = result.and(saved);
        self.shared
            .finished(result.as_ref().err().map(ToString::to_string));
        match &result {
            Ok(()) => {
                tracing::info!(consumer = %self.key.consumer, position = self.position, "consumer stopped")
            }
            Err(error) => {
                tracing::error!(consumer = %self.key.consumer, error = crate::error::log_field(error), "consumer failed")
            }
        }
        result
    }

    async fn main(&mut self, cancel: &CancellationToken) -> Result<()> {
        let mut releases = release_signal();
        let mut read_failures: u32 = 0;
        let mut prefetched: Option<(u64, JoinHandle<Result<Vec<CategoryMessage>>>)> = None;
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            if self.held.values().any(|released| *released) {
                self.replay_released(cancel).await?;
                if cancel.is_cancelled() {
                    return Ok(());
                }
            }
            let (read, batch) = match prefetched.take() {
                Some((read, task)) => (
                    read,
                    task.await
                        .map_err(|error| Error::Internal(format!("read task: {error}")))?,
                ),
                None => {
                    let read = self.next_read();
                    (read, self.read_from(self.position + 1).await)
                }
            };
            let batch = match batch {
                Ok(batch) => {
                    read_failures = 0;
                    batch
                }
                Err(error) if error.is_transient() => {
                    read_failures = read_failures.saturating_add(1);
                    let wait = backoff::delay(
                        Duration::from_millis(100),
                        self.options.read_retry_max,
                        read_failures,
                    );
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), ?wait, "category.get failed; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            let caught_up =
                i64::try_from(batch.len()).unwrap_or(i64::MAX) < self.options.batch_size;
            if let Some(last) = batch.last() {
                self.shared
                    .waker
                    .head
                    .fetch_max(last.global_position, std::sync::atomic::Ordering::Relaxed);
            }
            // A full batch: read the next one while this one is handled.
            if !caught_up && let Some(last) = batch.last() {
                let read = self.next_read();
                let reading = self.read_from(last.global_position + 1);
                prefetched = Some((read, tokio::spawn(reading)));
            }
            let handled = self.handle_batch(batch, cancel).await?;
            self.shared.publish();
            if !handled {
                return Ok(());
            }
            // A running save is not waited for: the events go with the next save.
            self.save_soon(cancel, true).await?;
            if !caught_up {
                continue;
            }
            self.shared.caught_up(read, self.position);
            self.maintain().await;
            // Sleep until a poke, a poll or a release. A save still running goes on
            // meanwhile (waiting for it here would hold the read after the next poke back
            // by a commit, a checkpoint on SQLite); when it ends, what it left is saved.
            let poll_at = tokio::time::Instant::now() + self.options.poll_interval;
            loop {
                let unsaved = !self.pending.is_empty() || self.position != self.saving_to;
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = self.shared.waker.notify.notified() => break,
                    () = tokio::time::sleep_until(poll_at) => {
                        if !self.held.is_empty() {
                            self.reload_held().await;
                        }
                        break;
                    }
                    changed = releases.changed() => {
                        if changed.is_ok() {
                            self.reload_held().await;
                        }
                        break;
                    }
                    saved = saved(&mut self.saving), if unsaved && self.saving.is_some() => {
                        self.saving = None;
                        self.saved = saved?;
                        self.save_soon(cancel, true).await?;
                    }
                }
            }
        }
    }

    /// Numbers a read that starts now (see [`ConsumerHandle::wait_for`](super::ConsumerHandle::wait_for)).
    fn next_read(&self) -> u64 {
        self.shared
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    /// A read of the next batch from `global_position` (owns what it needs, so it can run
    /// in a task of its own).
    fn read_from(
        &self,
        global_position: i64,
    ) -> impl std::future::Future<Output = Result<Vec<CategoryMessage>>> + Send + 'static {
        let mut options = GetCategoryOptions::new()
            .position(global_position)
            .batch_size(self.options.batch_size);
        if let Some(correlation) = &self.options.correlation {
            options = options.correlation(correlation.clone());
        }
        if let Some((member, size)) = self.options.group {
            options = options.consumer_group(member, size);
        }
        let client = self.client.clone();
        let category = self.key.category.clone();
        async move { client.category_get(&category, &options).await }
    }

    /// Deals with every message of a batch in order. `false` when cancelled midway (after
    /// the message in hand).
    async fn handle_batch(
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
                DB::processed_among(
                    &self.pool,
                    &self.key,
                    &ids,
                    first.global_position,
                    last.global_position,
                )
                .await?
                .into_iter()
                .collect()
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
    async fn handle_batch_together(
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
                    && let Some(first) = self.commit_open(&mut open).await
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
            if processed.contains(&message.id.to_string()) {
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
                }
                Ok(Some(result)) => {
                    // Commit the events before it, then retry it on its own.
                    if let Some(first) = self.commit_open(&mut open).await {
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
    /// the batch index of its first message, to handle again one by one.
    async fn commit_open(&mut self, open: &mut Option<OpenBatch<DB>>) -> Option<usize> {
        let batch_tx = open.take()?;
        let first = batch_tx.first;
        match self.commit_batch(batch_tx).await {
            Ok(()) => None,
            Err(error) => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not commit a batch of events; handling them one by one");
                Some(first)
            }
        }
    }

    /// Commits a shared transaction with the position after its last message.
    async fn commit_batch(&mut self, open: OpenBatch<DB>) -> Result<()> {
        let OpenBatch {
            mut tx,
            upto,
            handled,
            ..
        } = open;
        if upto > self.position {
            DB::save_position(&mut *tx, &self.key, self.position_row(upto)).await?;
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
    async fn try_in_savepoint(
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
            self.consumer.handle(message, &mut ctx).await
        };
        if self.keeps(&result) {
            savepoint.commit().await.map_err(db)?;
            Ok(None)
        } else {
            savepoint.rollback().await.map_err(db)?;
            Ok(Some(result))
        }
    }

    /// Whether a handler's result is kept (committed and recorded as processed).
    fn keeps(&self, result: &Result<Handled, HandlerError>) -> bool {
        match result {
            Ok(Handled::Done) => true,
            Ok(Handled::Unknown) => !self.options.strict_types,
            Err(_) => false,
        }
    }

    /// One message on its own: held back behind a parked stream, skipped when already
    /// processed, or tried (one transaction per try for a transactional consumer) with the
    /// failure policy after the last try. `false` when cancelled before it was handled.
    async fn handle_one(
        &mut self,
        message: &CategoryMessage,
        processed: &HashSet<String>,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        if self.held.contains_key(&message.stream_name) {
            self.hold_behind(message).await?;
            self.advance(message.global_position);
            return Ok(true);
        }
        if processed.contains(&message.id.to_string()) {
            tracing::debug!(consumer = %self.key.consumer, id = %message.id, "already processed");
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
    async fn settle(
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
                self.apply_policy(message, error, attempts).await?;
            }
        }
        self.advance(message.global_position);
        if self.since_save >= self.options.position_update_interval {
            self.save_soon(cancel, true).await?;
        }
        Ok(true)
    }

    fn advance(&mut self, global_position: i64) {
        self.position = global_position;
        self.since_save += 1;
        self.shared.advanced(global_position);
        let head = self
            .shared
            .waker
            .head
            .load(std::sync::atomic::Ordering::Relaxed);
        self.metrics.advanced(global_position, head);
        self.metrics.parked(self.held.len());
    }

    /// Tries a message until it is handled, fails for good, or the consumer is cancelled.
    /// Database trouble is retried without counting as a try.
    /// `first` is the result of a first try made elsewhere (in a shared transaction, rolled
    /// back): the tries go on from the second.
    async fn attempts(
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
                Err(error) => {
                    attempt -= 1;
                    infrastructure = infrastructure.saturating_add(1);
                    let wait = backoff::delay(
                        Duration::from_millis(100),
                        self.options.read_retry_max,
                        infrastructure,
                    );
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
            tokio::select! {
                () = cancel.cancelled() => return Ok(Outcome::Interrupted),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn context<'c>(
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

    async fn try_plain(
        &self,
        message: &CategoryMessage,
        attempt: u32,
        replay: bool,
    ) -> Result<Handled, HandlerError> {
        let mut ctx = self.context(attempt, replay, None);
        self.consumer.handle(message, &mut ctx).await
    }

    /// One try in a transaction that first claims the processed record (a message another
    /// member already handled is skipped), then runs the handler, then saves the position
    /// (or, for a replay, deletes the parked record) and commits.
    async fn try_in_transaction(
        &self,
        message: &CategoryMessage,
        attempt: u32,
        replay: bool,
    ) -> Result<Result<Handled, HandlerError>> {
        let mut tx = DB::begin_write(&self.pool).await?;
        let claimed = DB::insert_processed(&mut *tx, &self.key, &[processed_row(message)]).await?;
        if claimed == 0 {
            if replay {
                DB::delete_parked(&mut *tx, &self.key, &message.id.to_string()).await?;
                tx.commit().await.map_err(db)?;
            } else {
                tx.rollback().await.map_err(db)?;
            }
            tracing::debug!(consumer = %self.key.consumer, id = %message.id, "already processed");
            return Ok(Ok(Handled::Done));
        }
        let result = {
            let mut ctx = self.context(attempt, replay, Some(&mut *tx));
            self.consumer.handle(message, &mut ctx).await
        };
        if !self.keeps(&result) {
            tx.rollback().await.map_err(db)?;
            return Ok(result);
        }
        if replay {
            DB::delete_parked(&mut *tx, &self.key, &message.id.to_string()).await?;
        } else {
            DB::save_position(
                &mut *tx,
                &self.key,
                self.position_row(message.global_position),
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(result)
    }

    fn position_row(&self, global_position: i64) -> PositionRow {
        PositionRow {
            member: self.member,
            size: self.size,
            global_position,
        }
    }

    /// Saves the position and pending processed records in one transaction, now.
    async fn save(&mut self) -> Result<()> {
        self.finish_save().await?;
        if self.position == self.saved && self.pending.is_empty() {
            self.since_save = 0;
            return Ok(());
        }
        save_rows(
            &self.pool,
            &self.key,
            &self.pending,
            self.position_row(self.position),
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
    async fn save_soon(&mut self, cancel: &CancellationToken, coalesce: bool) -> Result<()> {
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
        self.finish_save().await?;
        let pool = self.pool.clone();
        let key = self.key.clone();
        let rows = std::mem::take(&mut self.pending);
        let position = self.position_row(self.position);
        self.saving_to = self.position;
        let cancel = cancel.clone();
        let retry_max = self.options.read_retry_max;
        self.since_save = 0;
        self.saving = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                match save_rows(&pool, &key, &rows, position).await {
                    Ok(()) => return Ok(position.global_position),
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
    async fn finish_save(&mut self) -> Result<()> {
        let mut saving = self.saving.take();
        if saving.is_some() {
            self.saved = saved(&mut saving).await?;
        }
        Ok(())
    }

    async fn save_retrying(&mut self, cancel: &CancellationToken) -> Result<()> {
        let mut failures: u32 = 0;
        loop {
            match self.save().await {
                Ok(()) => return Ok(()),
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

    async fn apply_policy(
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
    async fn hold_behind(&mut self, message: &CategoryMessage) -> Result<()> {
        tracing::debug!(consumer = %self.key.consumer, id = %message.id, stream = %message.stream_name, "stream parked; holding the event back");
        let mut tx = DB::begin_write(&self.pool).await?;
        let row = parked_row(message, "held back: its stream is parked", 0, "parked");
        DB::park_event(&mut *tx, &self.key, &row).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn reload_held(&mut self) {
        match DB::parked_streams(&self.pool, &self.key).await {
            Ok(rows) => self.held = rows.into_iter().collect(),
            Err(error) => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not read parked streams");
            }
        }
    }

    /// Handles the parked events of released streams, in order. A stream whose event fails
    /// again is parked again from that event on.
    async fn replay_released(&mut self, cancel: &CancellationToken) -> Result<()> {
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
    async fn recover(&self, row: &ParkedRow) -> CategoryMessage {
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

    /// Now and then: purge processed records no member will read again, and forget the
    /// positions of an old group size once every current member is past them.
    async fn maintain(&mut self) {
        if self
            .last_maintenance
            .is_some_and(|last| last.elapsed() < MAINTENANCE_EVERY)
        {
            return;
        }
        self.last_maintenance = Some(Instant::now());
        let result: Result<()> = async {
            let mut rows = DB::load_positions(&self.pool, &self.key).await?;
            if rows.iter().any(|row| row.size != self.size) {
                // Decided on locked rows: members of two sizes deciding at once could each
                // delete a row of the other's size and leave no size complete, and a member
                // starting then could begin past events nobody handled.
                let mut tx = DB::begin_write(&self.pool).await?;
                let locked = DB::lock_positions(&mut *tx, &self.key).await?;
                if let Some(floor) = group::stale_floor(&locked, self.size) {
                    DB::delete_stale_positions(&mut *tx, &self.key, self.size, floor).await?;
                }
                tx.commit().await.map_err(db)?;
                rows = DB::load_positions(&self.pool, &self.key).await?;
            }
            if let Some(floor) = group::purge_floor(&rows, self.size) {
                let purged = DB::purge_processed(&self.pool, &self.key, floor).await?;
                if purged > 0 {
                    tracing::debug!(consumer = %self.key.consumer, purged, "processed records purged");
                }
            }
            Ok(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "consumer maintenance failed");
        }
    }
}

/// The position a background save saved, once it ends (never, without one). The caller
/// clears `saving` afterwards: a finished task is not polled again.
async fn saved(saving: &mut Option<AbortOnDropHandle<Result<i64>>>) -> Result<i64> {
    match saving {
        Some(task) => task
            .await
            .map_err(|error| Error::Internal(format!("save task: {error}")))?,
        None => std::future::pending().await,
    }
}

/// Records a batch of processed events (one row) and saves a position, in one transaction:
/// the position never gets ahead of the records that let group members skip repeats.
async fn save_rows<DB: Backend>(
    pool: &Pool<DB>,
    key: &Key,
    rows: &[ProcessedRow],
    position: PositionRow,
) -> Result<()> {
    let mut tx = DB::begin_write(pool).await?;
    if !rows.is_empty() {
        DB::insert_processed_batch(&mut *tx, key, rows).await?;
    }
    DB::save_position(&mut *tx, key, position).await?;
    tx.commit().await.map_err(db)
}

fn processed_row(message: &CategoryMessage) -> ProcessedRow {
    ProcessedRow {
        id: message.id.to_string(),
        message_type: message.message_type.clone(),
        stream: message.stream_name.clone(),
        gp: message.global_position,
    }
}

fn parked_row(message: &CategoryMessage, error: &str, attempts: u32, status: &str) -> ParkedRow {
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
