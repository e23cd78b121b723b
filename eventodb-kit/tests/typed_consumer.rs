//! `#[consumer]` at run time on the events eventodb-kit-codegen generates: typed events reach
//! their handlers, unknown types are ignored, rejected or handed to the fallback, data that
//! breaks the schema goes through the failure policy (stop, park, skip), and a transactional
//! handler's writes happen exactly once.
//!
//! Every test runs on SQLite (a fresh file) and on PostgreSQL (a fresh schema of
//! `DATABASE_URL`; skipped with a printed reason when unset, failed when
//! `EVENTODB_KIT_REQUIRE_POSTGRES` is set). EventoDB is an embedded server of the test's own,
//! or with `EVENTODB_URL` a fresh namespace of the real one (see `eventodb_env`), so tests
//! never see each other's events. (They once shared a namespace and each read a category of
//! its own through `ConsumerOptions::category`, which a `#[consumer]` now refuses: its
//! handlers are typed for its one category.)

mod eventodb_env;
mod pg_schema;

use std::future::Future;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use eventodb_kit::client::{CategoryMessage, Client, NewMessage, WriteOptions, WritePosition};
use eventodb_kit::consumer::{
    Consumer, ConsumerAdmin, ConsumerOptions, Context, FailurePolicy, HandlerError, RetryPolicy,
};
use eventodb_kit::{Backend, Error, Event, Kit, consumer};
use pg_schema::PgSchema;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgConnection, Pool, Postgres, Sqlite, SqliteConnection};
use uuid::Uuid;

/// The codegen's output for the workspace's `schemas/`, as its golden test keeps it: the
/// same code `include_events!()` brings into an application.
mod events {
    #![allow(dead_code, missing_docs, unreachable_pub)]
    include!("../../eventodb-kit-codegen/tests/golden/workspace.rs");
}

use events::{UserCreated, UserCreatedPlan, UserDeleted, UserEmailChanged};

const LONG: Duration = Duration::from_secs(30);

/// One test per scenario and backend: `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(env) = super::Env::<sqlx::Sqlite>::new().await else { return };
                    super::$scenario(&env).await;
                    env.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(env) = super::Env::<sqlx::Postgres>::new().await else { return };
                    super::$scenario(&env).await;
                    env.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    typed_events_reach_their_handlers_and_unknown_types_are_ignored,
    a_strict_consumer_rejects_unknown_types,
    the_fallback_gets_the_types_without_a_handler,
    invalid_data_stops_a_consumer_by_default,
    invalid_data_parks_its_stream,
    invalid_data_is_skipped_with_every_violation,
    a_transactional_handler_writes_exactly_once,
    a_macro_consumer_reads_its_own_category_only,
);

/// What a test needs of its database: a fresh one, and a table for handler writes.
trait TestDb: Backend {
    /// What to drop at the end (the SQLite file's folder, the PostgreSQL schema).
    type Guard: Send + Sync;
    /// A fresh, migrated database; `None` (with a printed reason) when there is none.
    fn fresh() -> impl Future<Output = Option<(Pool<Self>, Self::Guard)>> + Send;
    /// Drops what `fresh` made.
    fn cleanup(pool: Pool<Self>, guard: Self::Guard) -> impl Future<Output = ()> + Send;
    /// Creates `directory (user_id, email)`.
    fn create_directory(pool: &Pool<Self>) -> impl Future<Output = ()> + Send;
    /// Inserts a directory row on `conn` (the handler's transaction).
    fn insert_member(
        conn: &mut Self::Connection,
        user_id: Uuid,
        email: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// `(email, rows)` of the directory, by email.
    fn directory(pool: &Pool<Self>) -> impl Future<Output = Vec<(String, i64)>> + Send;
}

impl TestDb for Sqlite {
    type Guard = tempfile::TempDir;

