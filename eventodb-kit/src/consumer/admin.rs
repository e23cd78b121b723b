//! [`ConsumerAdmin`]: what an operator sees of and does to consumers (positions, parked and
//! skipped events, releasing a parked stream).

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use serde_json::Value;
use sqlx::Pool;
use tokio::sync::watch;

use super::store::{Key, MemberStateRow, ParkedRow};
use crate::client::MessageId;
use crate::error::{Error, Result};
use crate::outbox::Backend;

static OPERATOR_ACTIONS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Changes whenever a stream is released or a position reset in this process (consumers
/// then look at their parked streams and their reset count at once; what other processes
/// do is seen within a poll interval).
pub(crate) fn operator_signal() -> watch::Receiver<u64> {
    OPERATOR_ACTIONS.subscribe()
}

fn signal_operator_action() {
    OPERATOR_ACTIONS.send_modify(|generation| *generation = generation.wrapping_add(1));
}

/// A saved consumer position (one per group member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerPosition {
    /// The member (0 without a group).
    pub member: i64,
    /// The group size it ran with (1 without a group).
    pub size: i64,
    /// The last global position handled.
    pub global_position: i64,
    /// Whether it runs, as it last recorded.
    pub state: MemberState,
}

/// What a consumer (group member) last recorded of itself. A running member says it is
/// alive at least once per poll interval; ages are by the database's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// Its task runs: seen within [`MemberState::SILENT_AFTER`] poll intervals.
    Running {
        /// Since it last said it was alive.
        last_seen: Duration,
    },
    /// It did not stop, yet has not been seen for longer than that: its process died or
    /// hangs (a handler that never returns).
    Silent {
        /// Since it last said it was alive.
        last_seen: Duration,
    },
    /// Its task ended: shut down (`error` is `None`), or ended by an error or its failure
    /// policy ([`FailurePolicy::Stop`](crate::consumer::FailurePolicy::Stop)).
    Stopped {
        /// Since it ended.
        ago: Duration,
        /// What ended it, with its causes.
        error: Option<String>,
    },
    /// Never recorded: the row was made for a group member that has not started yet, or by
    /// a version of eventodb-kit before migration 14 (PostgreSQL) / 12 (SQLite).
    Unknown,
}

impl MemberState {
    /// Missed heartbeats (poll intervals, plus 1 s of slack) after which a member that did
    /// not stop counts as [`MemberState::Silent`]. A member says it is alive between
    /// events and during its backoffs too, so only a handler that runs that long makes a
    /// live one look silent.
    pub const SILENT_AFTER: u32 = 3;

    fn from_row(row: &MemberStateRow) -> Self {
        let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        // A stop counts unless the member was seen after it: during a rolling deploy the old
        // process may record its stop after the new one started under the same name.
        if let Some(stopped) = row.stopped_ms
            && row.seen_ms.is_none_or(|seen| stopped <= seen)
        {
            return MemberState::Stopped {
                ago: millis(stopped),
                error: row.stop_error.clone(),
            };
        }
        let Some(seen) = row.seen_ms else {
            return MemberState::Unknown;
        };
        let heartbeat = millis(row.heartbeat_ms.unwrap_or(0));
        let last_seen = millis(seen);
        if last_seen > heartbeat * Self::SILENT_AFTER + Duration::from_secs(1) {
            MemberState::Silent { last_seen }
        } else {
            MemberState::Running { last_seen }
        }
    }
}

/// An event a consumer parked or skipped, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedEvent {
    /// The event id, as the consumer read it from EventoDB.
    pub id: MessageId,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub message_type: String,
    /// Its stream position.
    pub position: i64,
    /// Its global position.
    pub global_position: i64,
    /// Its data.
    pub data: Value,
    /// Its metadata.
    pub metadata: Option<Value>,
    /// The handler's last error (for an event held back behind another: says so).
    pub error: String,
    /// Tries so far (0 for an event held back without being tried).
    pub attempts: i64,
}

impl From<ParkedRow> for ParkedEvent {
    fn from(row: ParkedRow) -> Self {
        Self {
            id: MessageId::new(row.event_id),
            stream: row.stream,
            message_type: row.message_type,
            position: row.position,
            global_position: row.global_position,
            data: row.data,
            metadata: row.metadata,
            error: row.error,
            attempts: row.attempts,
        }
    }
}

/// A consumer known to the database (it saved a position or holds back a stream).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsumerName {
    /// The category it reads.
    pub category: String,
    /// Its name (shared by the members of a group).
    pub consumer: String,
}

/// Operator access to the consumers' state of one namespace.
///
/// # Examples
/// ```no_run
/// use eventodb_kit::consumer::ConsumerAdmin;
///
/// # async fn run(pool: sqlx::SqlitePool) -> eventodb_kit::Result<()> {
/// let admin = ConsumerAdmin::new(pool, "default");
/// for event in admin.parked("account", "projector").await? {
///     println!("{} {}: {}", event.stream, event.global_position, event.error);
/// }
/// admin.release_stream("account", "projector", "account-7").await?;
/// # Ok(()) }
/// ```
pub struct ConsumerAdmin<DB: Backend> {
    pool: Pool<DB>,
    namespace: String,
}

