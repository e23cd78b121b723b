//! Sending the claimed rows of one stream, in order, exactly once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use uuid::Uuid;

use super::run::{Mark, Shared};
use super::settle::Unrecorded;
use crate::client::{WriteOptions, WritePosition};
use crate::error::{Error, Result};
use crate::outbox::backend::{Backend, Claimed, DialectKind};
use crate::outbox::lookup;

/// The claimed rows of one stream, in `seq` order.
#[derive(Debug)]
pub(super) struct StreamBatch {
    pub(super) stream: String,
    pub(super) rows: Vec<Claimed>,
    /// The lease token of the claim (unique per claim, so that a task whose lease expired
    /// and passed to another task, even of the same sender, learns it at its next renewal).
    pub(super) lease_owner: String,
    /// When the claim started: the lease runs out at `claimed_at + lease` at the latest.
    pub(super) claimed_at: Instant,
}

/// What became of one row.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// In EventoDB and recorded: go on with the next row.
    Sent,
    /// Waiting for a retry or parked: the stream's later rows wait too.
    Held,
    /// The stream's lease passed to another sender: stop, nothing more is this task's.
    LeaseLost,
}

/// Claims a stream task makes for its own stream before it gives its slot back.
const ROUNDS: usize = 20;

/// How long a stream task keeps its slot while other streams wait for one. Sends within a
/// stream are one after the other, so a stream holding its slot to the end leaves the other
/// streams waiting, and at the end of a drain only the longest streams are left, each with
/// one send in flight: with every request to the embedded server delayed 2 ms, 100 streams
/// of 200 events on 32 slots spent the last seventh of the drain sending 4 streams (6,000
/// events/s; 6,300 to 6,500 with this slice, the raw client 7,300 to 7,700). A slice of
/// 100 ms did as well there, but in the outbox bench (no delay) each turn is a claim more,
/// and PostgreSQL drained at 0.46 to 0.53 of the raw client against 0.60 to 0.71 without
/// slices; with 500 ms, 0.61.
pub(super) const SLICE: Duration = Duration::from_millis(500);