    async fn fresh() -> Option<(Pool<Sqlite>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteConnectOptions::from_str("sqlite://typed.db")
            .expect("options")
            .filename(dir.path().join("typed.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(LONG);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("sqlite pool");
        eventodb_kit::migrate(&pool).await.expect("migrate");
        Some((pool, dir))
    }

    async fn cleanup(pool: Pool<Sqlite>, _dir: tempfile::TempDir) {
        pool.close().await;
    }

    async fn create_directory(pool: &Pool<Sqlite>) {
        sqlx::query("CREATE TABLE directory (user_id TEXT NOT NULL, email TEXT NOT NULL)")
            .execute(pool)
            .await
            .expect("create directory");
    }

    async fn insert_member(
        conn: &mut SqliteConnection,
        user_id: Uuid,
        email: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO directory (user_id, email) VALUES (?1, ?2)")
            .bind(user_id.to_string())
            .bind(email)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn directory(pool: &Pool<Sqlite>) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT email, count(*) FROM directory GROUP BY email ORDER BY email")
            .fetch_all(pool)
            .await
            .expect("directory")
    }
}

impl TestDb for Postgres {
    type Guard = PgSchema;

    async fn fresh() -> Option<(Pool<Postgres>, PgSchema)> {
        let schema = pg_schema::fresh("typed", 4).await?;
        Some((schema.pool.clone(), schema))
    }

    async fn cleanup(_pool: Pool<Postgres>, schema: PgSchema) {
        schema.cleanup().await;
    }

    async fn create_directory(pool: &Pool<Postgres>) {
        sqlx::query("CREATE TABLE directory (user_id UUID NOT NULL, email TEXT NOT NULL)")
            .execute(pool)
            .await
            .expect("create directory");
    }

    async fn insert_member(
        conn: &mut PgConnection,
        user_id: Uuid,
        email: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO directory (user_id, email) VALUES ($1, $2)")
            .bind(user_id)
            .bind(email)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn directory(pool: &Pool<Postgres>) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT email, count(*) FROM directory GROUP BY email ORDER BY email")
            .fetch_all(pool)
            .await
            .expect("directory")
    }
}

/// A test's EventoDB, database and kit, and the category it reads.
struct Env<DB: TestDb> {
    _eventodb: eventodb_env::Env,
    client: Client,
    pool: Pool<DB>,
    guard: DB::Guard,
    kit: Kit<DB>,
    /// `user`, the category of the consumers' events, in the test's own EventoDB or
    /// namespace.
    category: String,
}

impl<DB: TestDb> Env<DB> {
    /// `None` (with a printed reason) when the backend is not available.
    async fn new() -> Option<Env<DB>> {
        let (pool, guard) = DB::fresh().await?;
        let eventodb = eventodb_env::Env::new("typed").await;
        let client = eventodb.client.clone();
        let kit = eventodb.kit(&pool);
        Some(Env {
            _eventodb: eventodb,
            client,
            pool,
            guard,
            kit,
            category: "user".to_owned(),
        })
    }

    async fn finish(self) {
        DB::cleanup(self.pool, self.guard).await;
    }

    /// Options for the consumer `typed`.
    fn options(&self) -> ConsumerOptions {
        ConsumerOptions::new("typed")
    }

    /// `options()` with quick retries and the `Skip` policy.
    fn skipping(&self) -> ConsumerOptions {
        self.options()
            .retry(quick_retries())
            .failure_policy(FailurePolicy::Skip)
    }

    /// Writes `event` (type and data as the outbox would) to its stream.
    async fn publish<E: Event>(&self, event: &E) -> WritePosition {
        let data = serde_json::to_value(event).expect("event data");
        self.write_to(&event.stream_name(), E::TYPE, data).await
    }

    /// Writes a raw message to `<category>-<id>`.
    async fn write(
        &self,
        id: impl std::fmt::Display,
        message_type: &str,
        data: Value,
    ) -> WritePosition {
        let stream = format!("{}-{id}", self.category);
        self.write_to(&stream, message_type, data).await
    }

    async fn write_to(&self, stream: &str, message_type: &str, data: Value) -> WritePosition {
        self.client
            .stream_write(
                stream,
                &NewMessage::new(message_type, data),
                &WriteOptions::new(),
            )
            .await
            .expect("stream.write")
    }

    /// Runs `consumer` until it has dealt with `last`, then shuts it down.
    async fn run<C: Consumer<DB>>(&self, consumer: C, options: ConsumerOptions, last: i64) {
        let name = options.name().to_owned();
        let workers = self
            .kit
            .workers()
            .consumer(consumer, options)
            .spawn()
            .await
            .expect("spawn");
        workers
            .consumer(&name)
            .expect("handle")
            .wait_for(last, LONG)
            .await
            .expect("consumer reached the last event");
        workers.shutdown().await.expect("shutdown");
    }

    fn admin(&self) -> ConsumerAdmin<DB> {
        ConsumerAdmin::for_kit(&self.kit)
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(5))
}

fn created(email: &str) -> UserCreated {
    UserCreated {
        address: None,
        birth_date: None,
        created_at: Utc::now(),
        display_name: Some("Ada".into()),
        email: email.into(),
        marketing_opt_in: false,
        plan: UserCreatedPlan::Pro,
        referrer: None,
        user_id: Uuid::new_v4(),
    }
}

/// `UserCreated` data (as JSON) that deserializes but breaks the schema twice.
fn created_breaking_the_schema() -> Value {
    json!({
        "user_id": Uuid::new_v4(),
        "email": "not an email",
        "display-name": "",
        "created_at": "2026-11-26T12:00:00Z",
    })
}

/// What the handlers saw, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A handler for every generated `user` event (checked at compile time by `exhaustive`).
struct Users {
    seen: Seen,
}

#[consumer(category = "user", exhaustive = events::categories::USER)]
impl Users {
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        self.seen
            .push(format!("created {:?} {}", event.plan, event.email));
        Ok(())
    }

    async fn email_changed<DB: Backend>(
        &self,
        event: UserEmailChanged,
        ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        self.seen.push(format!(
            "email {} -> {} (try {})",
            event.old_email,
            event.new_email,
            ctx.attempt()
        ));
        Ok(())
    }

    async fn deleted(&self, event: UserDeleted) -> Result<(), HandlerError> {
        self.seen.push(format!("deleted {:?}", event.reason));
        Ok(())
    }
}

async fn typed_events_reach_their_handlers_and_unknown_types_are_ignored<DB: TestDb>(
    env: &Env<DB>,
) {
    let user = created("ada@example.com");
    let id = user.user_id;
    env.publish(&user).await;
    env.write(
        id,
        "UserRenamed",
        json!({ "user_id": id, "name": "Ada L." }),
    )
    .await;
    env.publish(&UserEmailChanged {
        changed_at: Utc::now(),
        new_email: "ada@example.org".into(),
        old_email: "ada@example.com".into(),
        user_id: id,
    })
    .await;
    let last = env
        .publish(&UserDeleted {
            deleted_at: Utc::now(),
            erase_data: None,
            reason: None,
            user_id: id,
        })
        .await;
    let seen = Seen::default();
    let users = Users { seen: seen.clone() };
    assert_eq!(Consumer::<DB>::category(&users), "user");
    env.run(users, env.options(), last.global_position).await;
    assert_eq!(
        seen.get(),
        [
            "created Pro ada@example.com",
            "email ada@example.com -> ada@example.org (try 1)",
            "deleted None",
        ],
        "each type reaches its handler, decoded; UserRenamed has none and is ignored"
    );
    assert!(
        env.admin()
            .skipped(&env.category, "typed")
            .await
            .unwrap()
            .is_empty()
    );
    let positions = env.admin().positions(&env.category, "typed").await.unwrap();
    assert_eq!(positions[0].global_position, last.global_position);
}

struct StrictUsers {
    seen: Seen,
}

#[consumer(category = "user", strict)]
impl StrictUsers {
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        self.seen.push(format!("created {}", event.email));
        Ok(())
    }
}

async fn a_strict_consumer_rejects_unknown_types<DB: TestDb>(env: &Env<DB>) {
    let renamed = env
        .write(Uuid::new_v4(), "UserRenamed", json!({ "name": "x" }))
        .await;
    let last = env.publish(&created("grace@example.org")).await;
    let seen = Seen::default();
    env.run(
        StrictUsers { seen: seen.clone() },
        env.skipping(),
        last.global_position,
    )
    .await;
    assert_eq!(seen.get(), ["created grace@example.org"]);
    let skipped = env.admin().skipped(&env.category, "typed").await.unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].global_position, renamed.global_position);
    assert!(
        skipped[0].error.contains("UserRenamed"),
        "{}",
        skipped[0].error
    );
    assert_eq!(skipped[0].attempts, 1, "an unknown type is not retried");
}