impl<DB: Backend> Clone for ConsumerAdmin<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for ConsumerAdmin<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerAdmin")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> ConsumerAdmin<DB> {
    /// The consumers of `namespace` whose state is in `pool`.
    pub fn new(pool: Pool<DB>, namespace: impl Into<String>) -> Self {
        Self {
            pool,
            namespace: namespace.into(),
        }
    }

    /// The consumers of a kit's namespace.
    pub fn for_kit(kit: &crate::Kit<DB>) -> Self {
        Self::new(kit.pool().clone(), kit.namespace())
    }

    fn key(&self, category: &str, consumer: &str) -> Key {
        Key {
            namespace: self.namespace.clone(),
            category: category.to_owned(),
            consumer: consumer.to_owned(),
        }
    }

    /// The saved positions of a consumer (one per group member), with whether each runs.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn positions(&self, category: &str, consumer: &str) -> Result<Vec<ConsumerPosition>> {
        let mut rows: Vec<ConsumerPosition> =
            DB::member_states(&self.pool, &self.key(category, consumer))
                .await?
                .iter()
                .map(|row| ConsumerPosition {
                    member: row.position.member,
                    size: row.position.size,
                    global_position: row.position.global_position,
                    state: MemberState::from_row(row),
                })
                .collect();
        rows.sort_by_key(|row| (row.size, row.member));
        Ok(rows)
    }

    /// Every consumer of the namespace that saved a position or holds back a stream,
    /// sorted by category and name.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn consumers(&self) -> Result<Vec<ConsumerName>> {
        Ok(DB::consumers(&self.pool, &self.namespace)
            .await?
            .into_iter()
            .map(|(category, consumer)| ConsumerName { category, consumer })
            .collect())
    }

    /// Moves every member of a consumer to `global_position` (the last position to treat
    /// as handled) and forgets its processed records above it, so the events after it are
    /// handled again (or, moving forward, skipped). Returns how many member positions
    /// changed (`0`: the consumer never saved one).
    ///
    /// A consumer running meanwhile starts again from the reset position: an idle one at
    /// once in this process and within its poll interval in another, a busy one at its
    /// next save (within its
    /// [`position_update_interval`](crate::consumer::ConsumerOptions::position_update_interval)
    /// of events), which is rolled back. A plain consumer's handler may so see the
    /// events it handled since its last save once more; a transactional handler's work on
    /// them is rolled back with the save.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative position; [`Error::Database`].
    pub async fn reset_position(
        &self,
        category: &str,
        consumer: &str,
        global_position: i64,
    ) -> Result<u64> {
        if global_position < 0 {
            return Err(Error::InvalidArgument(format!(
                "a consumer position is a global position >= 0, not {global_position}"
            )));
        }
        let mut tx = DB::begin_write(&self.pool).await?;
        let changed =
            DB::reset_position(&mut *tx, &self.key(category, consumer), global_position).await?;
        tx.commit()
            .await
            .map_err(|source| Error::Database { source })?;
        if changed > 0 {
            tracing::warn!(%category, %consumer, global_position, "consumer position reset by operator");
            signal_operator_action();
        }
        Ok(changed)
    }

    /// Parked events (the failing ones and those held back behind them), oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn parked(&self, category: &str, consumer: &str) -> Result<Vec<ParkedEvent>> {
        self.events(category, consumer, "parked").await
    }

    /// Events skipped by the [`Skip`](crate::consumer::FailurePolicy::Skip) policy, oldest
    /// first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn skipped(&self, category: &str, consumer: &str) -> Result<Vec<ParkedEvent>> {
        self.events(category, consumer, "skipped").await
    }

    async fn events(
        &self,
        category: &str,
        consumer: &str,
        status: &str,
    ) -> Result<Vec<ParkedEvent>> {
        let rows =
            DB::parked_events(&self.pool, &self.key(category, consumer), None, status).await?;
        Ok(rows.into_iter().map(ParkedEvent::from).collect())
    }

    /// The streams a consumer holds back.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn parked_streams(&self, category: &str, consumer: &str) -> Result<Vec<String>> {
        let mut streams: Vec<String> =
            DB::parked_streams(&self.pool, &self.key(category, consumer))
                .await?
                .into_iter()
                .map(|(stream, _)| stream)
                .collect();
        streams.sort();
        Ok(streams)
    }

    /// Releases a parked stream: the consumer handles its parked events in order, then the
    /// stream flows again (an event that fails again parks it again). Returns `false` when
    /// the stream is not parked. Consumers in this process react at once, others at their
    /// next poll.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn release_stream(
        &self,
        category: &str,
        consumer: &str,
        stream: &str,
    ) -> Result<bool> {
        let released =
            DB::release_stream(&self.pool, &self.key(category, consumer), stream).await?;
        if released {
            tracing::info!(%category, %consumer, %stream, "stream released");
            signal_operator_action();
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::store::PositionRow;

    fn row(seen: Option<i64>, stopped: Option<i64>, error: Option<&str>) -> MemberStateRow {
        MemberStateRow {
            position: PositionRow {
                member: 0,
                size: 1,
                global_position: 7,
            },
            seen_ms: seen,
            heartbeat_ms: Some(5_000),
            stopped_ms: stopped,
            stop_error: error.map(str::to_owned),
        }
    }

    #[test]
    fn a_member_is_silent_after_three_missed_heartbeats_and_a_second() {
        let ms = Duration::from_millis;
        assert_eq!(
            MemberState::from_row(&row(Some(16_000), None, None)),
            MemberState::Running {
                last_seen: ms(16_000)
            }
        );
        assert_eq!(
            MemberState::from_row(&row(Some(16_001), None, None)),
            MemberState::Silent {
                last_seen: ms(16_001)
            }
        );
        assert_eq!(
            MemberState::from_row(&row(Some(60_000), Some(2_000), Some("boom"))),
            MemberState::Stopped {
                ago: ms(2_000),
                error: Some("boom".into())
            },
            "a stop outranks the heartbeat"
        );
        assert_eq!(
            MemberState::from_row(&row(Some(1_000), Some(4_000), None)),
            MemberState::Running {
                last_seen: ms(1_000)
            },
            "seen after the stop: another process runs it now"
        );
        assert_eq!(
            MemberState::from_row(&row(None, None, None)),
            MemberState::Unknown
        );
    }
}
