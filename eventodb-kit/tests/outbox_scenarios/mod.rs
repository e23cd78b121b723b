//! Outbox scenarios, written once and run on SQLite (`outbox_sqlite.rs`) and PostgreSQL
//! (`outbox_postgres.rs`). Each scenario gets a fresh database (file or schema) and, when it
//! needs one, its own embedded EventoDB server, or with `EVENTODB_URL` a fresh namespace on
//! that real EventoDB (scenarios that need fault injection skip there, saying why).

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use eventodb_kit::client::{GetStreamOptions, Message, NewMessage, WriteOptions};
use eventodb_kit::outbox::{OutboxMessage, RawMessage, RowStatus, SenderOptions};
use eventodb_kit::{Backend, Error, Event, Kit, ValidationError, Violation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Pool;
use uuid::Uuid;

use crate::eventodb_env::Env;

/// Generates one `#[tokio::test]` per scenario, each with a fresh pool from `$fresh`.
#[macro_export]
macro_rules! scenarios {
    ($fresh:path, $cleanup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                outbox_scenarios::init_tracing();
                let Some(db) = $fresh().await else { return };
                outbox_scenarios::$name(db.pool.clone()).await;
                $cleanup(db).await;
            }
        )*
    };
}

/// Logs to the test output when `RUST_LOG` is set.
pub(crate) fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A kit whose EventoDB does not exist (connection refused): for tests that never send.
pub(crate) fn offline_kit<DB: Backend>(pool: &Pool<DB>) -> Kit<DB> {
    Kit::builder("http://127.0.0.1:9")
        .database(pool.clone())
        .build()
        .expect("kit")
}

/// Fast retries for tests.
pub(crate) fn fast() -> SenderOptions {
    SenderOptions::default()
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .lease(Duration::from_millis(500))
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until nothing is pending or failed.
pub(crate) async fn drained<DB: Backend>(kit: &Kit<DB>, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = kit.outbox().status().await.expect("status");
        if status.pending == 0 && status.failed == 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let failed = kit.outbox().failed(5).await.expect("failed rows");
            panic!("outbox not drained: {status:?}; failed rows: {failed:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every message of a stream.
pub(crate) async fn read_stream<DB: Backend>(kit: &Kit<DB>, stream: &str) -> Vec<Message> {
    // A read right after a server restart may meet a pooled connection the restart closed.
    let mut attempt = 0;
    loop {
        match kit
            .client()
            .stream_get(stream, &GetStreamOptions::new().batch_size(10_000))
            .await
        {
            Ok(messages) => return messages,
            Err(error) if attempt < 3 && error.is_transient() => attempt += 1,
            Err(error) => panic!("stream.get: {error:?}"),
        }
    }
}

/// Commits one write of `{"n": n}` to `stream`.
pub(crate) async fn commit_one<DB: Backend>(kit: &Kit<DB>, stream: &str, n: i64) -> Uuid {
    let mut tx = kit.pool().begin().await.expect("begin");
    let written = kit
        .outbox()
        .write(
            &mut *tx,
            stream,
            RawMessage::new("Counted", json!({ "n": n })),
        )
        .await
        .expect("write");
    tx.commit().await.expect("commit");
    written.id
}

/// Asserts that `stream` holds exactly `ids`, in this order, each once.
pub(crate) async fn assert_stream<DB: Backend>(kit: &Kit<DB>, stream: &str, ids: &[Uuid]) {
    let got: Vec<Uuid> = read_stream(kit, stream)
        .await
        .iter()
        .map(|m| m.id.as_uuid().expect("the outbox writes UUIDs"))
        .collect();
    assert_eq!(got, ids, "stream {stream}");
}

/// Commits `rounds` events to each of `streams` streams `{prefix}-0`, `{prefix}-1`, …, one
/// transaction each, round robin; returns each stream's ids in commit order.
pub(crate) async fn commit_round_robin<DB: Backend>(
    kit: &Kit<DB>,
    prefix: &str,
    rounds: i64,
    streams: usize,
) -> HashMap<String, Vec<Uuid>> {
    let mut expected: HashMap<String, Vec<Uuid>> = HashMap::new();
    for n in 0..rounds {
        for s in 0..streams {
            let stream = format!("{prefix}-{s}");
            let id = commit_one(kit, &stream, n).await;
            expected.entry(stream).or_default().push(id);
        }
    }
    expected
}

/// Asserts that each stream holds exactly its ids, in order, and (on the embedded server)
/// that nothing else was written.
pub(crate) async fn assert_streams<DB: Backend>(
    kit: &Kit<DB>,
    env: &Env,
    expected: &HashMap<String, Vec<Uuid>>,
) {
    for (stream, ids) in expected {
        assert_stream(kit, stream, ids).await;
    }
    if let Some(writes) = env.count("stream.write") {
        let total: usize = expected.values().map(Vec::len).sum();
        assert_eq!(writes, total as u64, "one write per row");
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct UserCreated {
    user_id: String,
    email: String,
}

impl Event for UserCreated {
    const TYPE: &'static str = "UserCreated";
    const CATEGORY: &'static str = "user";
    const STREAM_TEMPLATE: &'static str = "user-{user_id}";

    fn stream_name(&self) -> String {
        format!("user-{}", self.user_id)
    }

    fn validate(&self) -> Result<(), ValidationError> {
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

// ---------------------------------------------------------------- database only

/// A database without the outbox tables is named as such, by a write and by a sender that
/// would otherwise start and only log failed claims.
pub(crate) async fn an_unmigrated_database_is_named_as_such<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    eventodb_kit::migrate_down(&pool, 0).await.unwrap();
    let not_migrated = |result: Result<(), Error>| match result {
        Err(error @ Error::NotMigrated { .. }) => assert!(
            error.to_string().contains("eventodb_kit::migrate(&pool)"),
            "{error}"
        ),
        other => panic!("{other:?}"),
    };
    let mut tx = pool.begin().await.unwrap();
    let written = kit
        .outbox()
        .write(&mut *tx, "plain-1", RawMessage::new("T", json!({})))
        .await;
    not_migrated(written.map(|_| ()));
    drop(tx);
    not_migrated(kit.outbox().spawn_sender(fast()).await.map(|_| ()));
    not_migrated(
        kit.workers()
            .outbox_sender(fast())
            .spawn()
            .await
            .map(|_| ()),
    );
    eventodb_kit::migrate(&pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    kit.outbox()
        .write(&mut *tx, "plain-1", RawMessage::new("T", json!({})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

pub(crate) async fn migrations_are_idempotent_and_reversible<DB: Backend>(pool: Pool<DB>) {
    // The harness already migrated: a second run applies nothing.
    let steps = eventodb_kit::migrations::<DB>();
    let all: Vec<i64> = steps.iter().map(|m| m.version).collect();
    assert_eq!(
        all,
        (1..=all.len() as i64).collect::<Vec<_>>(),
        "versions from 1, no gaps"
    );
    assert_eq!(
        eventodb_kit::migrate(&pool).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        eventodb_kit::migrate_down(&pool, 1).await.unwrap(),
        all[1..].iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(eventodb_kit::migrate_down(&pool, 0).await.unwrap(), vec![1]);
    assert_eq!(
        eventodb_kit::migrate_down(&pool, 0).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(eventodb_kit::migrate(&pool).await.unwrap(), all);
    assert!(steps.iter().all(|m| !m.up.is_empty() && !m.down.is_empty()));
    // The outbox works after down + up.
    let kit = offline_kit(&pool);
    commit_one(&kit, "account-1", 1).await;
    assert_eq!(kit.outbox().status().await.unwrap().pending, 1);
}

pub(crate) async fn rollback_leaves_nothing<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let mut tx = pool.begin().await.unwrap();
    let written = kit
        .outbox()
        .write(
            &mut *tx,
            "account-1",
            RawMessage::new("Deposited", json!({"amount": 5})),
        )
        .await
        .unwrap();
    assert!(
        kit.outbox().row(written.id).await.unwrap().is_none(),
        "not visible before commit"
    );
    tx.rollback().await.unwrap();
    assert!(kit.outbox().row(written.id).await.unwrap().is_none());
    assert_eq!(kit.outbox().status().await.unwrap().pending, 0);
}

pub(crate) async fn write_fixes_the_id_and_options<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let mut tx = pool.begin().await.unwrap();
    let plain = kit
        .outbox()
        .write(
            &mut *tx,
            "account-7",
            RawMessage::new("Deposited", json!({"amount": 5})),
        )
        .await
        .unwrap();
    let custom = Uuid::now_v7();
    let with_options = kit
        .outbox()
        .write(
            &mut *tx,
            "account-7",
            RawMessage::new("Deposited", json!({"amount": 6})),
        )
        .expected_version(3)
        .id(custom)
        .metadata(json!({"correlationStreamName": "transfer-1"}))
        .idempotency_key("deposit-7-2")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(plain.id.get_version_num(), 7);
    assert!(!plain.replayed);
    assert_eq!(with_options.id, custom);
    let row = kit.outbox().row(custom).await.unwrap().expect("row");
    assert_eq!(row.stream, "account-7");
    assert_eq!(row.message_type, "Deposited");
    assert_eq!(row.status, RowStatus::Pending);
    assert_eq!(row.expected_version, Some(3));
    assert_eq!(row.idempotency_key.as_deref(), Some("deposit-7-2"));
    assert_eq!(row.attempts, 0);
    let status = kit.outbox().status().await.unwrap();
    assert_eq!(status.pending, 2);
    assert!(status.oldest_pending_age.is_some());

    // A custom id already in the outbox is a typed error.
    let mut tx = pool.begin().await.unwrap();
    let again = kit
        .outbox()
        .write(
            &mut *tx,
            "account-8",
            RawMessage::new("Deposited", json!({})),
        )
        .id(custom)
        .await;
    assert!(
        matches!(again, Err(Error::OutboxDuplicateId { .. })),
        "{again:?}"
    );
    // The refusal leaves the transaction usable (on PostgreSQL too, where a failed statement
    // would abort it).
    let after = kit
        .outbox()
        .write(
            &mut *tx,
            "account-8",
            RawMessage::new("Deposited", json!({"n": 2})),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(kit.outbox().row(after.id).await.unwrap().is_some());
}

pub(crate) async fn idempotency_key_returns_the_first_id<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let outbox = kit.outbox();
    let message = || RawMessage::new("PaymentRequested", json!({"amount": 1000}));
    let mut tx = pool.begin().await.unwrap();
    let first = outbox
        .write(&mut *tx, "payment-1", message())
        .idempotency_key("k1")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let second = outbox
        .write(&mut *tx, "payment-1", message())
        .idempotency_key("k1")
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert!(second.replayed && !first.replayed);
    let conflict = outbox
        .write(
            &mut *tx,
            "payment-1",
            RawMessage::new("PaymentRequested", json!({"amount": 1})),
        )
        .idempotency_key("k1")
        .await;
    match conflict {
        Err(Error::IdempotencyConflict { key, existing_id }) => {
            assert_eq!(key, "k1");
            assert_eq!(existing_id, first.id);
        }
        other => panic!("expected IdempotencyConflict, got {other:?}"),
    }
    // The seed's convention: `data.idempotency_key`.
    let by_data = || {
        RawMessage::new(
            "PaymentRequested",
            json!({"idempotency_key": "k2", "amount": 3}),
        )
    };
    let a = outbox
        .write(&mut *tx, "payment-2", by_data())
        .await
        .unwrap();
    let b = outbox
        .write(&mut *tx, "payment-2", by_data())
        .await
        .unwrap();
    assert_eq!(a.id, b.id);
    assert!(b.replayed);
    tx.commit().await.unwrap();
    assert_eq!(outbox.status().await.unwrap().pending, 2);
}

pub(crate) async fn fifty_concurrent_writers_make_one_row<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    concurrent_writers_make_one_row(&kit, "order-1", None).await;
    // The same key and the same custom id: a writer may meet the other's id before its key.
    concurrent_writers_make_one_row(&kit, "order-2", Some(Uuid::now_v7())).await;
}

/// 50 writers at once with one idempotency key (and `id`, when given) on `stream`: one row,
/// every writer learns its id.
async fn concurrent_writers_make_one_row<DB: Backend>(
    kit: &Kit<DB>,
    stream: &str,
    id: Option<Uuid>,
) {
    let pending_before = kit.outbox().status().await.unwrap().pending;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let kit = kit.clone();
        let stream = stream.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut tx = kit.pool().begin().await.expect("begin");
            let mut write = kit
                .outbox()
                .write(
                    &mut *tx,
                    &stream,
                    RawMessage::new("OrderPlaced", json!({"total": 9})),
                )
                .idempotency_key(format!("{stream}-placed"));
            if let Some(id) = id {
                write = write.id(id);
            }
            let written = write.await.expect("write");
            tokio::time::sleep(Duration::from_millis(2)).await;
            tx.commit().await.expect("commit");
            written
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    let first = ids[0].id;
    assert!(
        ids.iter().all(|w| w.id == first),
        "every writer learns the same id"
    );
    assert_eq!(
        ids.iter().filter(|w| !w.replayed).count(),
        1,
        "one writer inserted"
    );
    if let Some(id) = id {
        assert_eq!(first, id);
    }
    assert_eq!(
        kit.outbox().status().await.unwrap().pending,
        pending_before + 1
    );
}

pub(crate) async fn bad_input_is_rejected_before_the_database<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let outbox = kit.outbox();
    let mut tx = pool.begin().await.unwrap();
    let long_name = format!("a-{}", "x".repeat(3000));
    let cases: Vec<(&str, RawMessage)> = vec![
        ("", RawMessage::new("T", json!({}))),
        ("a-1", RawMessage::new("", json!({}))),
        ("a-1", RawMessage::new("T", json!([1, 2]))),
        ("a-1", RawMessage::new("T", json!(null))),
        ("a-1", RawMessage::new("T", json!("text"))),
        ("a-\u{0}1", RawMessage::new("T", json!({}))),
        ("a-1", RawMessage::new("T", json!({"x": "nul\u{0}"}))),
        ("a-1", RawMessage::new("T", json!({})).metadata(json!(5))),
        // Past PostgreSQL's index entry limit: refused on both databases alike.
        (&long_name, RawMessage::new("T", json!({}))),
        (
            "a-1",
            RawMessage::new("T", json!({"idempotency_key": long_name.clone()})),
        ),
    ];
    for (stream, message) in cases {
        let result = outbox.write(&mut *tx, stream, message).await;
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{stream:?}: {result:?}"
        );
    }
    let negative = outbox
        .write(&mut *tx, "a-1", RawMessage::new("T", json!({})))
        .expected_version(-7)
        .await;
    assert!(matches!(negative, Err(Error::InvalidArgument(_))));
    // EventoDB reads numbers as float64: a version past 2^53 cannot be sent as it is.
    let huge = outbox
        .write(&mut *tx, "a-1", RawMessage::new("T", json!({})))
        .expected_version(i64::MAX)
        .await;
    assert!(matches!(huge, Err(Error::InvalidArgument(_))), "{huge:?}");
    // The operator calls too: PostgreSQL refuses a negative LIMIT, SQLite reads it as none.
    let listed = outbox.failed(-1).await;
    assert!(
        matches!(listed, Err(Error::InvalidArgument(_))),
        "{listed:?}"
    );
    let purged = outbox.purge(Duration::MAX, 0).await;
    assert!(
        matches!(purged, Err(Error::InvalidArgument(_))),
        "{purged:?}"
    );
    assert_eq!(outbox.purge(Duration::MAX, 10).await.unwrap(), 0);
    let invalid = UserCreated {
        user_id: "u1".into(),
        email: "nope".into(),
    };
    let published = outbox.publish(&mut *tx, &invalid).await;
    assert!(
        matches!(published, Err(Error::InvalidEvent(_))),
        "{published:?}"
    );
    // The transaction is still usable (nothing reached the database) and commits empty.
    let valid = UserCreated {
        user_id: "u2".into(),
        email: "a@b.c".into(),
    };
    let written = outbox.publish(&mut *tx, &valid).await.unwrap();
    tx.commit().await.unwrap();
    let row = outbox.row(written.id).await.unwrap().unwrap();
    assert_eq!(
        (row.stream.as_str(), row.message_type.as_str()),
        ("user-u2", "UserCreated")
    );
    assert_eq!(outbox.status().await.unwrap().pending, 1);
}

pub(crate) async fn write_batch_checks_everything_first<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let outbox = kit.outbox();
    let mut tx = pool.begin().await.unwrap();
    let bad = outbox
        .write_batch(
            &mut *tx,
            vec![
                OutboxMessage::new("a-1", RawMessage::new("T", json!({}))),
                OutboxMessage::new("a-1", RawMessage::new("T", json!(3))),
            ],
        )
        .await;
    assert!(matches!(bad, Err(Error::InvalidArgument(_))));
    let good = outbox
        .write_batch(
            &mut *tx,
            vec![
                OutboxMessage::new("a-1", RawMessage::new("T", json!({"n": 1}))),
                OutboxMessage::new("a-1", RawMessage::new("T", json!({"n": 2})))
                    .expected_version(0),
                OutboxMessage::event(&UserCreated {
                    user_id: "u3".into(),
                    email: "x@y.z".into(),
                })
                .unwrap(),
            ],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(good.len(), 3);
    assert_eq!(outbox.status().await.unwrap().pending, 3);
}

pub(crate) async fn write_batch_is_all_or_nothing<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let outbox = kit.outbox();
    let taken = Uuid::now_v7();
    let mut tx = pool.begin().await.unwrap();
    outbox
        .write(&mut *tx, "batch-1", RawMessage::new("T", json!({"n": 0})))
        .id(taken)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let message = |n: usize| {
        OutboxMessage::new("batch-1", RawMessage::new("T", json!({ "n": n }))).id(ids[n])
    };

    // Inside the caller's transaction: the failed batch takes its first row back, and the
    // transaction goes on (on PostgreSQL a failed statement would abort it).
    let mut tx = pool.begin().await.unwrap();
    outbox
        .write_batch(&mut *tx, vec![message(0)])
        .await
        .unwrap();
    let refused = outbox
        .write_batch(
            &mut *tx,
            vec![
                message(1),
                OutboxMessage::new("batch-1", RawMessage::new("T", json!({"n": 9}))).id(taken),
                message(2),
            ],
        )
        .await;
    assert!(
        matches!(&refused, Err(Error::OutboxDuplicateId { id }) if *id == taken.to_string()),
        "{refused:?}"
    );
    outbox
        .write_batch(&mut *tx, vec![message(3)])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // On a bare connection: nothing of the failed batch is committed.
    let mut conn = pool.acquire().await.unwrap();
    let refused = outbox
        .write_batch(
            &mut *conn,
            vec![
                message(4),
                OutboxMessage::new("batch-2", RawMessage::new("T", json!({"a": 1})))
                    .idempotency_key("same-key"),
                OutboxMessage::new("batch-2", RawMessage::new("T", json!({"a": 2})))
                    .idempotency_key("same-key"),
            ],
        )
        .await;
    assert!(
        matches!(&refused, Err(Error::IdempotencyConflict { key, .. }) if key == "same-key"),
        "{refused:?}"
    );
    drop(conn);

    let present = |n: usize| {
        let id = ids[n];
        async move { outbox.row(id).await.unwrap().is_some() }
    };
    assert!(
        present(0).await && present(3).await,
        "the good batches stand"
    );
    for n in [1, 2, 4] {
        assert!(!present(n).await, "row {n} of a failed batch was kept");
    }
    assert_eq!(outbox.status().await.unwrap().pending, 3);
}

/// Application transactions begun with `Kit::begin` that read before they write commit beside
/// a running sender (on SQLite a plain `BEGIN` fails most of them with "database is locked").
pub(crate) async fn transactions_that_read_first_commit_beside_the_sender<DB: RawSql>(
    pool: Pool<DB>,
) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let kit = kit.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..50 {
                    let mut tx = kit.begin().await.unwrap();
                    DB::query_i64_in(&mut tx, "SELECT count(*) FROM eventodb_kit_outbox").await;
                    let written = kit
                        .outbox()
                        .write(
                            &mut *tx,
                            format!("reader-{task}"),
                            RawMessage::new("Counted", json!({ "n": n })),
                        )
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    ids.push(written.id);
                }
                (format!("reader-{task}"), ids)
            })
        })
        .collect();
    let mut expected = HashMap::new();
    for task in tasks {
        let (stream, ids) = task.await.expect("every transaction commits");
        expected.insert(stream, ids);
    }
    drained(&kit, Duration::from_secs(30)).await;
    sender.shutdown().await.unwrap();
    assert_streams(&kit, &env, &expected).await;
}

pub(crate) async fn sender_keeps_rows_while_eventodb_is_unreachable<DB: Backend>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    let id = commit_one(&kit, "account-1", 1).await;
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    let row = eventually("a failed attempt", Duration::from_secs(10), || async {
        let row = kit.outbox().row(id).await.unwrap().unwrap();
        (row.attempts >= 2).then_some(row)
    })
    .await;
    assert_eq!(row.status, RowStatus::Pending);
    assert!(row.last_error.is_some());
    assert!(
        !row.outcome_unknown,
        "a refused connection is a known 'not applied'"
    );
    sender.shutdown().await.unwrap();
    let status = kit.outbox().status().await.unwrap();
    assert_eq!((status.pending, status.failed, status.sent), (1, 0, 0));
}

