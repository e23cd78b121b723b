//! [`ConsumerOptions`]: how a consumer reads, saves its position and reacts to failures.

use std::time::Duration;

/// What a consumer does with an event whose handler still fails after the retries.
/// Never a silent skip: every choice leaves a trace in the database or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Stop the consumer with [`Error::ConsumerStopped`](crate::Error::ConsumerStopped)
    /// (reported by [`RunningWorkers`](crate::RunningWorkers)). The position stays before
    /// the event, so a restarted consumer tries it again. The default.
    #[default]
    Stop,
    /// Park the event's stream: the event and every later event of that stream are recorded
    /// in `eventodb_kit_parked_events` and held back, other streams go on. An operator
    /// releases the stream ([`ConsumerAdmin::release_stream`](crate::consumer::ConsumerAdmin::release_stream))
    /// and the consumer then handles its parked events in order.
    ParkStream,
    /// Record the event as skipped (`eventodb_kit_parked_events` with status `skipped`, and
    /// a processed record) and go on with the next one.
    Skip,
}

/// Retries of a failing handler: `attempts` tries in all, waiting `initial`, doubling up to
/// `max` (with jitter) in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// `attempts` tries in all (at least 1), with waits from `initial` doubling up to `max`.
    pub fn new(attempts: u32, initial: Duration, max: Duration) -> Self {
        Self {
            attempts: attempts.max(1),
            initial,
            max: max.max(initial),
        }
    }

    /// A single try: no retry.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// Tries in all.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// How a consumer runs. Only the name is required.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use eventodb_kit::consumer::{ConsumerOptions, FailurePolicy};
///
/// let options = ConsumerOptions::new("projector")
///     .group(1, 3)
///     .batch_size(500)
///     .failure_policy(FailurePolicy::ParkStream);
/// assert_eq!(options.name(), "projector");
/// assert_eq!(options.poll_interval_value(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub(crate) name: String,
    pub(crate) category: Option<String>,
    pub(crate) batch_size: i64,
    pub(crate) poll_interval: Duration,
    pub(crate) position_update_interval: usize,
    pub(crate) correlation: Option<String>,
    pub(crate) group: Option<(i64, i64)>,
    pub(crate) transactional: bool,
    pub(crate) transaction_batch: usize,
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) strict_types: bool,
    pub(crate) read_retry_max: Duration,
    pub(crate) takeover_after: Option<Duration>,
}