struct WithFallback {
    seen: Seen,
}

#[consumer(category = "user")]
impl WithFallback {
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        self.seen.push(format!("created {}", event.email));
        Ok(())
    }

    #[consumer(fallback)]
    async fn other(&self, message: &CategoryMessage) -> Result<(), HandlerError> {
        self.seen
            .push(format!("other {} {}", message.message_type, message.data));
        Ok(())
    }
}

async fn the_fallback_gets_the_types_without_a_handler<DB: TestDb>(env: &Env<DB>) {
    env.write(Uuid::new_v4(), "UserRenamed", json!({ "name": "x" }))
        .await;
    let last = env.publish(&created("ada@example.com")).await;
    let seen = Seen::default();
    env.run(
        WithFallback { seen: seen.clone() },
        env.options(),
        last.global_position,
    )
    .await;
    assert_eq!(
        seen.get(),
        [
            r#"other UserRenamed {"name":"x"}"#,
            "created ada@example.com"
        ]
    );
}

async fn invalid_data_stops_a_consumer_by_default<DB: TestDb>(env: &Env<DB>) {
    env.publish(&created("ada@example.com")).await;
    let bad = env
        .write(Uuid::new_v4(), "UserCreated", created_breaking_the_schema())
        .await;
    let seen = Seen::default();
    let mut workers = env
        .kit
        .workers()
        .consumer(Users { seen: seen.clone() }, env.options())
        .spawn()
        .await
        .expect("spawn");
    let failure = tokio::time::timeout(LONG, workers.next_failure())
        .await
        .expect("the consumer stops")
        .expect("a failure");
    match failure {
        Error::ConsumerStopped {
            consumer,
            global_position,
            message,
            ..
        } => {
            assert_eq!(consumer, "typed");
            assert_eq!(global_position, bad.global_position);
            assert!(message.contains("/email"), "{message}");
        }
        other => panic!("expected ConsumerStopped, got {other:?}"),
    }
    assert_eq!(seen.get(), ["created Pro ada@example.com"]);
    let positions = env.admin().positions(&env.category, "typed").await.unwrap();
    assert!(
        positions
            .iter()
            .all(|position| position.global_position < bad.global_position),
        "the position stays before the bad event: {positions:?}"
    );
    let _ = workers.shutdown().await;
}