// ---------------------------------------------------------------- with EventoDB

pub(crate) async fn drains_in_commit_order_per_stream<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let mut expected: HashMap<String, Vec<Uuid>> = HashMap::new();
    for n in 0..20 {
        for s in 0..3 {
            let stream = format!("order-{s}");
            let id = commit_one(&kit, &stream, n).await;
            expected.entry(stream).or_default().push(id);
        }
    }
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    drained(&kit, Duration::from_secs(20)).await;
    for (stream, ids) in &expected {
        assert_stream(&kit, stream, ids).await;
    }
    let status = kit.outbox().status().await.unwrap();
    assert_eq!(status.sent, 60);
    assert_eq!(status.oldest_pending_age, None);
    let row = kit
        .outbox()
        .row(expected["order-1"][4])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status, row.position), (RowStatus::Sent, Some(4)));
    let gp = row.global_position.unwrap();
    let written = kit
        .outbox()
        .wait_sent(expected["order-1"][4], Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(written.global_position, gp);
    sender.shutdown().await.unwrap();
    if let Some(writes) = env.count("stream.write") {
        assert_eq!(writes, 60);
    }
}

pub(crate) async fn wakes_on_commit_without_polling<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let sender = kit
        .outbox()
        .spawn_sender(fast().poll_interval(Duration::from_secs(3600)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // the sender is idle now
    for n in 0..3 {
        let id = commit_one(&kit, "wake-1", n).await;
        kit.outbox()
            .wait_sent(id, Duration::from_secs(5))
            .await
            .expect("sent long before the poll interval");
    }
    // On a bare connection the insert commits by itself. The sender is idle again first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = pool.acquire().await.unwrap();
    let written = kit
        .outbox()
        .write(
            &mut *conn,
            "wake-1",
            RawMessage::new("Counted", json!({"n": 3})),
        )
        .await
        .unwrap();
    drop(conn);
    kit.outbox()
        .wait_sent(written.id, Duration::from_secs(5))
        .await
        .expect("a bare connection's write wakes the sender too");
    sender.shutdown().await.unwrap();
}

pub(crate) async fn rollback_sends_nothing<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    kit.outbox()
        .write(
            &mut *tx,
            "account-9",
            RawMessage::new("Deposited", json!({"n": 0})),
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let kept = commit_one(&kit, "account-9", 1).await;
    kit.outbox()
        .wait_sent(kept, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_stream(&kit, "account-9", &[kept]).await;
    sender.shutdown().await.unwrap();
}

pub(crate) async fn writes_while_eventodb_is_down_drain_after<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("writes_while_eventodb_is_down_drain_after").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    server.faults().refuse_connections(true);
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(commit_one(&kit, &format!("down-{}", n % 2), n).await);
    }
    eventually(
        "failed attempts while down",
        Duration::from_secs(10),
        || async {
            let row = kit.outbox().row(ids[0]).await.unwrap().unwrap();
            (row.attempts >= 2 && row.last_error.is_some()).then_some(())
        },
    )
    .await;
    let status = kit.outbox().status().await.unwrap();
    assert_eq!(status.pending, 10);
    // The status says why they wait.
    let why = status
        .retry_error
        .expect("a retry error while EventoDB is down");
    assert!(why.contains("transport error"), "{why}");
    server.faults().refuse_connections(false);
    drained(&kit, Duration::from_secs(20)).await;
    assert_eq!(kit.outbox().status().await.unwrap().retry_error, None);
    let evens: Vec<Uuid> = ids.iter().step_by(2).copied().collect();
    let odds: Vec<Uuid> = ids.iter().skip(1).step_by(2).copied().collect();
    assert_stream(&kit, "down-0", &evens).await;
    assert_stream(&kit, "down-1", &odds).await;
    sender.shutdown().await.unwrap();
}

