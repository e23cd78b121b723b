//! What operators, health checks and tests ask of the outbox.

use std::time::Duration;

use uuid::Uuid;

use super::Outbox;
use super::backend::{Backend, Discard, OutboxRow, OutboxStatus, RowStatus};
use super::{lookup, wake};
use crate::client::WritePosition;
use crate::error::{Error, Result};

/// How many failed rows a timed-out `wait_sent` looks through for one that holds its row
/// back (oldest first).
const HELD_BY_SCAN: i64 = 10_000;

/// How often a discard reads the row again when it changed while being decided on.
const DISCARD_TRIES: usize = 5;

impl<DB: Backend> Outbox<DB> {
    /// Counts for health checks and metrics: pending, failed, sent, oldest pending age.
    ///
    /// `sent` and `unverified` are read from counts that triggers keep up to date (whatever
    /// changes a row: the sender, the sweep, the purge, or a statement run by hand), so they
    /// cost the same however many sent rows the retention keeps. `pending`, `failed`, `lost`
    /// and the oldest pending age are counted from partial indexes of their own: their cost
    /// grows with the backlog, not with the rows kept.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn status(&self) -> Result<OutboxStatus> {
        DB::status(self.pool(), self.namespace()).await
    }

    /// One row by message id, `None` when there is none (never written, or purged).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn row(&self, id: Uuid) -> Result<Option<OutboxRow>> {
        DB::row(self.pool(), self.namespace(), &id.to_string()).await
    }

    /// Rows parked by a permanent failure (oldest first, at most `limit`). Each holds back the
    /// later rows of its stream until it is retried or discarded.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative `limit`; [`Error::Database`].
    pub async fn failed(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        if limit < 0 {
            // PostgreSQL refuses a negative LIMIT, SQLite reads it as "no limit".
            return Err(Error::InvalidArgument(format!(
                "limit must not be negative, got {limit}"
            )));
        }
        DB::failed(self.pool(), self.namespace(), limit).await
    }

    /// Sends a failed row again (as it is). Returns `false` when no failed row has that id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn retry(&self, id: Uuid) -> Result<bool> {
        let done = DB::retry(self.pool(), self.namespace(), &id.to_string(), false).await?;
        if done {
            tracing::info!(%id, "outbox row retried by operator");
            wake::local_commit();
        }
        Ok(done)
    }

    /// Sends a failed row again without its expected version (for a version conflict the
    /// operator decided to override). Returns `false` when no failed row has that id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn retry_without_expected_version(&self, id: Uuid) -> Result<bool> {
        let done = DB::retry(self.pool(), self.namespace(), &id.to_string(), true).await?;
        if done {
            tracing::info!(%id, "outbox row retried without expected version by operator");
            wake::local_commit();
        }
        Ok(done)
    }

    /// Gives up on an unsent row: it is never sent, and its stream flows again. Returns
    /// `false` when no pending or failed row has that id.
    ///
    /// A row whose last attempt may have reached EventoDB unrecorded (its outcome is
    /// unknown, or the lease of a sender that stopped midway still covers it) is first
    /// looked up in EventoDB by its id, and refused if it is there.
    ///
    /// # Errors
    /// [`Error::OutboxRowInFlight`] when a sender holds the row right now (its stream is
    /// leased over it): the send may already be on its way, and a discard could not stop
    /// it; and while a write whose outcome is unknown may still land (until the row's next
    /// attempt is due: the sender waits as long again as that write took before it looks
    /// the row up). [`Error::OutboxRowAlreadySent`] when the lookup finds the event in EventoDB. The
    /// client's error when that lookup cannot read the stream (EventoDB down): whether the
    /// row was sent cannot be known then. [`Error::Database`].
    pub async fn discard(&self, id: Uuid) -> Result<bool> {
        let key = id.to_string();
        let in_flight = || Error::OutboxRowInFlight { id: key.clone() };
        // A row that keeps changing under the discard is being worked on by a sender.
        for _ in 0..DISCARD_TRIES {
            let Some(seen) = DB::discard_state(self.pool(), self.namespace(), &key).await? else {
                return Ok(false);
            };
            if !seen.unsent() {
                return Ok(false);
            }
            if seen.in_flight {
                return Err(in_flight());
            }
            if seen.outcome_unknown || seen.lapsed {
                let found =
                    lookup::find_in_stream(self.client(), &seen.stream, seen.expected_version, id)
                        .await?;
                if let Some(found) = found {
                    return Err(Error::OutboxRowAlreadySent {
                        id: key,
                        stream: seen.stream,
                        position: found.position,
                    });
                }
            }
            match DB::discard(self.pool(), self.namespace(), &key, &seen).await? {
                Discard::Done => {
                    tracing::warn!(%id, "outbox row discarded by operator");
                    wake::local_commit();
                    return Ok(true);
                }
                Discard::Gone => return Ok(false),
                Discard::InFlight => return Err(in_flight()),
                Discard::Moved => {}
            }
        }
        Err(in_flight())
    }

    /// Deletes verified sent rows (and discarded rows) older than `retention`, in batches of
    /// `batch` rows. Returns how many were deleted. The sender does this on its own (see
    /// [`SenderOptions::retention`](super::SenderOptions::retention)); rows not yet read back
    /// from EventoDB are kept.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `batch` under 1; [`Error::Database`].
    pub async fn purge(&self, retention: Duration, batch: i64) -> Result<u64> {
        self.purge_rows(retention, batch, true).await
    }

    /// As [`purge`](Self::purge), and also sent rows never read back from EventoDB: for an
    /// outbox whose senders run [`without_verification`](super::SenderOptions::without_verification),
    /// whose sent rows are never verified.
    ///
    /// # Errors
    /// As [`purge`](Self::purge).
    pub async fn purge_unverified_too(&self, retention: Duration, batch: i64) -> Result<u64> {
        self.purge_rows(retention, batch, false).await
    }

    async fn purge_rows(
        &self,
        retention: Duration,
        batch: i64,
        verified_only: bool,
    ) -> Result<u64> {
        if batch < 1 {
            return Err(Error::InvalidArgument(format!(
                "purge batch must be at least 1, got {batch}"
            )));
        }
        let mut total = 0;
        loop {
            let deleted = DB::purge(
                self.pool(),
                self.namespace(),
                retention,
                batch,
                verified_only,
            )
            .await?;
            total += deleted;
            if deleted < u64::try_from(batch).unwrap_or(0) || deleted == 0 {
                return Ok(total);
            }
        }
    }

    /// Waits until the row is sent and returns where EventoDB stored it (so the application
    /// can wait for a consumer to reach that global position). Gives up after `timeout`.
    ///
    /// # Errors
    /// [`Error::OutboxRowFailed`] at once when the row is parked by a permanent failure;
    /// [`Error::OutboxWaitTimeout`] after `timeout` (with the row's attempts and last error,
    /// and the failed row of its stream that holds it back, if one does);
    /// [`Error::InvalidArgument`] when no row has the id or it was discarded;
    /// [`Error::Database`].
    pub async fn wait_sent(&self, id: Uuid, timeout: Duration) -> Result<WritePosition> {
        let mut sent = wake::sent_rows();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            sent.borrow_and_update();
            let Some(row) = self.row(id).await? else {
                return Err(Error::InvalidArgument(format!("no outbox row has id {id}")));
            };
            match (row.status, row.position, row.global_position) {
                (RowStatus::Sent, Some(position), Some(global_position)) => {
                    return Ok(WritePosition {
                        position,
                        global_position,
                    });
                }
                (RowStatus::Discarded, ..) => {
                    return Err(Error::InvalidArgument(format!(
                        "outbox row {id} was discarded"
                    )));
                }
                (RowStatus::Failed, ..) => {
                    return Err(Error::OutboxRowFailed {
                        id: id.to_string(),
                        error: row.last_error.unwrap_or_default(),
                    });
                }
                _ => {}
            }
            // Another process may send it: poll as well as listen.
            let wait = tokio::time::sleep(Duration::from_millis(100));
            tokio::select! {
                _ = sent.changed() => {}
                () = wait => {}
                () = tokio::time::sleep_until(deadline) => {
                    // A failed row of the stream (it is always the stream's head) holds
                    // this one back, whatever the sender does.
                    let held_by = self
                        .failed(HELD_BY_SCAN)
                        .await?
                        .into_iter()
                        .find(|failed| failed.stream == row.stream)
                        .map(|failed| failed.id);
                    return Err(Error::OutboxWaitTimeout {
                        id: id.to_string(),
                        attempts: row.attempts,
                        last_error: row.last_error,
                        held_by,
                        after: timeout,
                    });
                }
            }
        }
    }
}
