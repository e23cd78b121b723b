//! The consumer task: read a batch from the position, handle each message once (retrying
//! and applying the failure policy), save the position and the processed records, sleep
//! until a poke, a poll or a release. Parked streams are read again every poll interval,
//! busy or not, to see releases made elsewhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Pool, Transaction};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::admin::operator_signal;
use super::backoff;
use super::group;
use super::handle::Shared;
use super::handler::Consumer;
use super::hub::{Hub, Registration};
use super::options::ConsumerOptions;
use super::store::{Key, PositionRow, ProcessedRow};
use crate::client::{CategoryMessage, Client, GetCategoryOptions};
use crate::error::{Error, Result};
use crate::outbox::Backend;

mod attempt;
mod batch;
mod kept;
mod others;
mod parked;
mod retry;
mod save;

use kept::LastRead;
use others::Passed;
use save::saved;

/// How many update intervals of handled events a plain consumer may run ahead of its
/// saves while one save is still running, before it waits for that save.
const COALESCE_LIMIT: usize = 8;

/// How often processed records below every member's position are purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(300);

/// How long a consumer whose database could not be reached at the start waits before it
/// tries again; also how often an instance standing by looks whether its member is free.
const LOAD_RETRY: Duration = Duration::from_secs(1);

/// The shortest time a member's position row stays its instance's between heartbeats (see
/// [`ownership_lease`]).
const MIN_OWNERSHIP: Duration = Duration::from_secs(30);

/// How long a member's row stays its instance's without a heartbeat (see
/// [`ConsumerOptions::takeover_after`]): by default three poll intervals (the heartbeat comes
/// once per interval), and at least [`MIN_OWNERSHIP`], since a busy consumer says it is
/// alive only between events.
fn ownership_lease(options: &ConsumerOptions) -> Duration {
    options
        .takeover_after
        .unwrap_or_else(|| options.poll_interval.saturating_mul(3).max(MIN_OWNERSHIP))
}

/// What a consumer reads from the database before it handles anything.
#[derive(Default)]
struct LoadedState {
    /// Where it starts (see [`group::start_position`]).
    position: i64,
    /// Its own saved position, or -1.
    own_saved: i64,
    /// The highest position recorded as processed.
    dedupe_until: i64,
    /// Parked streams, and whether an operator released them.
    held: HashMap<String, bool>,
    /// How often an operator reset its position row, or another instance took it over
    /// (its saves go over this count only).
    resets: i64,
}

/// What [`load_state`] found.
enum Loaded {
    /// The member's row is this instance's: it runs from this state.
    Running(LoadedState),
    /// Another instance runs the member; it saved this position last (-1 for none).
    StandingBy { saved: i64 },
}

/// Who the member's position row is taken by, for how long.
struct Ownership<'a> {
    owner: &'a str,
    lease: Duration,
}

/// Takes the member's position row for this instance and reads the consumer's state: its
/// position (writing the rows of a group that lacks some), the highest processed position
/// and its parked streams; records that the member runs and says so every `heartbeat`.
/// [`Loaded::StandingBy`] while another instance runs the member.
async fn load_state<DB: Backend>(
    pool: &Pool<DB>,
    key: &Key,
    member: i64,
    size: i64,
    heartbeat: Duration,
    ownership: Ownership<'_>,
) -> Result<Loaded> {
    let rows = DB::load_positions(pool, key).await?;
    let own_saved = |rows: &[PositionRow]| {
        rows.iter()
            .find(|row| row.member == member && row.size == size)
            .map_or(-1, |row| row.global_position)
    };
    if let Some(missing) = group::missing_rows(&rows, size) {
        let mut tx = DB::begin_write(pool).await?;
        for row in missing {
            DB::insert_position(&mut *tx, key, row).await?;
        }
        tx.commit().await.map_err(db)?;
    }
    // Read before the positions: a reset made in between is then seen at the first save
    // (which starts again from it), never saved over.
    let Some(resets) =
        DB::take_member(pool, key, member, size, ownership.owner, ownership.lease).await?
    else {
        return Ok(Loaded::StandingBy {
            saved: own_saved(&rows),
        });
    };
    let rows = DB::load_positions(pool, key).await?;
    let heartbeat_ms = i64::try_from(heartbeat.as_millis()).unwrap_or(i64::MAX);
    // Bookkeeping for operators: a busy database must not keep the consumer from starting
    // (its first heartbeat records it).
    if let Err(error) = DB::mark_running(pool, key, member, size, heartbeat_ms).await {
        tracing::warn!(consumer = %key.consumer, error = crate::error::log_field(&error), "could not record that the consumer starts");
    }
    Ok(Loaded::Running(LoadedState {
        position: group::start_position(&rows, member, size),
        own_saved: own_saved(&rows),
        dedupe_until: DB::max_processed(pool, key).await?.unwrap_or(0),
        held: owned_parked(DB::parked_streams(pool, key).await?, member, size),
        resets,
    }))
}