pub(crate) async fn unknown_outcome_is_checked_not_resent<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("unknown_outcome_is_checked_not_resent").await else {
        return;
    };
    ambiguous_write_is_found(&env, &pool, None).await;
}

/// A write EventoDB applied but answered with a `200` that does not say where (a proxy, a
/// server of another version) is looked up: the row is recorded as sent, at the position the
/// stream shows, not parked as a failure the event in EventoDB would belie.
pub(crate) async fn an_unreadable_reply_to_a_write_is_looked_up<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("an_unreadable_reply_to_a_write_is_looked_up").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    server.faults().garble_after_apply(1);
    let id = commit_one(&kit, "garbled-1", 1).await;
    let second = commit_one(&kit, "garbled-1", 2).await;
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    drained(&kit, Duration::from_secs(20)).await;
    assert_stream(&kit, "garbled-1", &[id, second]).await;
    assert_eq!(
        server.stats().count("stream.write"),
        2,
        "nothing sent twice"
    );
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.position, row.outcome_unknown),
        (RowStatus::Sent, Some(0), false)
    );
    let stored = read_stream(&kit, "garbled-1").await;
    assert_eq!(row.global_position, Some(stored[0].global_position));
    sender.shutdown().await.unwrap();
}

/// The lookup of a row whose outcome is unknown reads through ids other producers chose (on
/// a server that stores any string, like Pebble, where a blind resend would store a second
/// copy), finds the row's own id and does not send it again.
pub(crate) async fn unknown_outcome_is_found_among_foreign_ids<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::pebble("unknown_outcome_is_found_among_foreign_ids").await else {
        return;
    };
    ambiguous_write_is_found(&env, &pool, Some("order-42")).await;
}

/// A write the sender stopped waiting for lands in EventoDB later (its handler went on): the
/// lookup before the next attempt waits as long again as the attempt took, finds it, and
/// does not send it again. Looked up at once, it found nothing, and the event was sent again
/// (on Pebble, which stores a second copy of an id).
pub(crate) async fn a_write_that_lands_after_its_timeout_is_not_sent_again<DB: Backend>(
    pool: Pool<DB>,
) {
    let Some(env) = Env::pebble("a_write_that_lands_after_its_timeout_is_not_sent_again").await
    else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    // A write is cut off a tenth of the lease before its end, 1.8 s in; this one lands 2.5 s
    // in, and the lookup comes 3.6 s in at the earliest.
    let (id, sender) = send_a_late_write(&env, &kit, "late-1", 2, 2500).await;
    let second = commit_one(&kit, "late-1", 2).await;
    drained(&kit, Duration::from_secs(20)).await;
    assert_stream(&kit, "late-1", &[id, second]).await;
    assert_eq!(
        server.stats().count("stream.write"),
        2,
        "the late write was not sent again"
    );
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.position, row.outcome_unknown),
        (RowStatus::Sent, Some(0), false)
    );
    sender.shutdown().await.unwrap();
}

/// Commits one event to `stream` and starts a sender with a lease of `lease_secs`, whose
/// write of it EventoDB applies `lands_ms` after it arrives, however long the sender waits.
async fn send_a_late_write<DB: Backend>(
    env: &Env,
    kit: &Kit<DB>,
    stream: &str,
    lease_secs: u64,
    lands_ms: u64,
) -> (Uuid, eventodb_kit::outbox::Sender) {
    env.server()
        .faults()
        .delay_next_writes(1, Duration::from_millis(lands_ms));
    let id = commit_one(kit, stream, 1).await;
    let sender = kit
        .outbox()
        .spawn_sender(fast().lease(Duration::from_secs(lease_secs)))
        .await
        .unwrap();
    (id, sender)
}

/// A row whose write was cut off may still land in EventoDB until the sender's lookup is
/// due: a discard meanwhile is refused as in flight. It used to look the row up at once,
/// find nothing, and discard it, and the write landed after.
pub(crate) async fn a_row_whose_write_may_still_land_is_not_discarded<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("a_row_whose_write_may_still_land_is_not_discarded").await else {
        return;
    };
    let kit = env.kit(&pool);
    // Cut off 2.7 s in, landing 3.5 s in, looked up 5.4 s in at the earliest.
    let (id, sender) = send_a_late_write(&env, &kit, "settling-1", 3, 3500).await;
    eventually("the write cut off", Duration::from_secs(10), || async {
        let row = kit.outbox().row(id).await.unwrap().unwrap();
        row.outcome_unknown.then_some(())
    })
    .await;
    let refused = kit.outbox().discard(id).await;
    assert!(
        matches!(&refused, Err(Error::OutboxRowInFlight { id: found }) if *found == id.to_string()),
        "{refused:?}"
    );
    kit.outbox()
        .wait_sent(id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_stream(&kit, "settling-1", &[id]).await;
    sender.shutdown().await.unwrap();
}

/// Two outbox writes to a stream (after another producer's event with id `foreign`, if
/// given), the first applied but answered with a 500: the sender cannot know it landed, looks
/// it up, finds it, and does not send it again.
async fn ambiguous_write_is_found<DB: Backend>(env: &Env, pool: &Pool<DB>, foreign: Option<&str>) {
    let server = env.server();
    let kit = env.kit(pool);
    let mut expected = Vec::new();
    if let Some(foreign) = foreign {
        env.write_with_id("ambiguous-1", "Foreign", foreign).await;
        expected.push(foreign.to_owned());
    }
    let before = i64::try_from(expected.len()).unwrap();
    server.faults().fail_after_apply(1);
    let id = commit_one(&kit, "ambiguous-1", 1).await;
    let second = commit_one(&kit, "ambiguous-1", 2).await;
    expected.extend([id.to_string(), second.to_string()]);
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    drained(&kit, Duration::from_secs(20)).await;
    let stored: Vec<String> = read_stream(&kit, "ambiguous-1")
        .await
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(stored, expected);
    assert_eq!(
        server.stats().count("stream.write"),
        expected.len() as u64,
        "the landed write was not sent again"
    );
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.position, row.outcome_unknown),
        (RowStatus::Sent, Some(before), false)
    );
    sender.shutdown().await.unwrap();
}

/// A row whose last outcome was unknown is looked up before it is written again, and the
/// lookup's time counts against the lease: a slow lookup gives up (the outcome stays unknown)
/// instead of pushing the write past the lease, when another sender may already have found
/// the row missing and sent it.
pub(crate) async fn a_slow_lookup_does_not_outlast_the_lease<DB: RawSql>(pool: Pool<DB>) {
    let Some(env) = Env::ours("a_slow_lookup_does_not_outlast_the_lease").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let id = commit_one(&kit, "slow-1", 1).await;
    DB::exec_sql(
        &pool,
        "UPDATE eventodb_kit_outbox SET outcome_unknown = TRUE",
    )
    .await;
    // Every request takes longer than the whole lease (500 ms in `fast`).
    server.faults().latency(Duration::from_millis(800));
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    let row = eventually("an attempt given up", Duration::from_secs(20), || async {
        let row = kit.outbox().row(id).await.unwrap().unwrap();
        (row.attempts > 0).then_some(row)
    })
    .await;
    let error = row.last_error.clone().unwrap_or_default();
    assert!(error.contains("looking up the row"), "{error}");
    assert!(row.outcome_unknown, "still to be looked up");
    assert_eq!(server.stats().count("stream.write"), 0);
    server.faults().latency(Duration::ZERO);
    drained(&kit, Duration::from_secs(20)).await;
    assert_stream(&kit, "slow-1", &[id]).await;
    sender.shutdown().await.unwrap();
}

/// A row whose outcome was unknown is looked for through a stream longer than one lease
/// can read: the sender renews its lease between reads, finds the row missing and sends it,
/// once, instead of giving up at every attempt.
pub(crate) async fn a_long_lookup_keeps_its_lease<DB: RawSql>(pool: Pool<DB>) {
    let Some(env) = Env::ours("a_long_lookup_keeps_its_lease").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let other = NewMessage::new("Other", json!({}));
    for _ in 0..2500 {
        env.client
            .stream_write("long-1", &other, &WriteOptions::new())
            .await
            .expect("stream.write");
    }
    let id = commit_one(&kit, "long-1", 1).await;
    DB::exec_sql(
        &pool,
        "UPDATE eventodb_kit_outbox SET outcome_unknown = TRUE",
    )
    .await;
    // Three pages of 300 ms each: more than the whole lease (500 ms in `fast`), each one
    // within it.
    server.faults().latency(Duration::from_millis(300));
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    kit.outbox()
        .wait_sent(id, Duration::from_secs(30))
        .await
        .expect("sent after a lookup longer than the lease");
    server.faults().latency(Duration::ZERO);
    sender.shutdown().await.unwrap();
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!(row.position, Some(2500));
    assert_eq!(server.stats().count("stream.write"), 2501, "sent once");
}

pub(crate) async fn duplicate_id_means_already_written<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let id = commit_one(&kit, "dup-1", 1).await;
    // As if a previous sender had sent it and died before recording it (and before its
    // lease could mark the outcome unknown).
    kit.client()
        .stream_write(
            "dup-1",
            &NewMessage::new("Counted", json!({"n": 1})),
            &WriteOptions::new().id(id),
        )
        .await
        .unwrap();
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    drained(&kit, Duration::from_secs(20)).await;
    assert_stream(&kit, "dup-1", &[id]).await;
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!((row.status, row.position), (RowStatus::Sent, Some(0)));
    sender.shutdown().await.unwrap();
}