/// Sends the rows of one stream one after the other, then claims the stream's next rows
/// (a few rounds). Stops at the first row that cannot be sent (its later rows are released,
/// to be claimed again once it is sent) and between rows on shutdown.
pub(super) async fn send_stream<DB: Backend>(shared: Arc<Shared<DB>>, batch: StreamBatch) {
    let StreamBatch {
        stream,
        rows,
        lease_owner,
        claimed_at,
    } = batch;
    let task = StreamTask {
        shared: &shared,
        stream: &stream,
        lease_owner: &lease_owner,
    };
    let unrecorded = Arc::new(Unrecorded::default());
    let Some(first) = rows.first() else { return };
    let permit = tokio::select! {
        permit = shared.permits.acquire() => permit.ok(),
        () = shared.cancel.cancelled() => None,
    };
    if permit.is_none() {
        task.release(first.seq - 1).await;
        return;
    }
    let lease = shared.options.lease;
    // When the lease may run out, by this task's clock (it started no later than the claim).
    let mut lease_ends = claimed_at + lease;
    let slice_ends = Instant::now() + SLICE;
    let slice_over =
        || shared.streams_waiting.load(Ordering::Relaxed) && Instant::now() >= slice_ends;
    let mut rows = rows;
    // Rows taken under this lease: with one, no other row can lie inside its range.
    let mut taken = rows.len();
    for round in 1..=ROUNDS {
        for (at, row) in rows.iter().enumerate() {
            // At least one send per slot taken, however long the claim took.
            let yielding = (round > 1 || at > 0) && slice_over();
            if shared.cancel.is_cancelled() || yielding {
                task.release(row.seq - 1).await;
                task.settle(&unrecorded, lease_ends, taken);
                return;
            }
            // Fencing: never send on a lease that may have passed to another task.
            match keep_lease(&shared, &stream, &lease_owner, &mut lease_ends).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%stream, "outbox lease lost to another sender; stopping this stream");
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = crate::error::log_field(&error), %stream, "outbox lease renewal failed; stopping this stream");
                    task.release(row.seq - 1).await;
                    task.settle(&unrecorded, lease_ends, taken);
                    return;
                }
            }
            match send_row(&shared, row, &mut lease_ends, &lease_owner, &unrecorded).await {
                Ok(Step::Sent) => {}
                Ok(Step::LeaseLost) => {
                    tracing::warn!(%stream, "outbox lease lost to another sender; stopping this stream");
                    return;
                }
                Ok(Step::Held) => {
                    // The row's own state now holds the stream back (parked, or waiting for
                    // its retry); the lease keeps only the rows sent before it.
                    task.release(row.seq - 1).await;
                    task.settle(&unrecorded, lease_ends, taken);
                    return;
                }
                Err(error) => {
                    // Recording failed: the row keeps its lease and is checked against the
                    // stream by whoever claims it after the lease (never settled: it may
                    // have reached EventoDB, and nothing on record says so).
                    tracing::warn!(error = crate::error::log_field(&error), %stream, id = %row.id, "outbox could not record a send");
                    task.release(row.seq).await;
                    return;
                }
            }
        }
        let more = rows.last().is_some_and(|row| row.more_after);
        if shared.cancel.is_cancelled() || round == ROUNDS || !more || slice_over() {
            // Give the slot back, with nothing left leased here: after the last round or the
            // slice (the main claim takes the stream up again, after the streams waiting),
            // or when the claim already took every row the stream had (rows committed since
            // then wake the main claim, as do these rows once recorded).
            task.settle(&unrecorded, lease_ends, taken);
            return;
        }
        // Keep the stream while it has rows: no round trip through the main claim.
        let claiming = Instant::now();
        match DB::claim_stream(
            shared.outbox.pool(),
            shared.outbox.namespace(),
            &stream,
            &lease_owner,
            lease,
            shared.options.batch_size,
            &unrecorded.up_to(rows.last().map_or(0, |row| row.seq)),
        )
        .await
        {
            Ok(next) if !next.is_empty() => {
                taken += next.len();
                rows = next;
                lease_ends = claiming + lease;
            }
            Ok(_) => {
                // Also when a row it did not take waits below the ones it sent: settling
                // lets the main claim take the stream from that row (whatever the count).
                task.settle(&unrecorded, lease_ends, taken.max(2));
                return;
            }
            Err(error) => {
                tracing::warn!(error = crate::error::log_field(&error), %stream, "outbox claim failed");
                // Its commit may have taken effect: the lease would then cover the next rows
                // (never sent, so settling gives them back too).
                task.release(rows.last().map_or(0, |row| row.seq)).await;
                task.settle(&unrecorded, lease_ends, taken);
                return;
            }
        }
    }
}

/// The stream and lease one task works under.
struct StreamTask<'a, DB: Backend> {
    shared: &'a Arc<Shared<DB>>,
    stream: &'a str,
    lease_owner: &'a str,
}

impl<DB: Backend> StreamTask<'_, DB> {
    /// Shrinks this task's lease on the stream to the rows up to `after_seq`: those were sent
    /// and may not be recorded yet, so they stay fenced until they are (or the lease ends).
    async fn release(&self, after_seq: i64) {
        if let Err(error) = DB::release(
            self.shared.outbox.pool(),
            self.shared.outbox.namespace(),
            self.stream,
            self.lease_owner,
            after_seq,
        )
        .await
        {
            tracing::warn!(error = crate::error::log_field(&error), stream = %self.stream, "outbox lease release failed; trying again later");
            self.shared.release_later(super::run::Release::Stream {
                stream: self.stream.to_owned(),
                owner: self.lease_owner.to_owned(),
                after_seq,
            });
        }
    }

    /// Once the sends handed to the recorder are written (within the lease), shrinks the
    /// lease to no row, so that a row committed late inside its range is claimed at once
    /// (see [`settle`](super::settle)). Only the task's own sends can leave a row of its
    /// range pending and sent; every other outcome is on record already. Not on SQLite:
    /// its writers take the database's lock before they draw a `seq` and hold it until they
    /// commit, so no row ever becomes visible behind a later one.
    /// Nor when the task took one row: its lease's range holds no other.
    fn settle(&self, unrecorded: &Arc<Unrecorded>, lease_ends: Instant, taken: usize) {
        if DB::KIND == DialectKind::Sqlite || taken < 2 {
            return;
        }
        super::settle::settle(
            self.shared,
            self.stream.to_owned(),
            self.lease_owner.to_owned(),
            Arc::clone(unrecorded),
            lease_ends,
        );
    }
}