/// The parked streams a member deals with: those the server now gives it (see
/// [`group::stream_member`]). The parked streams are kept per consumer name, shared by the
/// group; a member that replayed every released stream made every member handle its
/// events.
///
/// Decided by the stream's member under the member's current size, not by who parked it:
/// the member that reads a stream's new events is the one that holds them back behind the
/// parked one, and only that member can replay the stream in order with them (a replay and
/// a hold run one after the other in its task). After a resize the parker may be gone, or
/// the stream may now go to another member, which then both holds and replays it. While a
/// rolling resize runs two sizes at once, the stream's members of both sizes take it; the
/// processed records keep that from handling an event twice except in a race.
fn owned_parked(rows: Vec<(String, bool)>, member: i64, size: i64) -> HashMap<String, bool> {
    rows.into_iter()
        .filter(|(stream, _)| owns(stream, member, size))
        .collect()
}

/// Whether `stream` is `member`'s under a group of `size`. Everything is the only member's
/// without a group; a name the server gives to no member of a group (no `-`: it was parked
/// before the consumer became a group) goes to member 0, so that it is never stuck.
fn owns(stream: &str, member: i64, size: i64) -> bool {
    size <= 1 || group::stream_member(stream, size).unwrap_or(0) == member
}

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
    /// Released streams whose parked events lie ahead of the read (after a reset below
    /// them), with the lowest of their global positions: not looked at again until the read
    /// gets there.
    replay_waits: HashMap<String, i64>,
    /// Streams with no cardinal id whose events a group passed, already warned about
    /// (bounded: a warning per stream, not per event).
    warned_no_member: std::collections::HashSet<String>,
    /// The reset count of its position row when it read it (see [`LoadedState::resets`]).
    resets: i64,
    /// This instance's name on the member's position row, unique per start: while it has
    /// the row, other instances of the member stand by.
    owner: String,
    /// When it next says it is alive, at the latest (see [`Runtime::heartbeat`]). Behind a
    /// lock: backoffs in `&self` methods say so too.
    heartbeat_at: std::sync::Mutex<tokio::time::Instant>,
    /// Until when its member's row is surely still its own, by this process's clock (the
    /// lease counted from before the statement that took or renewed it). Past it, with the
    /// database out of reach, another instance may have taken the member over: it stops
    /// handling and starts again.
    claimed_until: std::sync::Mutex<tokio::time::Instant>,
    /// Whether it took its member's row and may still have it: the row is freed when the
    /// task ends. False while it stands by.
    owns: bool,
    last_maintenance: Option<Instant>,
    /// The last event this instance read (see [`kept`]).
    last_read: Option<LastRead>,
    /// When the event at the position was last read back (see [`kept`]).
    position_checked_at: Option<Instant>,
    /// EventoDB lost the event at the position: the member is held for a reset when the
    /// task ends, whatever error ends it (see [`kept`]).
    position_lost: bool,
    /// A save running in the background (plain consumers), and the position it saves.
    /// Aborted if the consumer task is (as a crash would end it).
    saving: Option<AbortOnDropHandle<Result<i64>>>,
    /// The processed records the background save writes: put back before `pending` when it
    /// fails, however it fails (a panicked task's own copy is gone).
    saving_rows: Arc<Vec<ProcessedRow>>,
    /// Whether the state above was read from the database. A consumer whose database could
    /// not be reached at the start reads it in its task before anything else, and saves
    /// nothing until then.
    loaded: bool,
    _registration: Option<Registration>,
}