/// Raw SQL without binds, for scenarios that stage what a dead sender left behind or look at
/// tables the API does not show.
pub(crate) trait RawSql: Backend {
    /// Runs `sql`.
    fn exec_sql(pool: &Pool<Self>, sql: &str) -> impl Future<Output = ()> + Send;
    /// The first column of the first row of `sql`, an integer.
    fn query_i64(pool: &Pool<Self>, sql: &str) -> impl Future<Output = i64> + Send;
    /// The same, inside the transaction `tx`.
    fn query_i64_in(
        tx: &mut sqlx::Transaction<'static, Self>,
        sql: &str,
    ) -> impl Future<Output = i64> + Send;
    /// Statements that make every update turning a verified sent row unverified change
    /// nothing, as if another process's sweep had made the row unverified just before; and
    /// the statements that undo them.
    const SKIP_UNVERIFY: (&'static [&'static str], &'static [&'static str]);
}

macro_rules! raw_sql {
    ($($db:ty => $skip_unverify:expr),*) => {$(
        impl RawSql for $db {
            const SKIP_UNVERIFY: (&'static [&'static str], &'static [&'static str]) =
                $skip_unverify;

            async fn exec_sql(pool: &Pool<Self>, sql: &str) {
                sqlx::Executor::execute(pool, sql).await.unwrap();
            }

            async fn query_i64(pool: &Pool<Self>, sql: &str) -> i64 {
                let row = sqlx::Executor::fetch_one(pool, sql).await.unwrap();
                sqlx::Row::try_get(&row, 0).unwrap()
            }

            async fn query_i64_in(tx: &mut sqlx::Transaction<'static, Self>, sql: &str) -> i64 {
                let row = sqlx::Executor::fetch_one(&mut **tx, sql).await.unwrap();
                sqlx::Row::try_get(&row, 0).unwrap()
            }
        }
    )*};
}

raw_sql!(
    sqlx::Sqlite => (
        &["CREATE TRIGGER skip_unverify BEFORE UPDATE OF verified_at ON eventodb_kit_outbox
            WHEN OLD.verified_at IS NOT NULL AND NEW.verified_at IS NULL AND NEW.status = 'sent'
            BEGIN SELECT RAISE(IGNORE); END"],
        &["DROP TRIGGER skip_unverify"],
    ),
    sqlx::Postgres => (
        &[
            "CREATE FUNCTION skip_unverify() RETURNS trigger LANGUAGE plpgsql
                AS $$ BEGIN RETURN NULL; END $$",
            "CREATE TRIGGER skip_unverify BEFORE UPDATE ON eventodb_kit_outbox FOR EACH ROW
                WHEN (OLD.verified_at IS NOT NULL AND NEW.verified_at IS NULL
                      AND NEW.status = 'sent')
                EXECUTE FUNCTION skip_unverify()",
        ],
        &["DROP TRIGGER skip_unverify ON eventodb_kit_outbox", "DROP FUNCTION skip_unverify()"],
    )
);

/// Leases every row of `stream` to `owner` until the year 2999, as a sender of another
/// process would.
async fn stage_live_lease<DB: RawSql>(pool: &Pool<DB>, namespace: &str, stream: &str, owner: &str) {
    let rows = format!("FROM eventodb_kit_outbox WHERE stream = '{stream}'");
    let from = DB::query_i64(pool, &format!("SELECT min(seq) {rows}")).await;
    let through = DB::query_i64(pool, &format!("SELECT max(seq) {rows}")).await;
    DB::exec_sql(
        pool,
        &format!(
            "INSERT INTO eventodb_kit_outbox_leases
                (namespace, stream, owner, lease_until, from_seq, through_seq)
             VALUES ('{namespace}', '{stream}', '{owner}', '2999-01-01T00:00:00.000Z',
                     {from}, {through})"
        ),
    )
    .await;
}

/// A stream lease held by another sender keeps the stream back while it lasts; once it has
/// run out, its rows may have been sent without being recorded: each is looked up in
/// EventoDB first, and the one found there is recorded, not sent again.
pub(crate) async fn an_expired_lease_hands_its_rows_over_for_lookup<DB: RawSql>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let ids = [
        commit_one(&kit, "lease-1", 1).await,
        commit_one(&kit, "lease-1", 2).await,
        commit_one(&kit, "lease-1", 3).await,
    ];
    // The dead sender sent the first row and died before recording it.
    kit.client()
        .stream_write(
            "lease-1",
            &NewMessage::new("Counted", json!({"n": 1})),
            &WriteOptions::new().id(ids[0]),
        )
        .await
        .unwrap();
    stage_live_lease(&pool, kit.outbox().namespace(), "lease-1", "dead-sender#1").await;
    let writes_before = env.count("stream.write");
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        read_stream(&kit, "lease-1").await.len(),
        1,
        "nothing is sent under another sender's live lease"
    );
    assert_eq!(kit.outbox().status().await.unwrap().pending, 3);
    DB::exec_sql(
        &pool,
        "UPDATE eventodb_kit_outbox_leases SET lease_until = '2000-01-01T00:00:00.000Z'",
    )
    .await;
    drained(&kit, Duration::from_secs(20)).await;
    assert_stream(&kit, "lease-1", &ids).await;
    if let (Some(before), Some(after)) = (writes_before, env.count("stream.write")) {
        assert_eq!(
            after - before,
            2,
            "the row found in EventoDB was not sent again"
        );
    }
    let row = kit.outbox().row(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.position, row.outcome_unknown, row.attempts),
        (RowStatus::Sent, Some(0), false, 1)
    );
    sender.shutdown().await.unwrap();
}

/// Two writers on one stream: the one that took the lower `seq` commits last, after the
/// sender has sent and recorded the other row under a long lease. The late row goes out at
/// once, after the other (commit order), and without a lookup: the lease covered only the
/// rows it took. PostgreSQL only (SQLite runs one writer at a time).
pub(crate) async fn a_row_committed_late_is_not_held_by_the_lease<DB: Backend>(pool: Pool<DB>) {
    a_late_row_goes_out_at_once(pool, "late-1", 0).await;
}

/// Three writers on one stream: the one that took the middle `seq` commits last, after the
/// sender has sent the other two rows in one batch under a long lease, whose range then
/// holds the late row. Once the batch's sends are recorded the lease no longer holds the
/// stream: the late row goes out at once, after the others, and without a lookup. (Before,
/// it waited for the 60 s lease to run out, and was then looked up in EventoDB as if it
/// might have been sent.) PostgreSQL only (SQLite runs one writer at a time).
pub(crate) async fn a_row_committed_late_inside_a_lease_is_not_held_by_it<DB: Backend>(
    pool: Pool<DB>,
) {
    a_late_row_goes_out_at_once(pool, "inside-1", 1).await;
}

/// Commits `before` rows on `stream`, then writes a row in a transaction left open, then
/// commits one more row. A sender with a 60 s lease sends the committed rows; then the open
/// transaction commits, and its row must go out within 10 s, last, without a lookup.
async fn a_late_row_goes_out_at_once<DB: Backend>(pool: Pool<DB>, stream: &str, before: i64) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let mut expected = Vec::new();
    for n in 0..before {
        expected.push(commit_one(&kit, stream, n).await);
    }
    let mut slow = pool.begin().await.unwrap();
    let late = kit
        .outbox()
        .write(
            &mut *slow,
            stream,
            RawMessage::new("Counted", json!({ "n": before })),
        )
        .await
        .unwrap()
        .id;
    let last = commit_one(&kit, stream, before + 1).await;
    expected.push(last);
    let sender = kit
        .outbox()
        .spawn_sender(fast().lease(Duration::from_secs(60)))
        .await
        .unwrap();
    kit.outbox()
        .wait_sent(last, Duration::from_secs(20))
        .await
        .unwrap();
    slow.commit().await.unwrap();
    kit.outbox()
        .wait_sent(late, Duration::from_secs(10))
        .await
        .expect("the late row is not held back until the 60 s lease ends");
    expected.push(late);
    assert_stream(&kit, stream, &expected).await;
    if let Some(reads) = env.count("stream.get") {
        assert_eq!(
            reads, 1,
            "only the test's own read: no lookup by the sender"
        );
    }
    sender.shutdown().await.unwrap();
}

pub(crate) async fn killed_senders_never_send_twice<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    if let Some(server) = &env.server {
        server.faults().latency(Duration::from_millis(3));
    }
    let mut expected: HashMap<String, Vec<Uuid>> = HashMap::new();
    for n in 0..30 {
        let stream = format!("crash-{}", n % 3);
        let id = commit_one(&kit, &stream, n).await;
        expected.entry(stream).or_default().push(id);
    }
    let options = fast().lease(Duration::from_millis(150));
    // Kill senders at arbitrary moments: between a send and its record, mid-request, idle.
    // Each runs in its own "process": its own pool, closed with it (a dead process's
    // connections are gone, with their open transactions and locks).
    for round in 0..8u64 {
        let process_pool = sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(4)
            .connect_with(pool.connect_options().as_ref().clone())
            .await
            .unwrap();
        let process_kit = env.kit(&process_pool);
        let sender = process_kit
            .outbox()
            .spawn_sender(options.clone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(7 + round * 5)).await;
        sender.kill();
        drop(process_kit);
        let _ = tokio::time::timeout(Duration::from_secs(5), process_pool.close()).await;
    }
    let sender = kit.outbox().spawn_sender(options).await.unwrap();
    drained(&kit, Duration::from_secs(30)).await;
    for (stream, ids) in &expected {
        assert_stream(&kit, stream, ids).await;
    }
    sender.shutdown().await.unwrap();
}

pub(crate) async fn two_senders_send_each_row_once_in_order<DB: Backend>(pool: Pool<DB>) {
    two_senders_drain(pool, "pair", 200, 0, 40, 5, ["a", "b"]).await;
}

/// Two processes configured with one worker id (a copy of one deployment's settings) are
/// still two lease owners: neither takes the other's leases for its own.
pub(crate) async fn two_senders_with_one_worker_id_send_each_row_once<DB: Backend>(pool: Pool<DB>) {
    two_senders_drain(pool, "twin", 3, 10, 20, 3, ["orders", "orders"]).await;
}

/// Batches of 3 rows, and a backlog of 10 rows per stream when the senders start: each stream
/// task claims its stream's next rows again and again (on PostgreSQL without the claim lock,
/// on the stream's lease row alone) while the other sender's claims look at the same streams.
pub(crate) async fn two_senders_with_small_batches_send_each_row_once_in_order<DB: Backend>(
    pool: Pool<DB>,
) {
    two_senders_drain(pool, "small", 3, 10, 20, 3, ["a", "b"]).await;
}

/// Two senders (4 streams in flight each, `batch_size` rows per claim) drain rows committed
/// round robin over `streams` streams: `before` rounds before they start, `during` rounds
/// while they run.
async fn two_senders_drain<DB: Backend>(
    pool: Pool<DB>,
    prefix: &str,
    batch_size: i64,
    before: i64,
    during: i64,
    streams: usize,
    worker_ids: [&str; 2],
) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    if let Some(server) = &env.server {
        server.faults().latency(Duration::from_millis(1));
    }
    let mut expected = commit_round_robin(&kit, prefix, before, streams).await;
    let options = fast()
        .lease(Duration::from_secs(10))
        .concurrency(4)
        .batch_size(batch_size);
    let a = kit
        .outbox()
        .spawn_sender(options.clone().worker_id(worker_ids[0]))
        .await
        .unwrap();
    let b = kit
        .outbox()
        .spawn_sender(options.worker_id(worker_ids[1]))
        .await
        .unwrap();
    for (stream, ids) in commit_round_robin(&kit, prefix, during, streams).await {
        expected.entry(stream).or_default().extend(ids);
    }
    drained(&kit, Duration::from_secs(30)).await;
    assert_streams(&kit, &env, &expected).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// The application keeps committing transactions of its own while two senders drain. On