/// Sends one row under the task's lease (owned by `owner`, running out at `lease_ends` by
/// the task's clock, which a long lookup renews); records the outcome.
async fn send_row<DB: Backend>(
    shared: &Shared<DB>,
    row: &Claimed,
    lease_ends: &mut Instant,
    owner: &str,
    unrecorded: &Arc<Unrecorded>,
) -> Result<Step> {
    let client = shared.outbox.client();
    let pool = shared.outbox.pool();
    let lease = shared.options.lease;
    let id = Uuid::parse_str(&row.id)
        .map_err(|error| Error::Internal(format!("outbox id {:?}: {error}", row.id)))?;
    let entered = Instant::now();
    if row.outcome_unknown {
        match look_up(shared, row, id, owner, lease_ends).await {
            Ok(Lookup::Found(position)) => {
                tracing::info!(
                    stream = %row.stream, %id, position = position.position,
                    "outbox row was already in EventoDB (earlier attempt landed)"
                );
                return sent(shared, row, position, unrecorded);
            }
            Ok(Lookup::Absent) => {
                if !DB::clear_unknown(pool, row.seq, row.attempts).await? {
                    // Tried meanwhile by a sender that took the stream over after this
                    // task's lease ran out: settling that attempt is its job.
                    return Ok(Step::LeaseLost);
                }
            }
            Ok(Lookup::LeaseLost) => return Ok(Step::LeaseLost),
            Err(error) => return retry(shared, row, &error, true).await,
        }
    }
    let mut options = WriteOptions::new().id(id);
    if let Some(version) = row.expected_version {
        options = options.expected_version(version);
    }
    match keep_lease(shared, &row.stream, owner, lease_ends).await {
        Ok(true) => {}
        Ok(false) => return Ok(Step::LeaseLost),
        // Not started: nothing can have reached EventoDB.
        Err(error) => return retry(shared, row, &error, false).await,
    }
    let started = Instant::now();
    let deadline = deadline_of(*lease_ends, lease);
    if started >= deadline {
        // Not started: nothing can have reached EventoDB.
        return retry(
            shared,
            row,
            &out_of_lease(row, "no time left to write the row", entered, deadline),
            false,
        )
        .await;
    }
    let written = tokio::time::timeout_at(
        deadline,
        client.stream_write(&row.stream, &row.message, &options),
    )
    .await
    .unwrap_or_else(|_| Err(out_of_lease(row, "stream.write", entered, deadline)));
    match written {
        Ok(position) => {
            tracing::debug!(
                stream = %row.stream, %id, position = position.position,
                global_position = position.global_position, took = ?started.elapsed(),
                "outbox row sent"
            );
            sent(shared, row, position, unrecorded)
        }
        Err(error) if error.is_duplicate_id() || error.is_version_conflict() => {
            // A duplicate id proves an earlier attempt landed; a version conflict may be our
            // own earlier write. Look before deciding.
            match look_up(shared, row, id, owner, lease_ends).await {
                Ok(Lookup::Found(position)) => {
                    tracing::info!(
                        stream = %row.stream, %id, position = position.position,
                        "outbox row was already in EventoDB (earlier attempt landed)"
                    );
                    sent(shared, row, position, unrecorded)
                }
                Ok(Lookup::Absent) if error.is_duplicate_id() => {
                    let text = format!(
                        "message id {id} is already used by another stream in the namespace: {error}"
                    );
                    fail(shared, row, &text, false).await
                }
                Ok(Lookup::Absent) => fail(shared, row, &error.to_string(), false).await,
                // Refused, so not written: whoever has the stream now decides.
                Ok(Lookup::LeaseLost) => Ok(Step::LeaseLost),
                Err(lookup) => retry(shared, row, &lookup, false).await,
            }
        }
        Err(error @ Error::Decode { .. }) => {
            // A 200 whose body is not a write's result (a proxy, another server version):
            // the write happened, and only the stream can say where.
            match look_up(shared, row, id, owner, lease_ends).await {
                Ok(Lookup::Found(position)) => {
                    tracing::warn!(
                        stream = %row.stream, %id, position = position.position, error = crate::error::log_field(&error),
                        "outbox row sent; its reply could not be read, so it was looked up"
                    );
                    sent(shared, row, position, unrecorded)
                }
                Ok(Lookup::Absent) => fail(shared, row, &error.to_string(), false).await,
                // Whoever took the stream over looks the row up (the lease's rows are marked
                // outcome unknown when it is taken).
                Ok(Lookup::LeaseLost) => Ok(Step::LeaseLost),
                Err(lookup) => retry(shared, row, &lookup, true).await,
            }
        }
        Err(error) if error.is_transient() => {
            let unknown = error.outcome_unknown();
            // A write this sender stopped waiting for may still be running in EventoDB
            // (nothing stops a handler whose client went away, and a write can queue behind
            // a stalled one), and land after a lookup made at once found nothing: a second
            // copy on Pebble. The lookup waits as long again as the attempt took.
            let at_least = if unknown {
                started.elapsed()
            } else {
                Duration::ZERO
            };
            retry_after(shared, row, &error, unknown, at_least).await
        }
        Err(error) => fail(shared, row, &error.to_string(), false).await,
    }
}