fn db(source: sqlx::Error) -> Error {
    Error::Database { source }
}

/// The heartbeat deadline, whatever a panicking holder left (an `Instant` is always whole).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        // A `#[consumer]` would decode another category's messages into its own category's
        // event types by type name, past the compile-time category check.
        if consumer.category_is_fixed() && category != consumer.category() {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: it handles the events of category {:?} only and cannot read {category:?}; drop ConsumerOptions::category or name {:?}",
                options.name,
                consumer.category(),
                consumer.category()
            )));
        }
        // `category.get("")` reads every category of the namespace (protocol §3.4): a
        // consumer would handle, park and record events that are not its own.
        if category.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: the category is empty, which would read every category of the namespace; name one",
                options.name
            )));
        }
        if category.contains('-') {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: category {category:?} contains '-' and would match nothing",
                options.name
            )));
        }
        // A correlation filter names a category (the backends agree only there, protocol
        // §9): empty, it means no filter on Pebble and SQLite and "empty categories only" on
        // PostgreSQL; with a '-', PostgreSQL matches nothing, SQLite a prefix, Pebble the
        // part before the '-'.
        if let Some(correlation) = &options.correlation
            && (correlation.is_empty() || correlation.contains('-'))
        {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: correlation {correlation:?} must be a category: not empty, no '-' (the backends match anything else differently)",
                options.name
            )));
        }
        if ownership_lease(&options) < options.poll_interval.saturating_mul(2) {
            return Err(Error::InvalidArgument(format!(
                "consumer {:?}: takeover_after {:?} is shorter than twice the poll interval {:?}; the member says it is alive once per poll interval",
                options.name,
                ownership_lease(&options),
                options.poll_interval
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
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let claiming = tokio::time::Instant::now();
        let ownership = Ownership {
            owner: &owner,
            lease: ownership_lease(&options),
        };
        let (state, loaded) =
            match load_state(&pool, &key, member, size, options.poll_interval, ownership).await {
                Ok(Loaded::Running(state)) => (state, true),
                // Taken in the task, once the other instance lets go (see `load_retrying`).
                Ok(Loaded::StandingBy { saved }) => {
                    tracing::info!(
                        consumer = %options.name,
                        %category,
                        member,
                        size,
                        "consumer member runs in another instance; standing by"
                    );
                    (
                        LoadedState {
                            position: saved.max(0),
                            ..LoadedState::default()
                        },
                        false,
                    )
                }
                // Loaded in the task, once the database answers (see `load_retrying`).
                Err(Error::Database { source }) if crate::error::database_unreachable(&source) => {
                    tracing::warn!(
                        consumer = %options.name,
                        error = crate::error::log_field(&source),
                        "consumer: the database cannot be reached; it starts once it can"
                    );
                    (LoadedState::default(), false)
                }
                Err(error) => return Err(error),
            };
        let LoadedState {
            position,
            own_saved,
            dedupe_until,
            held,
            resets,
        } = state;
        if loaded {
            tracing::info!(
                consumer = %options.name,
                %category,
                member,
                size,
                position,
                "consumer starting"
            );
        }
        let shared = Arc::new(Shared::new(
            options.name.clone(),
            category.clone(),
            options.group,
            position,
        ));
        let registration = hub.map(|hub| hub.register(&category, &shared.waker));
        let transactional = options.transactional || consumer.transactional();
        let heartbeat_at = tokio::time::Instant::now() + options.poll_interval;
        let claimed_until = claiming + ownership_lease(&options);
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
            replay_waits: HashMap::new(),
            warned_no_member: std::collections::HashSet::new(),
            resets,
            owner,
            heartbeat_at: std::sync::Mutex::new(heartbeat_at),
            claimed_until: std::sync::Mutex::new(claimed_until),
            owns: loaded,
            last_maintenance: None,
            last_read: None,
            position_checked_at: None,
            position_lost: false,
            saving: None,
            saving_rows: Arc::default(),
            loaded,
            _registration: registration,
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Runs until `cancel`, or until the failure policy stops it. Saves the position on the
    /// way out.
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> Result<()> {
        // Back to 0 when `self` (and the handles) is dropped, whichever way the task ends.
        self.metrics.started();
        let span = crate::trace_context::consumer_span(
            &self.key.namespace,
            &self.key.category,
            &self.key.consumer,
            self.member,
        );
        let result = tracing::Instrument::instrument(self.main_across_resets(&cancel), span).await;
        // A consumer stopped before it could read its state has nothing of its own to save.
        let saved = if self.loaded {
            self.save().await
        } else {
            Ok(())
        };
        // Reset on its way out: the reset stands, and the next start begins from it.
        let saved = match saved {
            Err(Error::ConsumerPositionReset { .. }) => Ok(()),
            other => other,
        };
        if let Err(error) = &saved {
            tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(error), "could not save the position");
        }
        let result = result.and(saved);
        if self.owns {
            let error = result.as_ref().err().map(crate::error::with_causes);
            let (key, member, size) = (&self.key, self.member, self.size);
            // Another instance would go on from the position EventoDB no longer holds, and
            // skip what this one stopped for: the member waits for an operator's reset.
            let hold = self.position_lost;
            let stopped = DB::mark_stopped(
                &self.pool,
                key,
                member,
                size,
                &self.owner,
                error.as_deref(),
                hold,
                self.resets,
            );
            if let Err(failure) = stopped.await {
                tracing::warn!(consumer = %key.consumer, error = crate::error::log_field(&failure), "could not record that the consumer stopped");
            }
        }
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

    /// Reads the state the start could not, once the database answers and no other
    /// instance runs the member: tries again every [`LOAD_RETRY`] meanwhile. Still not
    /// `loaded` when cancelled first.
    ///
    /// While it stands by, its position is the one the running instance saved last, so
    /// that `position` and `wait_for` on its handle follow the member's progress.
    async fn load_retrying(&mut self, cancel: &CancellationToken) -> Result<()> {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep(LOAD_RETRY) => {}
            }
            let claiming = tokio::time::Instant::now();
            match self.read_state().await {
                Ok(Loaded::Running(state)) => {
                    self.adopt(state, claiming);
                    tracing::info!(consumer = %self.key.consumer, category = %self.key.category, member = self.member, size = self.size, position = self.position, "consumer starting");
                    return Ok(());
                }
                Ok(Loaded::StandingBy { saved }) => {
                    self.owns = false;
                    tracing::trace!(consumer = %self.key.consumer, member = self.member, saved, "consumer member still runs in another instance");
                    self.position = saved.max(0);
                    self.shared.advanced(self.position);
                    self.shared.publish();
                }
                Err(Error::Database { source }) if crate::error::database_unreachable(&source) => {
                    tracing::debug!(consumer = %self.key.consumer, error = crate::error::log_field(&source), "consumer: the database still cannot be reached");
                }
                // Most of its life, for a standby: a lock or statement timeout, a busy
                // SQLite file, must not end it. (An unmigrated database failed the start.)
                Err(Error::Database { source }) => {
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&source), "consumer: could not read its state; trying again");
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Its state, read again (see [`load_state`]).
    async fn read_state(&self) -> Result<Loaded> {
        let (key, member, size) = (&self.key, self.member, self.size);
        let ownership = Ownership {
            owner: &self.owner,
            lease: ownership_lease(&self.options),
        };
        load_state(
            &self.pool,
            key,
            member,
            size,
            self.options.poll_interval,
            ownership,
        )
        .await
    }

    /// Takes a state read from the database as the consumer's own.
    /// `claiming`: when the read that took the member's row started.
    fn adopt(&mut self, state: LoadedState, claiming: tokio::time::Instant) {
        *lock(&self.claimed_until) = claiming + ownership_lease(&self.options);
        self.owns = true;
        self.position = state.position;
        self.saved = state.own_saved;
        self.saving_to = state.own_saved;
        self.dedupe_until = state.dedupe_until;
        self.held = state.held;
        self.replay_waits.clear();
        self.resets = state.resets;
        // A position taken over or reset names an event this instance did not just read:
        // another may be there now, rightly (see `kept`).
        self.last_read = None;
        self.position_checked_at = None;
        self.position_lost = false;
        self.loaded = true;
        self.shared.advanced(self.position);
        self.shared.publish();
    }

    /// [`main`](Self::main), started again from the new position whenever a save finds that
    /// an operator reset the position meanwhile. What was handled since the last save is
    /// dropped with the save that failed (its processed records, and a transactional
    /// handler's transaction, roll back), so the events after the reset position are
    /// handled again, as the reset asks.
    async fn main_across_resets(&mut self, cancel: &CancellationToken) -> Result<()> {
        loop {
            match self.main(cancel).await {
                Err(Error::ConsumerPositionReset { .. }) => self.start_again(cancel).await?,
                other => return other,
            }
        }
    }

    /// Records that the member is alive and keeps its row this instance's;
    /// [`Error::ConsumerPositionReset`] when its position row was reset since it read it, or
    /// taken over by another instance (which a lapsed lease allows). Database trouble is
    /// left to the next look (or the next save) while the row is surely still its own, and
    /// is [`Error::ConsumerPositionReset`] past that: it stops handling events another
    /// instance may be handling too.
    async fn heartbeat(&self) -> Result<()> {
        self.renew(None).await
    }

    /// [`heartbeat`](Self::heartbeat) on `conn`, in the transaction open there, or on a
    /// connection of the pool (see [`Store::heartbeat`](super::store::Store::heartbeat)).
    async fn renew(&self, conn: Option<&mut DB::Connection>) -> Result<()> {
        let renewing = tokio::time::Instant::now();
        *lock(&self.heartbeat_at) = renewing + self.options.poll_interval;
        let lease = ownership_lease(&self.options);
        let (key, member, size, owner) = (&self.key, self.member, self.size, &self.owner);
        let renewed = match conn {
            Some(conn) => DB::heartbeat(conn, key, member, size, owner, lease).await,
            None => match self.pool.acquire().await {
                Ok(mut conn) => DB::heartbeat(&mut conn, key, member, size, owner, lease).await,
                Err(error) => Err(db(error)),
            },
        };
        match renewed {
            Ok(Some(resets)) if resets == self.resets => {
                *lock(&self.claimed_until) = renewing + lease;
                Ok(())
            }
            Ok(_) => Err(Error::ConsumerPositionReset {
                consumer: self.key.consumer.clone(),
            }),
            Err(error) if renewing >= *lock(&self.claimed_until) => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "consumer could not renew its claim on its member in time; stopping until it can");
                Err(Error::ConsumerPositionReset {
                    consumer: self.key.consumer.clone(),
                })
            }
            Err(error) => {
                tracing::debug!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "could not read the reset count");
                Ok(())
            }
        }
    }

    /// [`Error::ConsumerPositionReset`] if an operator reset the position since it was read
    /// (the reset count is read with the position row locked until `tx` ends): for a
    /// transaction that records a decision about an event without saving the position.
    pub(super) async fn check_not_reset(
        &self,
        tx: &mut sqlx::Transaction<'static, DB>,
    ) -> Result<()> {
        DB::check_not_reset(&mut **tx, &self.key, self.member, self.size, self.resets).await
    }

    /// [`heartbeat`](Self::heartbeat) once a poll interval has passed since the last: a
    /// consumer working through a long backlog says it is alive between events too.
    pub(super) async fn heartbeat_if_due(&self) -> Result<()> {
        if self.heartbeat_due() {
            self.heartbeat().await?;
        }
        Ok(())
    }

    /// [`heartbeat_if_due`](Self::heartbeat_if_due) in the shared transaction open on
    /// `conn`.
    pub(super) async fn heartbeat_if_due_in(&self, conn: &mut DB::Connection) -> Result<()> {
        if self.heartbeat_due() {
            self.renew(Some(conn)).await?;
        }
        Ok(())
    }

    /// A poll interval has passed since the last heartbeat, or the claim may be running out.
    fn heartbeat_due(&self) -> bool {
        let now = tokio::time::Instant::now();
        now >= *lock(&self.heartbeat_at) || now >= *lock(&self.claimed_until)
    }

    /// Sleeps `wait` (a backoff: EventoDB down, a handler failing), saying it is alive
    /// meanwhile: a backoff longer than a few poll intervals must not read as a dead
    /// process. `true` when cancelled first.
    pub(super) async fn sleep_alive(
        &self,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            self.heartbeat_if_due().await?;
            let next = until.min(*lock(&self.heartbeat_at));
            tokio::select! {
                () = cancel.cancelled() => return Ok(true),
                () = tokio::time::sleep_until(next) => {}
            }
            if tokio::time::Instant::now() >= until {
                return Ok(false);
            }
        }
    }

    /// Drops the unsaved work and reads the state again after a reset. Database trouble
    /// just then (a lock timeout, a busy SQLite file, a restart) is waited out: the reset
    /// must not end the consumer.
    async fn start_again(&mut self, cancel: &CancellationToken) -> Result<()> {
        // A save still running goes over the old count: it cannot land; stop it.
        self.saving = None;
        self.saving_rows = Arc::default();
        self.pending.clear();
        self.since_save = 0;
        let from = self.position;
        loop {
            let claiming = tokio::time::Instant::now();
            match self.read_state().await {
                Ok(Loaded::Running(state)) => {
                    self.adopt(state, claiming);
                    tracing::warn!(consumer = %self.key.consumer, category = %self.key.category, member = self.member, from, position = self.position, "consumer position reset by an operator while running; starting again from it");
                    return Ok(());
                }
                Ok(Loaded::StandingBy { .. }) => {
                    // Its lease lapsed (a handler or the database too slow for it) and
                    // another instance took the member over: that one goes on from the
                    // saved position; this one stands by.
                    tracing::warn!(consumer = %self.key.consumer, category = %self.key.category, member = self.member, from, "consumer member taken over by another instance; standing by");
                    self.loaded = false;
                    self.owns = false;
                    return self.load_retrying(cancel).await;
                }
                Err(Error::Database { source }) => {
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&source), "consumer position reset while running; could not read the new state, trying again");
                    tokio::select! {
                        () = cancel.cancelled() => {
                            // Nothing of its own to save: the next start reads the reset.
                            self.loaded = false;
                            return Ok(());
                        }
                        () = tokio::time::sleep(LOAD_RETRY) => {}
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn main(&mut self, cancel: &CancellationToken) -> Result<()> {
        if !self.loaded {
            self.load_retrying(cancel).await?;
            if !self.loaded {
                return Ok(());
            }
        }
        let mut operator_actions = operator_signal();
        let mut read_failures: u32 = 0;
        let mut prefetched: Option<(u64, JoinHandle<Result<Vec<CategoryMessage>>>)> = None;
        // When the parked streams and the reset count are next read again, to see releases
        // and resets made by another process (the CLI, an admin elsewhere), which no signal
        // here announces. Kept apart from the poll timer: every poke restarts that one, so a
        // busy category, or one still catching up, would never see such a release. (A busy
        // consumer sees a reset at its next save anyway; an idle one saves nothing.)
        let mut reload_at = tokio::time::Instant::now() + self.options.poll_interval;
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= reload_at {
                reload_at = now + self.options.poll_interval;
                // Small indexed reads per poll interval, and none of the parked streams
                // without any.
                if !self.held.is_empty() {
                    self.reload_held().await;
                }
                // Not again if a busy consumer said so between events meanwhile.
                self.heartbeat_if_due().await?;
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
                    if self.sleep_alive(wait, cancel).await? {
                        return Ok(());
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
                self.last_read = Some(LastRead::of(last));
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
            // Parked events this read has come back to (a stream released after a reset
            // below them) are replayed now, before the consumer can say it caught up, not
            // after the next wake-up.
            if self.held.values().any(|released| *released) {
                self.replay_released(cancel).await?;
                if cancel.is_cancelled() {
                    return Ok(());
                }
            }
            // A running save is not waited for: the events go with the next save.
            self.save_soon(cancel, true).await?;
            if !caught_up {
                continue;
            }
            // A short filtered read may only mean that the server looked no further
            // (Pebble): pass the messages that are not this consumer's before deciding that
            // there is nothing to do.
            match self.pass_others().await? {
                Passed::Again => {
                    self.save_soon(cancel, true).await?;
                    continue;
                }
                Passed::CaughtUp => {
                    self.save_soon(cancel, true).await?;
                    self.shared.caught_up(read, self.position);
                    self.check_position_kept(cancel).await?;
                }
                // Not known to be caught up: the next wake-up reads and looks again.
                Passed::Unknown => {}
            }
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
                    () = tokio::time::sleep_until(poll_at) => break,
                    () = tokio::time::sleep_until(reload_at) => {
                        reload_at = tokio::time::Instant::now() + self.options.poll_interval;
                        self.heartbeat().await?;
                        if !self.held.is_empty() {
                            self.reload_held().await;
                            if self.held.values().any(|released| *released) {
                                break;
                            }
                        }
                    }
                    changed = operator_actions.changed() => {
                        if changed.is_ok() {
                            self.heartbeat().await?;
                            self.reload_held().await;
                        }
                        break;
                    }
                    saved = saved(&mut self.saving), if unsaved && self.saving.is_some() => {
                        self.saving = None;
                        self.saved = match self.take_back(saved) {
                            Ok(position) => position,
                            // Given up at the shutdown: the final save writes its records.
                            Err(error)
                                if cancel.is_cancelled()
                                    && !matches!(error, Error::ConsumerPositionReset { .. }) =>
                            {
                                return Ok(());
                            }
                            Err(error) => return Err(error),
                        };
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
        let options = self.category_options(global_position, self.options.batch_size, true);
        let client = self.client.clone();
        let category = self.key.category.clone();
        async move { client.category_get(&category, &options).await }
    }

    /// The consumer's `category.get` options from `global_position`: with `filtered`, its
    /// correlation filter and its group (the look past messages that are not its own reads
    /// without them, see [`others`]).
    fn category_options(
        &self,
        global_position: i64,
        batch_size: i64,
        filtered: bool,
    ) -> GetCategoryOptions {
        let mut options = GetCategoryOptions::new()
            .position(global_position)
            .batch_size(batch_size);
        if !filtered {
            return options;
        }
        if let Some(correlation) = &self.options.correlation {
            options = options.correlation(correlation.clone());
        }
        if let Some((member, size)) = self.options.group {
            options = options.consumer_group(member, size);
        }
        options
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

/// The processed record of a handled message.
fn processed_row(message: &CategoryMessage) -> ProcessedRow {
    ProcessedRow {
        id: message.id.to_string(),
        message_type: message.message_type.clone(),
        stream: message.stream_name.clone(),
        gp: message.global_position,
    }
}