async fn invalid_data_parks_its_stream<DB: TestDb>(env: &Env<DB>) {
    let user = created("ada@example.com");
    let parked_stream = user.stream_name();
    let mut bad_data = created_breaking_the_schema();
    bad_data["user_id"] = json!(user.user_id);
    let bad = env.write_to(&parked_stream, "UserCreated", bad_data).await;
    // Held back behind the bad event: same stream.
    let held = env.publish(&user).await;
    // Another stream goes on.
    let last = env.publish(&created("grace@example.org")).await;
    let seen = Seen::default();
    env.run(
        Users { seen: seen.clone() },
        env.options()
            .retry(quick_retries())
            .failure_policy(FailurePolicy::ParkStream),
        last.global_position,
    )
    .await;
    assert_eq!(seen.get(), ["created Pro grace@example.org"]);
    let admin = env.admin();
    assert_eq!(
        admin.parked_streams(&env.category, "typed").await.unwrap(),
        [parked_stream]
    );
    let parked = admin.parked(&env.category, "typed").await.unwrap();
    let positions: Vec<i64> = parked.iter().map(|event| event.global_position).collect();
    assert_eq!(positions, [bad.global_position, held.global_position]);
    assert!(parked[0].error.contains("/email"), "{}", parked[0].error);
    assert_eq!(parked[0].attempts, 1, "bad data is not retried");
}