/// SQLite they all meet on the write lock (each sender on a connection of its own, trying
/// again when refused); on PostgreSQL on the claim lock. Each row is still sent once, in
/// commit order per stream, and the application's writes all go through.
pub(crate) async fn sends_each_row_once_while_the_application_writes<DB: RawSql>(pool: Pool<DB>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    DB::exec_sql(&pool, "CREATE TABLE app_writes (n BIGINT)").await;
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let mut app = Vec::new();
    for _ in 0..2 {
        let (pool, stop, committed) = (pool.clone(), Arc::clone(&stop), Arc::clone(&committed));
        app.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                DB::exec_sql(&pool, "INSERT INTO app_writes (n) VALUES (1)").await;
                committed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let senders = [
        kit.outbox()
            .spawn_sender(fast().worker_id("a").concurrency(4))
            .await
            .unwrap(),
        kit.outbox()
            .spawn_sender(fast().worker_id("b").concurrency(4))
            .await
            .unwrap(),
    ];
    let expected = commit_round_robin(&kit, "busy", 40, 5).await;
    drained(&kit, Duration::from_secs(60)).await;
    stop.store(true, Ordering::Relaxed);
    for task in app {
        task.await.unwrap();
    }
    assert_streams(&kit, &env, &expected).await;
    let rows = DB::query_i64(&pool, "SELECT count(*) FROM app_writes").await;
    assert_eq!(rows, committed.load(Ordering::Relaxed));
    assert!(rows > 0, "the application wrote while the senders drained");
    for sender in senders {
        sender.shutdown().await.unwrap();
    }
}

pub(crate) async fn version_conflict_parks_only_its_stream<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let existing = kit
        .client()
        .stream_write(
            "acct-a",
            &NewMessage::new("Opened", json!({})),
            &WriteOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(existing.position, 0);
    let mut tx = pool.begin().await.unwrap();
    let stale = kit
        .outbox()
        .write(
            &mut *tx,
            "acct-a",
            RawMessage::new("Deposited", json!({"n": 1})),
        )
        .expected_version(5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let behind = commit_one(&kit, "acct-a", 2).await;
    let other: Vec<Uuid> = [
        commit_one(&kit, "acct-b", 1).await,
        commit_one(&kit, "acct-b", 2).await,
    ]
    .to_vec();
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    eventually(
        "the other stream drained",
        Duration::from_secs(20),
        || async {
            let status = kit.outbox().status().await.unwrap();
            (status.sent == 2 && status.failed == 1).then_some(())
        },
    )
    .await;
    assert_stream(&kit, "acct-b", &other).await;
    assert_eq!(
        read_stream(&kit, "acct-a").await.len(),
        1,
        "the parked stream sent nothing"
    );
    let failed = kit.outbox().failed(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, stale.id);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("version")
    );
    let held = kit.outbox().row(behind).await.unwrap().unwrap();
    assert_eq!((held.status, held.attempts), (RowStatus::Pending, 0));
    // Still parked a while later: no retries of a permanent failure.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        kit.outbox().row(stale.id).await.unwrap().unwrap().attempts,
        1
    );
    // The operator overrides the expected version: the stream flows again, in order.
    assert!(
        kit.outbox()
            .retry_without_expected_version(stale.id)
            .await
            .unwrap()
    );
    assert!(
        !kit.outbox().retry(stale.id).await.unwrap(),
        "no longer failed"
    );
    drained(&kit, Duration::from_secs(20)).await;
    let ids: Vec<Uuid> = read_stream(&kit, "acct-a")
        .await
        .iter()
        .map(|m| m.id.as_uuid().expect("the outbox writes UUIDs"))
        .collect();
    assert_eq!(ids[1..], [stale.id, behind]);
    sender.shutdown().await.unwrap();
}

/// More parked streams than one claim scans (they sort first) do not hold back a healthy
/// stream: a single wake-up goes round all of them.
pub(crate) async fn parked_streams_do_not_starve_the_others<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let parked: u64 = 300;
    let mut tx = pool.begin().await.unwrap();
    let batch: Vec<OutboxMessage> = (0..parked)
        .map(|n| {
            OutboxMessage::new(
                format!("parked-{n:03}"),
                RawMessage::new("Deposited", json!({ "n": n })),
            )
            // The streams are empty: every one of these is a real version conflict.
            .expected_version(5)
        })
        .collect();
    kit.outbox().write_batch(&mut *tx, batch).await.unwrap();
    tx.commit().await.unwrap();
    let sender = kit
        .outbox()
        .spawn_sender(fast().poll_interval(Duration::from_secs(3600)))
        .await
        .unwrap();
    eventually("every stream parked", Duration::from_secs(60), || async {
        let status = kit.outbox().status().await.unwrap();
        (status.failed == parked).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await; // the sender is idle now
    let healthy = commit_one(&kit, "zzz-healthy", 1).await;
    kit.outbox()
        .wait_sent(healthy, Duration::from_secs(10))
        .await
        .expect("sent on the commit's wake-up, past every parked stream");
    assert_stream(&kit, "zzz-healthy", &[healthy]).await;
    assert_eq!(kit.outbox().status().await.unwrap().failed, parked);
    sender.shutdown().await.unwrap();
}

/// A stream longer than one stream task keeps (rounds of `batch_size` rows) is handed back
/// with nothing left leased: it drains at once, and no row is looked up in EventoDB as if
/// its outcome were unknown.
pub(crate) async fn long_streams_leave_no_stranded_lease<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let mut tx = pool.begin().await.unwrap();
    let batch: Vec<OutboxMessage> = (0..300)
        .map(|n| OutboxMessage::new("long-1", RawMessage::new("Counted", json!({ "n": n }))))
        .collect();
    let ids = kit.outbox().write_batch(&mut *tx, batch).await.unwrap();
    tx.commit().await.unwrap();
    // A stranded lease would hold the stream for a minute.
    let options = fast().batch_size(5).lease(Duration::from_secs(60));
    let sender = kit.outbox().spawn_sender(options).await.unwrap();
    drained(&kit, Duration::from_secs(30)).await;
    let ids: Vec<Uuid> = ids.iter().map(|written| written.id).collect();
    assert_stream(&kit, "long-1", &ids).await;
    if let Some(reads) = env.count("stream.get") {
        assert_eq!(
            reads, 1,
            "only the test's own read: no lookups by the sender"
        );
    }
    sender.shutdown().await.unwrap();
}

/// A row a sender holds (its stream leased over the row) may be on its way to EventoDB: a
/// discard could neither stop that send nor keep the rows after it from overtaking it, so
/// it is refused with a typed error, and allowed again once the lease has run out.
pub(crate) async fn a_row_being_sent_cannot_be_discarded<DB: RawSql>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let id = commit_one(&kit, "busy-1", 1).await;
    stage_live_lease(&pool, kit.outbox().namespace(), "busy-1", "other-sender#1").await;
    let refused = kit.outbox().discard(id).await;
    assert!(
        matches!(&refused, Err(Error::OutboxRowInFlight { id: held }) if *held == id.to_string()),
        "{refused:?}"
    );
    assert_still_pending(&kit, id).await;
    // The sender stopped midway and its lease ran out over the row: the send may have landed
    // unrecorded. While EventoDB cannot say, the row is not given up.
    expire_leases(&pool).await;
    if let Some(server) = &env.server {
        server.faults().refuse_connections(true);
        let unknown = kit.outbox().discard(id).await;
        assert!(
            matches!(&unknown, Err(error) if error.is_transient()),
            "{unknown:?}"
        );
        assert_still_pending(&kit, id).await;
        server.faults().refuse_connections(false);
    }
    // EventoDB does not hold it: it can go.
    assert!(kit.outbox().discard(id).await.unwrap());
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!(row.status, RowStatus::Discarded);
}

/// A refused discard changed nothing: the row is still pending.
async fn assert_still_pending<DB: Backend>(kit: &Kit<DB>, id: Uuid) {
    let row = kit.outbox().row(id).await.unwrap().unwrap();
    assert_eq!(
        row.status,
        RowStatus::Pending,
        "the refusal changed nothing"
    );
}

/// Every lease ran out (its sender stopped without giving it back).
async fn expire_leases<DB: RawSql>(pool: &Pool<DB>) {
    DB::exec_sql(
        pool,
        "UPDATE eventodb_kit_outbox_leases SET lease_until = '2000-01-01T00:00:00.000Z'",
    )
    .await;
}

/// A row whose last attempt may have landed unrecorded is looked up in EventoDB before it is
/// discarded: one that is there is refused (and the sender then records it as sent, without
/// writing it again); one that is not is discarded.
pub(crate) async fn a_row_that_reached_eventodb_is_not_discarded<DB: RawSql>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    // Two rows whose send landed unrecorded: one marked outcome unknown (a timed-out
    // attempt), one under a lease that ran out (a sender that died after sending).
    let unknown = commit_one(&kit, "landed-1", 1).await;
    let lapsed = commit_one(&kit, "landed-2", 2).await;
    for (stream, id, n) in [("landed-1", unknown, 1), ("landed-2", lapsed, 2)] {
        kit.client()
            .stream_write(
                stream,
                &NewMessage::new("Counted", json!({ "n": n })),
                &WriteOptions::new().id(id),
            )
            .await
            .unwrap();
    }
    DB::exec_sql(
        &pool,
        &format!("UPDATE eventodb_kit_outbox SET outcome_unknown = TRUE WHERE id = '{unknown}'"),
    )
    .await;
    stage_live_lease(&pool, kit.outbox().namespace(), "landed-2", "dead-sender#1").await;
    expire_leases(&pool).await;
    // A row whose timed-out attempt did not land.
    let missing = commit_one(&kit, "landed-3", 3).await;
    DB::exec_sql(
        &pool,
        &format!("UPDATE eventodb_kit_outbox SET outcome_unknown = TRUE WHERE id = '{missing}'"),
    )
    .await;

    for (stream, id) in [("landed-1", unknown), ("landed-2", lapsed)] {
        let refused = kit.outbox().discard(id).await;
        assert!(
            matches!(&refused, Err(Error::OutboxRowAlreadySent { id: found, stream: s, position: 0 })
                if *found == id.to_string() && s == stream),
            "{refused:?}"
        );
        assert_still_pending(&kit, id).await;
    }
    assert!(kit.outbox().discard(missing).await.unwrap());

    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    drained(&kit, Duration::from_secs(20)).await;
    sender.shutdown().await.unwrap();
    assert_stream(&kit, "landed-1", &[unknown]).await;
    assert_stream(&kit, "landed-2", &[lapsed]).await;
    assert_stream(&kit, "landed-3", &[]).await;
    for id in [unknown, lapsed] {
        let row = kit.outbox().row(id).await.unwrap().unwrap();
        assert_eq!((row.status, row.position), (RowStatus::Sent, Some(0)));
    }
    assert_eq!(
        kit.outbox().row(missing).await.unwrap().unwrap().status,
        RowStatus::Discarded
    );
}