/// Hands the send to the recorder (the row stays leased until it is written).
fn sent<DB: Backend>(
    shared: &Shared<DB>,
    row: &Claimed,
    position: WritePosition,
    unrecorded: &Arc<Unrecorded>,
) -> Result<Step> {
    crate::metrics::outbox_sent(shared.outbox.namespace());
    unrecorded.add(row.seq);
    shared
        .marks
        .send(Mark {
            row: (row.seq, position.position, position.global_position),
            unrecorded: Arc::clone(unrecorded),
        })
        .map_err(|_| Error::Internal("outbox recorder stopped".into()))?;
    Ok(Step::Sent)
}

async fn retry<DB: Backend>(
    shared: &Shared<DB>,
    row: &Claimed,
    error: &Error,
    outcome_unknown: bool,
) -> Result<Step> {
    retry_after(shared, row, error, outcome_unknown, Duration::ZERO).await
}

/// [`retry`], waiting at least `at_least` (and the backoff).
async fn retry_after<DB: Backend>(
    shared: &Shared<DB>,
    row: &Claimed,
    error: &Error,
    outcome_unknown: bool,
    at_least: Duration,
) -> Result<Step> {
    let options = &shared.options;
    let delay = backoff(options.retry_initial, options.retry_max, row.attempts + 1).max(at_least);
    crate::metrics::outbox_send_failed(shared.outbox.namespace(), false);
    tracing::warn!(
        stream = %row.stream, id = %row.id, attempts = row.attempts + 1, retry_in = ?delay,
        outcome_unknown, error = crate::error::log_field(error), "outbox send failed; will retry"
    );
    DB::mark_retry(
        shared.outbox.pool(),
        row.seq,
        &crate::error::with_causes(error),
        delay,
        outcome_unknown,
    )
    .await?;
    Ok(Step::Held)
}

async fn fail<DB: Backend>(
    shared: &Shared<DB>,
    row: &Claimed,
    text: &str,
    outcome_unknown: bool,
) -> Result<Step> {
    crate::metrics::outbox_send_failed(shared.outbox.namespace(), true);
    tracing::error!(
        stream = %row.stream, id = %row.id, error = %text,
        "outbox send failed permanently; the stream is parked until the row is retried or discarded"
    );
    DB::mark_failed(shared.outbox.pool(), row.seq, text, outcome_unknown).await?;
    Ok(Step::Held)
}