async fn invalid_data_is_skipped_with_every_violation<DB: TestDb>(env: &Env<DB>) {
    let breaks_schema = env
        .write(Uuid::new_v4(), "UserCreated", created_breaking_the_schema())
        .await;
    let id = Uuid::new_v4();
    // Does not deserialize: `deny_unknown_fields`, and a required field missing.
    let not_decodable = env
        .write(id, "UserDeleted", json!({ "user_id": id, "colour": "red" }))
        .await;
    let last = env.publish(&created("ada@example.com")).await;
    let seen = Seen::default();
    env.run(
        Users { seen: seen.clone() },
        env.skipping(),
        last.global_position,
    )
    .await;
    assert_eq!(
        seen.get(),
        ["created Pro ada@example.com"],
        "no handler sees bad data"
    );
    let skipped = env.admin().skipped(&env.category, "typed").await.unwrap();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].global_position, breaks_schema.global_position);
    assert_eq!(skipped[0].message_type, "UserCreated");
    for pointer in ["/email", "/display-name"] {
        assert!(
            skipped[0].error.contains(pointer),
            "{pointer} in {}",
            skipped[0].error
        );
    }
    assert_eq!(skipped[1].global_position, not_decodable.global_position);
    assert_eq!(skipped[1].message_type, "UserDeleted");
    assert!(
        skipped[1].error.contains("colour") || skipped[1].error.contains("deleted_at"),
        "{}",
        skipped[1].error
    );
    for record in &skipped {
        assert_eq!(record.attempts, 1, "bad data is not retried");
    }
}

/// Adds a directory row per new user in the transaction the position commits in, and fails
/// the first try of every event after writing: a row that survived a rollback would show.
/// It is transactional because its handler calls `ctx.transaction()`, as in the design's
/// example, with no `transactional` key or option.
struct Directory<DB>(PhantomData<fn() -> DB>);

#[consumer(category = "user")]
impl<DB: TestDb> Directory<DB> {
    async fn created(
        &self,
        event: UserCreated,
        ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        DB::insert_member(ctx.transaction()?, event.user_id, &event.email).await?;
        if ctx.attempt() == 1 {
            return Err(HandlerError::new("the first try fails after the insert"));
        }
        Ok(())
    }
}

async fn a_transactional_handler_writes_exactly_once<DB: TestDb>(env: &Env<DB>) {
    DB::create_directory(&env.pool).await;
    let directory = Directory::<DB>(PhantomData);
    assert!(Consumer::<DB>::transactional(&directory));
    let mut last = None;
    for n in 1..=3 {
        last = Some(env.publish(&created(&format!("u{n}@example.com"))).await);
    }
    let last = last.unwrap();
    env.run(
        directory,
        env.options().retry(quick_retries()),
        last.global_position,
    )
    .await;
    assert_eq!(
        DB::directory(&env.pool).await,
        [
            ("u1@example.com".to_owned(), 1),
            ("u2@example.com".to_owned(), 1),
            ("u3@example.com".to_owned(), 1),
        ],
        "each event's row once: the failed first tries were rolled back"
    );
    let positions = env.admin().positions(&env.category, "typed").await.unwrap();
    assert_eq!(positions[0].global_position, last.global_position);
}

/// A `#[consumer]` is typed for its category: `ConsumerOptions::category` naming another one
/// is refused at spawn (it once let the consumer decode `order` messages into `user` events
/// by type name), its own is accepted, and a consumer without a fixed category may still be
/// pointed at any.
async fn a_macro_consumer_reads_its_own_category_only<DB: TestDb>(env: &Env<DB>) {
    let users = || Users {
        seen: Seen::default(),
    };
    let refused = env
        .kit
        .workers()
        .consumer(users(), env.options().category("order"))
        .spawn()
        .await;
    match refused {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("\"order\""), "{message}");
            assert!(message.contains("\"user\""), "{message}");
        }
        other => panic!("spawned: {:?}", other.err()),
    }
    // Behind an `Arc` too.
    let refused = env
        .kit
        .workers()
        .consumer(Arc::new(users()), env.options().category("order"))
        .spawn()
        .await;
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{:?}",
        refused.err()
    );
    let own = env
        .kit
        .workers()
        .consumer(users(), env.options().category("user"))
        .spawn()
        .await
        .expect("its own category");
    own.shutdown().await.expect("shutdown");
    let any = eventodb_kit::consumer::consumer_fn("user", |_message| async {
        Ok::<_, HandlerError>(eventodb_kit::consumer::Handled::Done)
    });
    assert!(!Consumer::<DB>::category_is_fixed(&any));
    let other = env
        .kit
        .workers()
        .consumer(any, ConsumerOptions::new("any").category("order"))
        .spawn()
        .await
        .expect("a consumer without a fixed category reads any");
    other.shutdown().await.expect("shutdown");
}