/// `wait_sent` says why a row is not sent: no sender took it within the timeout, or it is
/// parked (at once, not after the timeout).
pub(crate) async fn wait_sent_says_why_a_row_is_not_sent<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let waiting = commit_one(&kit, "why-1", 1).await;
    let timed_out = kit
        .outbox()
        .wait_sent(waiting, Duration::from_millis(200))
        .await;
    match &timed_out {
        Err(
            error @ Error::OutboxWaitTimeout {
                id,
                attempts: 0,
                last_error: None,
                ..
            },
        ) if *id == waiting.to_string() => {
            assert!(
                error.to_string().contains("is an outbox sender running?"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }

    let mut tx = pool.begin().await.unwrap();
    let doomed = kit
        .outbox()
        .write(&mut *tx, "why-2", RawMessage::new("T", json!({"n": 1})))
        .expected_version(9)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    kit.outbox()
        .wait_sent(waiting, Duration::from_secs(20))
        .await
        .unwrap();
    let parked = kit
        .outbox()
        .wait_sent(doomed.id, Duration::from_secs(3600))
        .await;
    assert!(
        matches!(&parked, Err(Error::OutboxRowFailed { id, error })
            if *id == doomed.id.to_string() && !error.is_empty()),
        "{parked:?}"
    );
    // A row behind the parked one is held back by it, and says so.
    let behind = commit_one(&kit, "why-2", 2).await;
    let held = kit
        .outbox()
        .wait_sent(behind, Duration::from_millis(300))
        .await;
    match &held {
        Err(
            error @ Error::OutboxWaitTimeout {
                held_by: Some(failed),
                ..
            },
        ) if *failed == doomed.id => {
            assert!(
                error.to_string().contains("held back behind failed row"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    sender.shutdown().await.unwrap();
}

pub(crate) async fn discard_unparks_the_stream<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let mut tx = pool.begin().await.unwrap();
    let doomed = kit
        .outbox()
        .write(
            &mut *tx,
            "acct-c",
            RawMessage::new("Deposited", json!({"n": 1})),
        )
        .expected_version(9)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let behind = commit_one(&kit, "acct-c", 2).await;
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    eventually("the row parked", Duration::from_secs(20), || async {
        (kit.outbox().status().await.unwrap().failed == 1).then_some(())
    })
    .await;
    assert!(kit.outbox().discard(doomed.id).await.unwrap());
    drained(&kit, Duration::from_secs(20)).await;
    assert_stream(&kit, "acct-c", &[behind]).await;
    assert_eq!(
        kit.outbox().row(doomed.id).await.unwrap().unwrap().status,
        RowStatus::Discarded
    );
    sender.shutdown().await.unwrap();
}

pub(crate) async fn shutdown_mid_drain_loses_nothing<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    if let Some(server) = &env.server {
        server.faults().latency(Duration::from_millis(5));
    }
    let mut expected: HashMap<String, Vec<Uuid>> = HashMap::new();
    for n in 0..60 {
        let stream = format!("stop-{}", n % 2);
        let id = commit_one(&kit, &stream, n).await;
        expected.entry(stream).or_default().push(id);
    }
    let sender = kit
        .outbox()
        .spawn_sender(fast().lease(Duration::from_secs(60)))
        .await
        .unwrap();
    eventually("some sent", Duration::from_secs(20), || async {
        (kit.outbox().status().await.unwrap().sent >= 5).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();
    // Every row is either sent and in EventoDB, or pending and not in EventoDB.
    let status = kit.outbox().status().await.unwrap();
    assert!(status.pending > 0, "shut down mid-drain: {status:?}");
    assert_eq!(status.pending + status.sent, 60);
    for (stream, ids) in &expected {
        let stored: Vec<Uuid> = read_stream(&kit, stream)
            .await
            .iter()
            .map(|m| m.id.as_uuid().expect("the outbox writes UUIDs"))
            .collect();
        let sent: Vec<Uuid> = {
            let mut sent = Vec::new();
            for id in ids {
                if kit.outbox().row(*id).await.unwrap().unwrap().status == RowStatus::Sent {
                    sent.push(*id);
                }
            }
            sent
        };
        assert_eq!(
            stored, sent,
            "stream {stream}: EventoDB holds exactly the sent rows"
        );
    }
    // Leases were given back: a new sender takes over at once (lease is 60 s).
    let next = kit.outbox().spawn_sender(fast()).await.unwrap();
    drained(&kit, Duration::from_secs(20)).await;
    for (stream, ids) in &expected {
        assert_stream(&kit, stream, ids).await;
    }
    next.shutdown().await.unwrap();
}

pub(crate) async fn purges_sent_rows_after_retention<DB: RawSql>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    for n in 0..12 {
        commit_one(&kit, "purge-1", n).await;
    }
    let sender = kit
        .outbox()
        .spawn_sender(
            fast()
                .retention(Duration::from_millis(50))
                .purge(Duration::from_millis(50), 5)
                .verification(Duration::from_millis(20), Duration::ZERO),
        )
        .await
        .unwrap();
    eventually("sent rows purged", Duration::from_secs(20), || async {
        let status = kit.outbox().status().await.unwrap();
        (status.pending == 0 && status.sent == 0).then_some(())
    })
    .await;
    assert_eq!(read_stream(&kit, "purge-1").await.len(), 12);
    // The stream's lease goes too once it has run out: no row per stream ever sent.
    eventually("stream lease purged", Duration::from_secs(20), || async {
        let leases = DB::query_i64(&pool, "SELECT count(*) FROM eventodb_kit_outbox_leases").await;
        (leases == 0).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();
}

/// An operator's purge deletes verified sent rows and discarded rows past the retention, and
/// keeps everything else: sent rows not yet read back, rows sent within the retention, and
/// rows not sent.
pub(crate) async fn the_purge_deletes_only_rows_past_the_retention<DB: RawSql>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    for stream in [
        "verified-1",
        "unverified-1",
        "discarded-1",
        "recent-1",
        "pending-1",
    ] {
        for n in 0..6 {
            commit_one(&kit, stream, n).await;
        }
    }
    let long_ago = "'2020-01-01T00:00:00.000Z'";
    for (stream, set) in [
        (
            "verified",
            format!("status = 'sent', sent_at = {long_ago}, verified_at = {long_ago}"),
        ),
        (
            "unverified",
            format!("status = 'sent', sent_at = {long_ago}"),
        ),
        (
            "discarded",
            format!("status = 'discarded', created_at = {long_ago}"),
        ),
        (
            "recent",
            "status = 'sent', sent_at = created_at, verified_at = created_at".to_owned(),
        ),
    ] {
        DB::exec_sql(
            &pool,
            &format!("UPDATE eventodb_kit_outbox SET {set} WHERE stream = '{stream}-1'"),
        )
        .await;
    }
    // Batches of 4: every branch of the purge is cut short at least once.
    let deleted = kit
        .outbox()
        .purge(Duration::from_secs(3600), 4)
        .await
        .unwrap();
    assert_eq!(deleted, 12);
    for (stream, left) in [
        ("verified", 0),
        ("unverified", 6),
        ("discarded", 0),
        ("recent", 6),
        ("pending", 6),
    ] {
        let count = DB::query_i64(
            &pool,
            &format!("SELECT count(*) FROM eventodb_kit_outbox WHERE stream = '{stream}-1'"),
        )
        .await;
        assert_eq!(count, left, "rows left on {stream}-1");
    }
    let status = kit.outbox().status().await.unwrap();
    assert_eq!(
        (status.pending, status.sent, status.unverified),
        (6, 12, 6),
        "{status:?}"
    );
}

/// `status()` reads its sent counts from a table that triggers keep, instead of counting a
/// week of rows on every health check. The counts follow every change to a row, by the kit
/// or by hand: sends (also one recorded twice), verification, a requeue, deletes; and a
/// migration applied over existing rows starts from their real counts.
pub(crate) async fn status_counts_follow_every_change_to_a_row<DB: RawSql>(pool: Pool<DB>) {
    let kit = offline_kit(&pool);
    commit_many(&kit, "counted", 40, 4).await;
    let check = |step: &'static str| {
        let (kit, pool) = (&kit, &pool);
        async move {
            let count = |condition: &str| {
                let sql = format!("SELECT count(*) FROM eventodb_kit_outbox WHERE {condition}");
                async move { DB::query_i64(pool, &sql).await }
            };
            let sent = count("status = 'sent'").await;
            let unverified = count("status = 'sent' AND verified_at IS NULL").await;
            let pending = count("status = 'pending'").await;
            let status = kit.outbox().status().await.unwrap();
            assert_eq!(
                (status.sent, status.unverified, status.pending),
                (sent as u64, unverified as u64, pending as u64),
                "after {step}"
            );
            (sent, unverified)
        }
    };
    assert_eq!(check("writing").await, (0, 0));
    let steps = [
        (
            "sending",
            "UPDATE eventodb_kit_outbox SET status = 'sent', sent_at = created_at,
                 position = 0, global_position = seq
             WHERE stream IN ('counted-0', 'counted-1', 'counted-2')",
            (30, 30),
        ),
        (
            "recording those sends again",
            "UPDATE eventodb_kit_outbox SET status = 'sent', sent_at = created_at
             WHERE status = 'sent'",
            (30, 30),
        ),
        (
            "verifying",
            "UPDATE eventodb_kit_outbox SET verified_at = created_at
             WHERE stream IN ('counted-0', 'counted-1')",
            (30, 10),
        ),
        (
            "verifying again",
            "UPDATE eventodb_kit_outbox SET verified_at = created_at
             WHERE stream = 'counted-0'",
            (30, 10),
        ),
        (
            "requeueing",
            "UPDATE eventodb_kit_outbox SET status = 'pending', sent_at = NULL, verified_at = NULL
             WHERE stream = 'counted-1' AND position = 0 AND seq = (
                 SELECT min(seq) FROM eventodb_kit_outbox WHERE stream = 'counted-1')",
            (29, 10),
        ),
        (
            "discarding a pending row",
            "UPDATE eventodb_kit_outbox SET status = 'discarded'
             WHERE seq = (SELECT min(seq) FROM eventodb_kit_outbox WHERE stream = 'counted-3')",
            (29, 10),
        ),
        (
            "deleting by hand",
            "DELETE FROM eventodb_kit_outbox WHERE stream IN ('counted-0', 'counted-2')",
            (9, 0),
        ),
    ];
    for (step, sql, expected) in steps {
        DB::exec_sql(&pool, sql).await;
        assert_eq!(check(step).await, expected, "after {step}");
    }
    // Down to the version before the counts and up again, over the rows there are now.
    let counts = eventodb_kit::migrations::<DB>()
        .iter()
        .find(|migration| migration.name == "outbox_counts")
        .expect("the counts migration")
        .version;
    eventodb_kit::migrate_down(&pool, counts - 1).await.unwrap();
    DB::exec_sql(
        &pool,
        "UPDATE eventodb_kit_outbox SET status = 'sent', sent_at = created_at
         WHERE stream = 'counted-3' AND status = 'pending'",
    )
    .await;
    assert!(
        eventodb_kit::migrate(&pool)
            .await
            .unwrap()
            .contains(&counts)
    );
    assert_eq!(check("migrating over existing rows").await, (18, 9));
}

/// Commits `rows` events spread over `streams` streams `{prefix}-N`, 1,000 per transaction.
async fn commit_many<DB: Backend>(kit: &Kit<DB>, prefix: &str, rows: usize, streams: usize) {
    for first in (0..rows).step_by(1000) {
        let mut tx = kit.pool().begin().await.expect("begin");
        let messages = (first..rows.min(first + 1000))
            .map(|n| {
                OutboxMessage::new(
                    format!("{prefix}-{}", n % streams),
                    RawMessage::new("Counted", json!({ "n": n })),
                )
            })
            .collect();
        kit.outbox()
            .write_batch(&mut *tx, messages)
            .await
            .expect("write");
        tx.commit().await.expect("commit");
    }
}

/// A purge of many rows runs beside the claims: a commit made while it runs is sent before
/// it ends. (Run inline, the purge held every claim until it had deleted all it could.)
pub(crate) async fn a_long_purge_does_not_hold_back_sends<DB: RawSql>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    // 20,000 rows sent long ago (as far as the outbox knows): 4,000 purge statements of 5.
    commit_many(&kit, "old", 20_000, 100).await;
    DB::exec_sql(
        &pool,
        "UPDATE eventodb_kit_outbox
        SET status = 'sent', sent_at = created_at, position = 0, global_position = 0",
    )
    .await;
    let old_rows = "SELECT count(*) FROM eventodb_kit_outbox WHERE stream LIKE 'old-%'";
    let sender = kit
        .outbox()
        .spawn_sender(
            fast()
                .retention(Duration::ZERO)
                .purge(Duration::from_secs(60), 5)
                .without_verification(),
        )
        .await
        .unwrap();
    eventually("the purge started", Duration::from_secs(20), || async {
        (DB::query_i64(&pool, old_rows).await < 20_000).then_some(())
    })
    .await;
    let id = commit_one(&kit, "fresh-1", 1).await;
    kit.outbox()
        .wait_sent(id, Duration::from_secs(20))
        .await
        .unwrap();
    let left = DB::query_i64(&pool, old_rows).await;
    assert!(left > 0, "the send waited for the whole purge");
    assert_stream(&kit, "fresh-1", &[id]).await;
    eventually("the purge ended", Duration::from_secs(60), || async {
        (DB::query_i64(&pool, old_rows).await == 0).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();
}

/// A verification sweep waiting on a slow EventoDB runs beside the claims: a commit made
/// while it reads is sent before the sweep's page is done.
pub(crate) async fn a_slow_sweep_does_not_hold_back_sends<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("a_slow_sweep_does_not_hold_back_sends").await else {
        return;
    };
    let kit = env.kit(&pool);
    // 1,000 sent rows over 100 streams, not verified yet.
    commit_many(&kit, "swept", 1000, 100).await;
    let first = kit
        .outbox()
        .spawn_sender(fast().without_verification())
        .await
        .unwrap();
    drained(&kit, Duration::from_secs(30)).await;
    first.shutdown().await.unwrap();
    assert_eq!(kit.outbox().status().await.unwrap().unverified, 1000);

    // Every request now takes 300 ms: the sweep's page of 1,000 rows reads 100 streams, 8 at
    // a time, about 4 s; a send takes one request.
    env.server().faults().latency(Duration::from_millis(300));
    let sender = kit
        .outbox()
        .spawn_sender(
            fast()
                .verification(Duration::from_millis(20), Duration::ZERO)
                .shutdown_timeout(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    // The first sweep starts 100 ms after the sender.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let id = commit_one(&kit, "fresh-1", 1).await;
    kit.outbox()
        .wait_sent(id, Duration::from_secs(20))
        .await
        .unwrap();
    let unverified = kit.outbox().status().await.unwrap().unverified;
    assert!(
        unverified >= 1000,
        "the send waited for the sweep's page ({unverified} rows left to verify)"
    );
    // A stopping sender does not wait for the sweep's reads: with EventoDB answering after
    // 60 s (the client gives up after 10), it stops within its 3 s shutdown timeout.
    env.server().faults().latency(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(500)).await;
    sender.shutdown().await.unwrap();

    env.server().faults().latency(Duration::ZERO);
    let sender = kit
        .outbox()
        .spawn_sender(fast().verification(Duration::from_millis(20), Duration::ZERO))
        .await
        .unwrap();
    eventually("everything verified", Duration::from_secs(30), || async {
        (kit.outbox().status().await.unwrap().unverified == 0).then_some(())
    })
    .await;
    assert_stream(&kit, "fresh-1", &[id]).await;
    sender.shutdown().await.unwrap();
}

/// A stream with many rows gives its slot up after a time slice when another stream waits
/// for one: with a single slot, a later stream's event is sent while the long stream still
/// has rows, and each stream keeps its order.
pub(crate) async fn a_long_stream_takes_turns_with_waiting_streams<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("a_long_stream_takes_turns_with_waiting_streams").await else {
        return;
    };
    let kit = env.kit(&pool);
    // 60 sends of 30 ms each: the long stream alone would hold the slot for 1.8 s.
    commit_many(&kit, "long", 60, 1).await;
    let short = commit_one(&kit, "short-1", 1).await;
    env.server().faults().latency(Duration::from_millis(30));
    let sender = kit
        .outbox()
        .spawn_sender(fast().concurrency(1))
        .await
        .unwrap();
    kit.outbox()
        .wait_sent(short, Duration::from_secs(20))
        .await
        .unwrap();
    let pending = kit.outbox().status().await.unwrap().pending;
    assert!(
        pending > 0,
        "the waiting stream was sent only after the long one had sent all its rows"
    );
    drained(&kit, Duration::from_secs(30)).await;
    sender.shutdown().await.unwrap();
    env.server().faults().latency(Duration::ZERO);
    let long: Vec<i64> = read_stream(&kit, "long-0")
        .await
        .iter()
        .map(|message| message.data["n"].as_i64().unwrap())
        .collect();
    assert_eq!(long, (0..60).collect::<Vec<_>>());
    assert_stream(&kit, "short-1", &[short]).await;
}

/// Checks that a `Value` is what we wrote, for the JSON round trip through both databases
/// (quotes, escapes and nulls included).
pub(crate) async fn data_and_metadata_round_trip<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let data = json!({
        "text": "héllo ✓ 🎉", "n": 12345678901_i64, "f": 1.5, "neg": -7,
        "list": [1, {"a": null}], "t": true,
        "escapes": "quote \" back\\slash \n tab\t nul-ish \u{1} end",
        "key \"with\" quotes": "]},[",
    });
    let metadata = json!({"correlationStreamName": "flow-1", "schemaVersion": 2});
    let message_type = "Mixed \"quoted\" ✓";
    let mut tx = pool.begin().await.unwrap();
    let first = kit
        .outbox()
        .write(
            &mut *tx,
            "json-1",
            RawMessage::new(message_type, data.clone()).metadata(metadata.clone()),
        )
        .await
        .unwrap();
    // No metadata, and an expected version: the other arm of each null.
    let second = kit
        .outbox()
        .write_batch(
            &mut *tx,
            vec![
                OutboxMessage::new("json-1", RawMessage::new("Plain", json!({})))
                    .expected_version(0),
            ],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    kit.outbox()
        .wait_sent(second[0].id, Duration::from_secs(10))
        .await
        .unwrap();
    let stored = read_stream(&kit, "json-1").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].id, first.id);
    assert_eq!(stored[0].message_type, message_type);
    assert_eq!(stored[0].data, data);
    assert_eq!(stored[0].metadata.as_ref(), Some(&metadata));
    assert_eq!(stored[1].id, second[0].id);
    assert_eq!(stored[1].message_type, "Plain");
    assert_eq!(stored[1].data, json!({}));
    assert_eq!(stored[1].metadata, None);
    assert_eq!(stored[1].position, 1);
    sender.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- verification (issue 8)

/// Sends `n` events to `stream` and waits until they are sent; returns their ids.
async fn send_and_wait<DB: Backend>(kit: &Kit<DB>, stream: &str, n: i64) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(commit_one(kit, stream, i).await);
    }
    for id in &ids {
        kit.outbox()
            .wait_sent(*id, Duration::from_secs(10))
            .await
            .unwrap();
    }
    ids
}

/// Sends `n` events to `stream`, the only ones in the outbox, and waits until they are sent
/// and verified; returns their ids.
async fn send_and_verify<DB: Backend>(kit: &Kit<DB>, stream: &str, n: i64) -> Vec<Uuid> {
    let ids = send_and_wait(kit, stream, n).await;
    eventually("verified", Duration::from_secs(20), || async {
        let status = kit.outbox().status().await.unwrap();
        (i64::try_from(status.sent) == Ok(n) && status.unverified == 0).then_some(())
    })
    .await;
    ids
}

pub(crate) async fn lost_writes_are_resent_exactly_once<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("lost_writes_are_resent_exactly_once").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let sender = kit
        .outbox()
        .spawn_sender(
            fast()
                .verification(Duration::from_millis(20), Duration::from_millis(600))
                // Lost rows are sent again at once, not at the next poll.
                .poll_interval(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let ids = send_and_wait(&kit, "lossy-1", 5).await;
    // The server crashes and comes back without its last 3 acknowledged writes.
    server.faults().forget_last_writes(3);
    server.restart().await.unwrap();
    assert_eq!(read_stream(&kit, "lossy-1").await.len(), 2);
    eventually(
        "lost rows found and re-sent",
        Duration::from_secs(20),
        || async {
            let status = kit.outbox().status().await.unwrap();
            (status.lost == 3 && status.pending == 0 && status.unverified == 0).then_some(status)
        },
    )
    .await;
    assert_stream(&kit, "lossy-1", &ids).await;
    let row = kit.outbox().row(ids[4]).await.unwrap().unwrap();
    assert_eq!((row.status, row.position), (RowStatus::Sent, Some(4)));
    assert!(row.last_error.unwrap_or_default().contains("lost"));
    sender.shutdown().await.unwrap();
}

/// A crashed Pebble-backed server loses every write since it opened, verified ones too (a
/// read-back sees the same unsynced state the write made): the sweep notices that the newest
/// verified events are gone and checks every kept one again.
pub(crate) async fn verified_events_lost_in_a_crash_are_resent<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("verified_events_lost_in_a_crash_are_resent").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let sender = kit
        .outbox()
        .spawn_sender(fast().verification(Duration::from_millis(20), Duration::ZERO))
        .await
        .unwrap();
    let mut ids = send_and_wait(&kit, "crash-1", 3).await;
    ids.extend(send_and_wait(&kit, "crash-2", 2).await);
    eventually("all verified", Duration::from_secs(20), || async {
        let status = kit.outbox().status().await.unwrap();
        (status.sent == 5 && status.unverified == 0).then_some(())
    })
    .await;
    server.faults().crash();
    eventually(
        "the lost events found and sent again",
        Duration::from_secs(20),
        || async {
            let status = kit.outbox().status().await.unwrap();
            (status.lost == 5 && status.pending == 0 && status.unverified == 0).then_some(status)
        },
    )
    .await;
    assert_stream(&kit, "crash-1", &ids[..3]).await;
    assert_stream(&kit, "crash-2", &ids[3..]).await;
    sender.shutdown().await.unwrap();
}

/// Verified events and a later one not yet verified, all lost in one crash: they are sent
/// again in the order they were first sent. The crash comes just after a check of the
/// newest verified events, so the sweep finds the unverified one lost first; putting it
/// back at once sent it ahead of the others.
pub(crate) async fn events_lost_in_a_crash_are_resent_in_order<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("events_lost_in_a_crash_are_resent_in_order").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let sender = kit
        .outbox()
        .spawn_sender(fast().verification(Duration::from_millis(20), Duration::from_secs(2)))
        .await
        .unwrap();
    let mut ids = send_and_verify(&kit, "order-1", 3).await;
    ids.extend(send_and_wait(&kit, "order-1", 1).await);
    // The next check of the newest verified events (the only read while the new event is
    // younger than 2 s), then the crash.
    server.reset_stats();
    eventually("a check of the newest", Duration::from_secs(10), || async {
        (server.stats().count("stream.get") > 0).then_some(())
    })
    .await;
    server.faults().crash();
    eventually("all four sent again", Duration::from_secs(20), || async {
        let status = kit.outbox().status().await.unwrap();
        (status.lost == 4 && status.pending == 0 && status.unverified == 0).then_some(())
    })
    .await;
    assert_stream(&kit, "order-1", &ids).await;
    sender.shutdown().await.unwrap();
}

/// Two sweeps finding one loss at once: the one whose walk back finds the newest verified
/// events made unverified by the other puts nothing back until that walk is done. It used to
/// put its lost row back at once, which sent it ahead of the verified events lost with it.
/// The other sweep is played by a trigger that makes each of this sweep's attempts to make
/// a verified row unverified change nothing, as if another sweep had just done it.
pub(crate) async fn a_sweep_puts_nothing_back_while_another_walks_back<DB: Backend + RawSql>(
    pool: Pool<DB>,
) {
    let Some(env) = Env::ours("a_sweep_puts_nothing_back_while_another_walks_back").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let young = Duration::from_secs(2);
    let sender = kit
        .outbox()
        .spawn_sender(fast().verification(Duration::from_millis(20), young))
        .await
        .unwrap();
    let mut ids = send_and_verify(&kit, "walk-1", 3).await;
    for sql in DB::SKIP_UNVERIFY.0 {
        DB::exec_sql(&pool, sql).await;
    }
    ids.extend(send_and_wait(&kit, "walk-1", 1).await);
    let sent_at = std::time::Instant::now();
    server.faults().crash();
    // Sweeps that read the unverified event back, found it lost, and walked back.
    tokio::time::sleep(young.saturating_sub(sent_at.elapsed())).await;
    server.reset_stats();
    eventually(
        "sweeps after the crash",
        Duration::from_secs(20),
        || async { (server.stats().count("stream.get") >= 4).then_some(()) },
    )
    .await;
    let status = kit.outbox().status().await.unwrap();
    assert_eq!(
        (status.lost, status.pending, status.sent),
        (0, 0, 4),
        "nothing put back while another sweep walks back"
    );
    for sql in DB::SKIP_UNVERIFY.1 {
        DB::exec_sql(&pool, sql).await;
    }
    eventually("all four sent again", Duration::from_secs(20), || async {
        let status = kit.outbox().status().await.unwrap();
        (status.lost == 4 && status.pending == 0 && status.unverified == 0).then_some(())
    })
    .await;
    assert_stream(&kit, "walk-1", &ids).await;
    sender.shutdown().await.unwrap();
}

pub(crate) async fn nothing_is_purged_before_verification<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let sender = kit
        .outbox()
        .spawn_sender(
            fast()
                .retention(Duration::ZERO)
                .purge(Duration::from_millis(20), 100)
                .verification(Duration::from_millis(20), Duration::from_millis(500)),
        )
        .await
        .unwrap();
    send_and_wait(&kit, "keep-1", 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = kit.outbox().status().await.unwrap();
    assert_eq!(
        (status.sent, status.unverified),
        (4, 4),
        "kept until verified"
    );
    eventually("verified, then purged", Duration::from_secs(20), || async {
        (kit.outbox().status().await.unwrap().sent == 0).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();
}

pub(crate) async fn a_stream_that_moved_on_gets_the_lost_event_at_its_end<DB: Backend>(
    pool: Pool<DB>,
) {
    let Some(env) = Env::ours("a_stream_that_moved_on_gets_the_lost_event_at_its_end").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let options = fast().verification(Duration::from_millis(20), Duration::from_millis(600));
    let sender = kit.outbox().spawn_sender(options).await.unwrap();
    let ids = send_and_wait(&kit, "moved-1", 2).await;
    server.faults().forget_last_writes(1);
    server.restart().await.unwrap();
    // Someone else writes to the stream: position 1 now holds another event.
    // (The first call may meet a pooled connection the restart closed: retry it.)
    let other_id = Uuid::now_v7();
    let mut attempt = 0;
    let other = loop {
        let written = kit
            .client()
            .stream_write(
                "moved-1",
                &NewMessage::new("Other", json!({})),
                &WriteOptions::new().id(other_id),
            )
            .await;
        match written {
            Ok(written) => break written,
            Err(error) if attempt < 3 && !error.is_duplicate_id() => attempt += 1,
            Err(error) => panic!("write: {error}"),
        }
    };
    assert_eq!(other.position, 1);
    eventually(
        "the lost event re-sent",
        Duration::from_secs(20),
        || async {
            let status = kit.outbox().status().await.unwrap();
            (status.lost == 1 && status.pending == 0).then_some(())
        },
    )
    .await;
    let stored: Vec<Uuid> = read_stream(&kit, "moved-1")
        .await
        .iter()
        .map(|m| m.id.as_uuid().expect("the outbox writes UUIDs"))
        .collect();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0], ids[0]);
    assert_eq!(stored[2], ids[1], "re-sent at the end");
    let row = kit.outbox().row(ids[1]).await.unwrap().unwrap();
    assert_eq!(row.position, Some(2));
    assert!(
        row.last_error
            .unwrap_or_default()
            .contains("order not kept")
    );
    sender.shutdown().await.unwrap();
}

pub(crate) async fn an_idle_sweep_only_reads_back_the_newest_events<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("an_idle_sweep_only_reads_back_the_newest_events").await else {
        return;
    };
    let server = env.server();
    let kit = env.kit(&pool);
    let sender = kit
        .outbox()
        .spawn_sender(fast().verification(Duration::from_millis(10), Duration::from_millis(400)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.stats().total(), 0, "nothing to verify: no request");
    send_and_wait(&kit, "idle-1", 3).await;
    send_and_wait(&kit, "idle-2", 1).await;
    eventually("verified", Duration::from_secs(10), || async {
        (kit.outbox().status().await.unwrap().unverified == 0).then_some(())
    })
    .await;
    // Everything verified: the newest verified events are read back once per 400 ms, one
    // read per stream (two here), and nothing else is asked.
    server.reset_stats();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let reads = server.stats().count("stream.get");
    assert_eq!(server.stats().total(), reads, "only reads");
    // Two or three checks in the second, of two reads each, one perhaps cut by its edges.
    assert!((1..=8).contains(&reads), "{reads} reads in 1 s");
    sender.shutdown().await.unwrap();
}

/// A message id is unique per namespace, as in EventoDB: two namespaces sharing one database
/// each write and send an event under the same custom id (a tenant's ids derived from its own
/// keys), while a second use within one namespace is still refused.
pub(crate) async fn one_id_in_two_namespaces_is_sent_to_both<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let second = format!("second{}", &Uuid::new_v4().simple().to_string()[..10]);
    let created = env
        .client
        .ns_create(&second, &eventodb_kit::client::NsCreateOptions::new())
        .await
        .expect("ns.create");
    let other = Kit::builder("unused")
        .client(
            eventodb_kit::Client::builder(env.client.base_url().to_owned())
                .token(created.token)
                .build()
                .expect("client"),
        )
        .database(pool.clone())
        .build()
        .expect("kit");
    assert_ne!(kit.namespace(), other.namespace());
    let id = Uuid::new_v4();
    for (kit, n) in [(&kit, 1), (&other, 2)] {
        let mut tx = pool.begin().await.unwrap();
        kit.outbox()
            .write(
                &mut *tx,
                "tenant-1",
                RawMessage::new("T", json!({ "n": n })),
            )
            .id(id)
            .await
            .expect("the same id in another namespace");
        tx.commit().await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    let again = kit
        .outbox()
        .write(
            &mut *tx,
            "tenant-2",
            RawMessage::new("T", json!({ "n": 3 })),
        )
        .id(id)
        .await;
    assert!(
        matches!(&again, Err(Error::OutboxDuplicateId { .. })),
        "{again:?}"
    );
    drop(tx);
    for (kit, n) in [(&kit, 1), (&other, 2)] {
        let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
        kit.outbox()
            .wait_sent(id, Duration::from_secs(30))
            .await
            .unwrap();
        sender.shutdown().await.unwrap();
        let events = kit
            .client()
            .stream_get("tenant-1", &GetStreamOptions::new())
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, id);
        assert_eq!(events[0].data, json!({ "n": n }));
    }
    env.client.ns_delete(&second).await.expect("ns.delete");
}

/// Taking the per-namespace id constraint back and applying it again (on SQLite, two
/// rebuilds of the table) keeps every row, its state and the sent counts; rows written after
/// it are sent after the older ones.
pub(crate) async fn the_id_constraint_migration_keeps_every_row<DB: Backend>(pool: Pool<DB>) {
    let env = Env::new("outbox").await;
    let kit = env.kit(&pool);
    let write = |n: i64| {
        let (kit, pool) = (&kit, &pool);
        async move {
            let mut tx = pool.begin().await.unwrap();
            let written = kit
                .outbox()
                .write(&mut *tx, "kept-1", RawMessage::new("T", json!({ "n": n })))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            written.id
        }
    };
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(write(n).await);
    }
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    for id in &sent {
        kit.outbox()
            .wait_sent(*id, Duration::from_secs(30))
            .await
            .unwrap();
    }
    sender.shutdown().await.unwrap();
    let pending = write(3).await;
    let before = kit.outbox().status().await.unwrap();
    assert_eq!((before.pending, before.sent), (1, 3));
    let version = eventodb_kit::migrations::<DB>()
        .iter()
        .find(|step| step.name == "outbox_id_per_namespace")
        .expect("the migration")
        .version;
    // It and the migrations after it.
    let from_it: Vec<_> = eventodb_kit::migrations::<DB>()
        .iter()
        .map(|step| step.version)
        .filter(|&step| step >= version)
        .collect();
    let undone = eventodb_kit::migrate_down(&pool, version - 1)
        .await
        .unwrap();
    assert_eq!(undone, from_it.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(eventodb_kit::migrate(&pool).await.unwrap(), from_it);
    let after = kit.outbox().status().await.unwrap();
    assert_eq!(
        (after.pending, after.sent, after.unverified),
        (before.pending, before.sent, before.unverified)
    );
    for id in &sent {
        let row = kit.outbox().row(*id).await.unwrap().expect("the row");
        assert_eq!(row.status, RowStatus::Sent);
    }
    let later = write(4).await;
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    kit.outbox()
        .wait_sent(pending, Duration::from_secs(30))
        .await
        .unwrap();
    kit.outbox()
        .wait_sent(later, Duration::from_secs(30))
        .await
        .unwrap();
    sender.shutdown().await.unwrap();
    let events = kit
        .client()
        .stream_get("kept-1", &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .map(|event| event.data["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2, 3, 4],
        "sent once each, in order"
    );
}

/// `Sender::drain` sends what is pending and then stops; with EventoDB down it gives up at
/// its deadline, says how many rows wait and why, and leaves them for the next sender.
pub(crate) async fn drain_sends_the_backlog_then_stops<DB: Backend>(pool: Pool<DB>) {
    let Some(env) = Env::ours("drain_sends_the_backlog_then_stops").await else {
        return;
    };
    let kit = env.kit(&pool);
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(commit_one(&kit, &format!("drain-{}", n % 4), n).await);
    }
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    sender.drain(Duration::from_secs(30)).await.unwrap();
    assert_eq!(kit.outbox().status().await.unwrap().pending, 0);
    for id in &ids {
        let row = kit.outbox().row(*id).await.unwrap().expect("row");
        assert_eq!(row.status, RowStatus::Sent);
    }

    // EventoDB down: the deadline passes with the rows still pending.
    env.server().faults().refuse_connections(true);
    let late: Vec<Uuid> = {
        let mut late = Vec::new();
        for n in 0..3 {
            late.push(commit_one(&kit, "drain-late", n).await);
        }
        late
    };
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    let refused = sender.drain(Duration::from_millis(500)).await;
    match refused {
        Err(Error::OutboxDrainTimeout {
            pending: 3,
            retry_error: Some(why),
            ..
        }) => assert!(why.contains("transport error"), "{why}"),
        other => panic!("a drain timeout naming the 3 rows and why: {other:?}"),
    }
    env.server().faults().refuse_connections(false);
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    sender.drain(Duration::from_secs(30)).await.unwrap();
    assert_stream(&kit, "drain-late", &late).await;
}