impl ConsumerOptions {
    /// Options for the consumer `name`. The name keys its position and processed records:
    /// keep it stable across deployments, and give different consumers different names.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            category: None,
            batch_size: 100,
            poll_interval: Duration::from_secs(5),
            position_update_interval: 100,
            correlation: None,
            group: None,
            transactional: false,
            transaction_batch: 100,
            failure_policy: FailurePolicy::Stop,
            retry: RetryPolicy::default(),
            strict_types: false,
            read_retry_max: Duration::from_secs(30),
            takeover_after: None,
        }
    }

    /// The consumer name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read this category instead of the one the consumer declares. Spawning refuses an
    /// empty category (it would read every category of the namespace), one with a `-`
    /// (it would match nothing), and for a consumer whose category is fixed (a
    /// `#[consumer]`, see [`Consumer::category_is_fixed`](crate::consumer::Consumer::category_is_fixed))
    /// any category but its own, with [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Messages per `category.get` (1..=10000, default 100).
    pub fn batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size.clamp(1, 10_000);
        self
    }

    /// How often to read when no poke arrived (default 5 s): the fallback when live
    /// wake-ups are off or lost. Pokes wake the consumer at once.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The poll interval.
    pub fn poll_interval_value(&self) -> Duration {
        self.poll_interval
    }

    /// How long a member stays this instance's after it last said it is alive (default:
    /// three poll intervals, at least 30 s).
    ///
    /// One instance at a time runs a member (the consumer itself, or one member of a group):
    /// another process started with the same name and member (a second replica, or a
    /// deploy's new process while the old one still runs) stands by, and takes the member
    /// over when the running instance stops (at once after a shutdown or a failure, within
    /// a second) or, after a crash, once this long has passed without a heartbeat. The
    /// running instance says it is alive once per poll interval, and between events when
    /// busy: a handler that runs longer than this on one event lets a standby take over and
    /// handle that event again. Must be at least twice the poll interval, or the consumer
    /// refuses to start ([`Error::InvalidArgument`](crate::Error::InvalidArgument)).
    pub fn takeover_after(mut self, after: Duration) -> Self {
        self.takeover_after = Some(after);
        self
    }

    /// Save the position (and the processed records of a plain handler) after this many
    /// handled events, and at the end of every batch (default 100). A transactional
    /// consumer saves with every transaction instead (see
    /// [`transaction_batch`](Self::transaction_batch)).
    pub fn position_update_interval(mut self, events: usize) -> Self {
        self.position_update_interval = events.max(1);
        self
    }

    /// Only messages whose `metadata.correlationStreamName` is in this category (sent as
    /// `category.get`'s `correlation`, so the server's rule applies: a name `<category>-…`
    /// matches on every backend; messages without metadata never match). The position
    /// moves past the messages that do not match: when a read answers fewer than
    /// `batch_size` messages, the consumer reads on from its position without the filter
    /// and passes the messages that match on no backend. A Pebble-backed server looks at
    /// only `batch_size` messages per filtered read, and without that a consumer whose
    /// window held no matching message would wait there for good.
    ///
    /// The filter must be a category: an empty one, or one with a `-`, is refused when the
    /// consumer starts ([`Error::InvalidArgument`](crate::Error::InvalidArgument)), as the
    /// backends match those differently.
    pub fn correlation(mut self, correlation: impl Into<String>) -> Self {
        self.correlation = Some(correlation.into());
        self
    }

    /// Member `member` of a group of `size` (`0 <= member < size`). The server assigns
    /// the streams (`consumerGroup` of `category.get`); members share the consumer name,
    /// its processed records and its parked streams, and each saves its own position.
    ///
    /// A member's position also moves past the other members' events: when a grouped read
    /// answers fewer than `batch_size` messages, the member reads on from its position
    /// without the group and passes what is not its own. A Pebble-backed server looks at
    /// only `batch_size × size` messages per grouped read, and without that a member whose
    /// window held none of its events would wait there for good. With a
    /// [`correlation`](Self::correlation) filter too, it passes the messages that either
    /// rule keeps from it.
    ///
    /// A stream whose name has no cardinal id (no `-`, like `account`) is given to no member
    /// by the server (protocol §3.4), so a group never handles its events; member 0 logs a
    /// warning for each such stream it passes.
    pub fn group(mut self, member: i64, size: i64) -> Self {
        self.group = Some((member, size));
        self
    }

    /// Run each event in a database transaction that also records it as processed and
    /// saves the position: the handler's writes through
    /// [`Context::transaction`](crate::consumer::Context::transaction) happen exactly once.
    /// Several events share one transaction, each in a savepoint of its own: see
    /// [`transaction_batch`](Self::transaction_batch).
    pub fn transactional(mut self, on: bool) -> Self {
        self.transactional = on;
        self
    }

    /// How many events a transactional consumer handles in one database transaction, at
    /// most (default 100; at least 1). Only matters with
    /// [`transactional`](Self::transactional).
    ///
    /// Why: a commit waits for the database to flush its log (a few milliseconds on
    /// PostgreSQL with `fsync`), so one transaction per event caps a consumer at a few
    /// hundred events a second whatever the handler costs. With batching, the events of
    /// one read share a transaction: each gets a savepoint in which its processed record
    /// is claimed and its handler runs (the handler's
    /// [`Context::transaction`](crate::consumer::Context::transaction) is that savepoint),
    /// and the transaction commits the handled events and the position together. The
    /// effects stay exactly once: a handler that fails rolls back to its savepoint only;
    /// the events before it are committed, and the failing one is retried on its own, one
    /// transaction per try, under the [`retry`](Self::retry) and
    /// [`failure_policy`](Self::failure_policy) as without batching. A transaction never
    /// spans two reads (at most [`batch_size`](Self::batch_size) events), and it commits
    /// before the consumer waits for more events, so an idle consumer holds nothing open.
    ///
    /// Trade-offs: a crash or a database error loses the uncommitted part of the batch,
    /// which is then handled again (its effects were rolled back, so still once); handler
    /// work outside the database is redone for it. The transaction holds its locks, and on
    /// SQLite the database's write lock, until it commits, so other writers wait up to one
    /// batch of handlers: lower it when handlers are slow or hold hot rows, `1` commits
    /// every event on its own (no savepoints). On a graceful shutdown the events handled
    /// so far are committed.
    pub fn transaction_batch(mut self, events: usize) -> Self {
        self.transaction_batch = events.max(1);
        self
    }

    /// What to do with an event whose handler keeps failing (default
    /// [`FailurePolicy::Stop`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// Retries before the failure policy applies (default 5 tries, 100 ms to 10 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Treat an event type without a handler as a failure (default: ignore it).
    pub fn strict_types(mut self, strict: bool) -> Self {
        self.strict_types = strict;
        self
    }

    /// Longest wait between retries of infrastructure failures (default 30 s): a failing
    /// `category.get`, and database errors while handling an event or saving the position.
    /// Those are retried for as long as they last and never count as a handler's tries.
    pub fn read_retry_max(mut self, max: Duration) -> Self {
        self.read_retry_max = max.max(Duration::from_millis(10));
        self
    }
}