/// Renews the task's lease on `stream` once less than half of it is left by the task's clock
/// (`lease_ends`, moved on when renewed). `false` when the lease passed to another sender.
async fn keep_lease<DB: Backend>(
    shared: &Shared<DB>,
    stream: &str,
    owner: &str,
    lease_ends: &mut Instant,
) -> Result<bool> {
    let lease = shared.options.lease;
    if lease_ends.saturating_duration_since(Instant::now()) >= lease / 2 {
        return Ok(true);
    }
    let renewing = Instant::now();
    let pool = shared.outbox.pool();
    match DB::renew(pool, shared.outbox.namespace(), stream, owner, lease).await? {
        0 => Ok(false),
        _ => {
            *lease_ends = renewing + lease;
            Ok(true)
        }
    }
}

/// A send still running when the lease ends could land after another task has looked for
/// it and sent it again: each request of the task gives up a tenth of the lease before its
/// end by the task's clock (outcome unknown, looked up before the next attempt).
fn deadline_of(lease_ends: Instant, lease: Duration) -> Instant {
    lease_ends.checked_sub(lease / 10).unwrap_or(lease_ends)
}

/// The timeout of a request cut short at `deadline` by the row's lease, for `what` (e.g.
/// `stream.write`) begun at `entered`.
fn out_of_lease(row: &Claimed, what: &str, entered: Instant, deadline: Instant) -> Error {
    Error::Timeout {
        url: format!("{what} in {} (the row's lease ran out)", row.stream),
        after: deadline.saturating_duration_since(entered),
    }
}

/// What [`look_up`] found.
enum Lookup {
    /// The row's id is in its stream, there.
    Found(WritePosition),
    /// It is not.
    Absent,
    /// The task's lease on the stream passed to another sender before the search ended.
    LeaseLost,
}

/// Looks for the row's id in its stream page by page, each read within the task's lease,
/// renewed between reads: a long stream is looked through however long it takes, never past
/// a lease another sender may have taken over (whose records this task's would overwrite:
/// a row parked, or put off, by a task that no longer has it).
async fn look_up<DB: Backend>(
    shared: &Shared<DB>,
    row: &Claimed,
    id: Uuid,
    owner: &str,
    lease_ends: &mut Instant,
) -> Result<Lookup> {
    let lease = shared.options.lease;
    let entered = Instant::now();
    let mut search = lookup::StreamSearch::new(
        shared.outbox.client(),
        &row.stream,
        row.expected_version,
        id,
    );
    loop {
        if !keep_lease(shared, &row.stream, owner, lease_ends).await? {
            return Ok(Lookup::LeaseLost);
        }
        let deadline = deadline_of(*lease_ends, lease);
        match tokio::time::timeout_at(deadline, search.next_page()).await {
            Err(_) => return Err(out_of_lease(row, "looking up the row", entered, deadline)),
            Ok(page) => match page? {
                Some(Some(position)) => return Ok(Lookup::Found(position)),
                Some(None) => return Ok(Lookup::Absent),
                None => {}
            },
        }
    }
}

/// Capped exponential backoff with jitter: `initial * 2^(attempt-1)`, at most `max`, then a
/// random value between half of it and all of it.
pub(super) fn backoff(initial: Duration, max: Duration, attempt: i64) -> Duration {
    let exponent = u32::try_from((attempt - 1).clamp(0, 30)).unwrap_or(30);
    let base = initial
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(max);
    base.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 1..40 {
            let delay = backoff(initial, max, attempt);
            let exponent = u32::try_from((attempt - 1).min(30)).unwrap();
            let base = initial
                .saturating_mul(2u32.saturating_pow(exponent))
                .min(max);
            assert!(delay <= base, "attempt {attempt}: {delay:?} > {base:?}");
            assert!(
                delay >= base / 2,
                "attempt {attempt}: {delay:?} < half of {base:?}"
            );
        }
        assert!(backoff(initial, max, 100) <= max);
        assert!(backoff(initial, max, 0) <= initial);
    }
}
