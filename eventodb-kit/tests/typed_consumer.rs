//! `#[consumer]` at run time, on SQLite and the embedded EventoDB: typed events reach their
//! handlers, unknown types are ignored, rejected or handed to the fallback, bad data goes
//! through the failure policy, and a transactional handler's writes commit with the position.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventodb_kit::client::{
    CategoryMessage, Client, NewMessage, Token, WriteOptions, WritePosition,
};
use eventodb_kit::consumer::{
    Consumer, ConsumerAdmin, ConsumerOptions, Context, FailurePolicy, HandlerError, RetryPolicy,
};
use eventodb_kit::{Error, Event, Kit, ValidationError, Violation, consumer};
use eventodb_kit_testkit::TestServer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Sqlite, SqlitePool};

const LONG: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(
    category = "member",
    stream = "member-{member_id}",
    validate = "Self::check"
)]
struct MemberJoined {
    member_id: u64,
    email: String,
}

impl MemberJoined {
    fn check(&self) -> Result<(), ValidationError> {
        if self.email.contains('@') {
            Ok(())
        } else {
            Err(ValidationError::new(vec![Violation {
                pointer: "/email".into(),
                message: "not an email address".into(),
            }]))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(category = "member", stream = "member-{member_id}")]
struct MemberLeft {
    member_id: u64,
}

/// An embedded EventoDB, a fresh SQLite file and a kit over both.
struct Env {
    _server: TestServer,
    client: Client,
    pool: SqlitePool,
    kit: Kit<Sqlite>,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        let server = TestServer::start().await.expect("test server");
        let client = Client::builder(server.url())
            .token(Token::parse(server.default_token()).expect("token"))
            .build()
            .expect("client");
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
        let kit = Kit::builder("unused")
            .client(client.clone())
            .database(pool.clone())
            .build()
            .expect("kit");
        Env {
            _server: server,
            client,
            pool,
            kit,
            _dir: dir,
        }
    }

    async fn publish<E: Event>(&self, event: &E) -> WritePosition {
        let data = serde_json::to_value(event).expect("event data");
        self.write(&event.stream_name(), E::TYPE, data).await
    }

    async fn write(&self, stream: &str, message_type: &str, data: Value) -> WritePosition {
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
    async fn run<C: Consumer<Sqlite>>(&self, consumer: C, options: ConsumerOptions, last: i64) {
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

fn no_retry() -> ConsumerOptions {
    ConsumerOptions::new("typed")
        .retry(RetryPolicy::new(
            3,
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
        .failure_policy(FailurePolicy::Skip)
}

struct Members {
    seen: Seen,
}

#[consumer(category = "member")]
impl Members {
    async fn joined(&self, event: MemberJoined) -> Result<(), HandlerError> {
        self.seen
            .push(format!("joined {} {}", event.member_id, event.email));
        Ok(())
    }

    async fn left<DB: eventodb_kit::Backend>(
        &self,
        event: MemberLeft,
        ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        self.seen
            .push(format!("left {} in {}", event.member_id, ctx.consumer()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_events_reach_their_handlers_and_unknown_types_are_ignored() {
    let env = Env::new().await;
    let joined = MemberJoined {
        member_id: 7,
        email: "ada@example.com".into(),
    };
    env.publish(&joined).await;
    env.write("member-7", "MemberRenamed", json!({ "member_id": 7 }))
        .await;
    let last = env.publish(&MemberLeft { member_id: 7 }).await;
    let seen = Seen::default();
    env.run(
        Members { seen: seen.clone() },
        ConsumerOptions::new("typed"),
        last.global_position,
    )
    .await;
    assert_eq!(
        seen.get(),
        ["joined 7 ada@example.com", "left 7 in typed"],
        "each type reaches its handler; MemberRenamed has none and is ignored"
    );
    let admin = ConsumerAdmin::for_kit(&env.kit);
    assert!(admin.skipped("member", "typed").await.unwrap().is_empty());
    let positions = admin.positions("member", "typed").await.unwrap();
    assert_eq!(positions[0].global_position, last.global_position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_data_goes_through_the_failure_policy() {
    let env = Env::new().await;
    // Breaks the event's validate rule.
    let bad_email = env
        .write(
            "member-1",
            "MemberJoined",
            json!({ "member_id": 1, "email": "nope" }),
        )
        .await;
    // Does not deserialize.
    env.write("member-2", "MemberLeft", json!({ "member_id": "two" }))
        .await;
    let last = env.publish(&MemberLeft { member_id: 3 }).await;
    let seen = Seen::default();
    env.run(
        Members { seen: seen.clone() },
        no_retry(),
        last.global_position,
    )
    .await;
    assert_eq!(seen.get(), ["left 3 in typed"], "no handler sees bad data");
    let skipped = ConsumerAdmin::for_kit(&env.kit)
        .skipped("member", "typed")
        .await
        .unwrap();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].global_position, bad_email.global_position);
    assert_eq!(skipped[0].message_type, "MemberJoined");
    assert!(
        skipped[0].error.contains("/email: not an email address"),
        "{}",
        skipped[0].error
    );
    assert_eq!(skipped[1].message_type, "MemberLeft");
    assert!(
        skipped[1].error.contains("invalid type"),
        "{}",
        skipped[1].error
    );
    for record in &skipped {
        assert_eq!(record.attempts, 1, "bad data is not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_data_stops_a_consumer_by_default() {
    let env = Env::new().await;
    let bad = env
        .write(
            "member-1",
            "MemberJoined",
            json!({ "member_id": 1, "email": "nope" }),
        )
        .await;
    let workers = env
        .kit
        .workers()
        .consumer(
            Members {
                seen: Seen::default(),
            },
            ConsumerOptions::new("typed"),
        )
        .spawn()
        .await
        .expect("spawn");
    let mut workers = workers;
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
            assert!(
                message.contains("/email: not an email address"),
                "{message}"
            );
        }
        other => panic!("expected ConsumerStopped, got {other:?}"),
    }
    let positions = ConsumerAdmin::for_kit(&env.kit)
        .positions("member", "typed")
        .await
        .unwrap();
    assert!(
        positions
            .iter()
            .all(|position| position.global_position < bad.global_position),
        "the position stays before the bad event: {positions:?}"
    );
    let _ = workers.shutdown().await;
}

struct StrictMembers {
    seen: Seen,
}

#[consumer(category = "member", strict)]
impl StrictMembers {
    async fn left(&self, event: MemberLeft) -> Result<(), HandlerError> {
        self.seen.push(format!("left {}", event.member_id));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_consumer_rejects_unknown_types() {
    let env = Env::new().await;
    let renamed = env
        .write("member-7", "MemberRenamed", json!({ "member_id": 7 }))
        .await;
    let last = env.publish(&MemberLeft { member_id: 7 }).await;
    let seen = Seen::default();
    env.run(
        StrictMembers { seen: seen.clone() },
        no_retry(),
        last.global_position,
    )
    .await;
    assert_eq!(seen.get(), ["left 7"]);
    let skipped = ConsumerAdmin::for_kit(&env.kit)
        .skipped("member", "typed")
        .await
        .unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].global_position, renamed.global_position);
    assert!(
        skipped[0].error.contains("MemberRenamed"),
        "{}",
        skipped[0].error
    );
    assert_eq!(skipped[0].attempts, 1);
}

struct WithFallback {
    seen: Seen,
}

#[consumer(category = "member")]
impl WithFallback {
    async fn left(&self, event: MemberLeft) -> Result<(), HandlerError> {
        self.seen.push(format!("left {}", event.member_id));
        Ok(())
    }

    #[consumer(fallback)]
    async fn other(&self, message: &CategoryMessage) -> Result<(), HandlerError> {
        self.seen
            .push(format!("other {} {}", message.message_type, message.data));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_gets_the_types_without_a_handler() {
    let env = Env::new().await;
    env.write("member-7", "MemberRenamed", json!({ "name": "x" }))
        .await;
    let last = env.publish(&MemberLeft { member_id: 7 }).await;
    let seen = Seen::default();
    env.run(
        WithFallback { seen: seen.clone() },
        ConsumerOptions::new("typed"),
        last.global_position,
    )
    .await;
    assert_eq!(
        seen.get(),
        [r#"other MemberRenamed {"name":"x"}"#, "left 7"]
    );
}

/// Writes one row per event in the transaction the position commits in; fails the first
/// try of every event after writing, so a row that survived a rollback would show.
struct Directory;

#[consumer(category = "member", transactional)]
impl Directory {
    async fn joined(
        &self,
        event: MemberJoined,
        ctx: &mut Context<'_, Sqlite>,
    ) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO directory (member_id, email) VALUES (?1, ?2)")
            .bind(event.member_id as i64)
            .bind(&event.email)
            .execute(ctx.transaction()?)
            .await?;
        if ctx.attempt() == 1 {
            return Err(HandlerError::new("first try fails after the insert"));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_handler_commits_with_the_position() {
    let env = Env::new().await;
    sqlx::query("CREATE TABLE directory (member_id INTEGER NOT NULL, email TEXT NOT NULL)")
        .execute(&env.pool)
        .await
        .unwrap();
    assert!(Consumer::<Sqlite>::transactional(&Directory));
    let mut last = None;
    for member_id in 1..=3 {
        let event = MemberJoined {
            member_id,
            email: format!("m{member_id}@example.com"),
        };
        last = Some(env.publish(&event).await);
    }
    let last = last.unwrap();
    env.run(
        Directory,
        ConsumerOptions::new("typed").retry(RetryPolicy::new(
            3,
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
        last.global_position,
    )
    .await;
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT member_id, count(*) FROM directory GROUP BY member_id ORDER BY member_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [(1, 1), (2, 1), (3, 1)],
        "each event's row once: the failed first tries were rolled back"
    );
    let positions = ConsumerAdmin::for_kit(&env.kit)
        .positions("member", "typed")
        .await
        .unwrap();
    assert_eq!(positions[0].global_position, last.global_position);
}
