//! The consumer scenarios on PostgreSQL (`DATABASE_URL`; a fresh schema per test). Skipped,
//! with a printed reason, when `DATABASE_URL` is unset (and then failed when
//! `EVENTODB_KIT_REQUIRE_POSTGRES` is set, as in CI).

mod consumer_scenarios;
mod eventodb_env;
mod pg_schema;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use consumer_scenarios::Db;
use pg_schema::PgSchema;
use sqlx::{PgConnection, PgPool, Postgres};

async fn fresh() -> Option<PgSchema> {
    pg_schema::fresh("consumer", 12).await
}

async fn cleanup(db: PgSchema) {
    db.cleanup().await;
}

impl Db for Postgres {
    async fn create_effects(pool: &PgPool) {
        sqlx::query("CREATE TABLE consumer_effects (event_id TEXT NOT NULL, stream TEXT NOT NULL)")
            .execute(pool)
            .await
            .expect("create effects");
    }

    async fn insert_effect(
        conn: &mut PgConnection,
        event_id: &str,
        stream: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO consumer_effects (event_id, stream) VALUES ($1, $2)")
            .bind(event_id)
            .bind(stream)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn effect_counts(pool: &PgPool) -> HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT event_id, count(*) FROM consumer_effects GROUP BY event_id",
        )
        .fetch_all(pool)
        .await
        .expect("effects")
        .into_iter()
        .collect()
    }

    async fn effects_seen_by(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM consumer_effects")
            .fetch_one(conn)
            .await?;
        Ok(count)
    }

    async fn release_elsewhere(pool: &PgPool, stream: &str) {
        let done = sqlx::query(
            "UPDATE eventodb_kit_parked_streams SET released_at = now() WHERE stream = $1",
        )
        .bind(stream)
        .execute(pool)
        .await
        .expect("release");
        assert_eq!(done.rows_affected(), 1, "{stream} is parked");
    }

    async fn hand_members_to(pool: &PgPool, owner: Option<&str>) {
        let query = match owner {
            Some(owner) => sqlx::query("UPDATE eventodb_kit_consumer_positions SET owner = $1, owned_until = now() + interval '1 hour', resets = resets + 1").bind(owner.to_owned()),
            None => sqlx::query("UPDATE eventodb_kit_consumer_positions SET owner = NULL, owned_until = NULL"),
        };
        query.execute(pool).await.expect("hand the members over");
    }

    async fn fail_a_statement(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1 / 0").execute(conn).await.map(|_| ())
    }

    async fn block_processed_batches(pool: &PgPool, blocked: bool) {
        let sql = if blocked {
            "CREATE FUNCTION test_block_batches() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'processed batches blocked by the test'; END $$;
             CREATE TRIGGER test_block_batches BEFORE INSERT ON eventodb_kit_processed_batches
             FOR EACH ROW EXECUTE FUNCTION test_block_batches();"
        } else {
            "DROP TRIGGER test_block_batches ON eventodb_kit_processed_batches;
             DROP FUNCTION test_block_batches();"
        };
        sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .expect("block processed batches");
    }

    async fn processed_batch_ids(pool: &PgPool) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT jsonb_array_elements_text(event_ids) FROM eventodb_kit_processed_batches",
        )
        .fetch_all(pool)
        .await
        .expect("processed batches")
    }

    async fn create_deferred_foreign_key(pool: &PgPool) {
        sqlx::raw_sql(consumer_scenarios::DEFERRED_FOREIGN_KEY)
            .execute(pool)
            .await
            .expect("create the foreign key");
    }

    async fn insert_orphan(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(consumer_scenarios::INSERT_ORPHAN)
            .execute(conn)
            .await
            .map(|_| ())
    }
}

consumer_scenarios!(fresh, cleanup;
    killed_mid_batch_resumes_exactly_once,
    group_of_three_matches_the_server_partition,
    resizing_a_group_loses_and_repeats_nothing,
    poison_event_stops_the_consumer,
    a_panicking_handler_fails_like_an_error,
    a_second_instance_stands_by,
    a_failed_spawn_frees_its_members,
    a_long_shared_transaction_keeps_its_member,
    // PostgreSQL only: SQLite goes on with a transaction after a failed statement.
    a_handler_that_breaks_its_transaction_fails,
    poison_event_parks_its_stream_until_released,
    poison_event_is_skipped_with_a_record,
    sse_outage_reconnects,
    a_consumer_stops_when_eventodb_loses_its_position,
    a_polling_consumer_stops_when_eventodb_loses_its_position,
    sse_outage_falls_back_to_polling,
    two_consumers_both_see_every_event,
    wait_for_times_out_while_behind,
    outbox_commit_reaches_the_handler,
    correlation_filter_sees_only_matching_events,
    bad_options_are_refused,
    an_unmigrated_database_is_named_as_such,
    batched_transactions_commit_effects_once,
    failure_mid_batch_is_retried_alone,
    poison_mid_batch_is_skipped_alone,
    poison_mid_batch_parks_only_its_stream,
    killed_inside_a_batch_transaction_leaves_no_partial_effects,
    doubled_group_members_never_handle_twice,
    released_stream_replays_on_its_member_only,
    release_elsewhere_is_seen_while_busy,
    processed_events_are_not_parked_again,
    group_member_gets_past_a_window_of_others_events,
    group_members_pass_others_events_on_a_filtering_server,
    correlation_consumer_gets_past_a_window_of_unmatched_events,
    correlation_consumer_passes_unmatched_events_on_a_filtering_server,
    foreign_ids_are_handled_parked_and_released,
    a_reset_takes_effect_while_running,
    a_failure_before_a_reset_is_handled_again,
    a_replay_before_a_reset_is_handled_again,
    a_release_after_a_reset_keeps_the_stream_in_order,
    a_save_given_up_at_shutdown_is_made_by_the_last,
    a_save_given_up_while_busy_is_made_by_the_last,
    a_consumer_records_whether_it_runs,
    a_handler_whose_commit_breaks_a_constraint_fails,
    // PostgreSQL only: SQLite stores a NUL in JSON text.
    an_event_the_database_cannot_park_stops_the_consumer,
    an_event_the_database_cannot_record_stops_the_consumer,
);

/// Two transactional consumers (events in shared transactions of 5, and one by one) and a
/// plain one, on `consumer_pool`, all with retries that would poison an event after two
/// failed tries, handle 150 events while `disrupt` runs (it starts once they are midway; it
/// gets the last event's global position and the consumers' handles): every event is handled by each, has exactly one effect per
/// transactional consumer, nothing is parked and every position reaches the end.
async fn consumers_work_through<F, Fut>(db: &PgSchema, consumer_pool: &PgPool, disrupt: F)
where
    F: FnOnce(i64, Vec<eventodb_kit::consumer::ConsumerHandle>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use consumer_scenarios::{Log, Recorder, eventually};
    use eventodb_kit::consumer::{ConsumerAdmin, ConsumerOptions, RetryPolicy};

    let env = consumer_scenarios::Env::new("consumer").await;
    Postgres::create_effects(&db.pool).await;
    let kit = env.kit(consumer_pool);
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..150 {
        let (id, at) = env.write(&format!("order-{}", i % 9), "Placed", i).await;
        ids.push(id);
        last = at.global_position;
    }
    let log = Log::default();
    let retry = RetryPolicy::new(2, Duration::from_millis(1), Duration::from_millis(5));
    let transactional = |name: &str, per_transaction: usize| {
        let recorder = Recorder::new("order", name, &log)
            .effects()
            .delay(Duration::from_millis(1));
        let options = ConsumerOptions::new(name)
            .batch_size(20)
            .transactional(true)
            .transaction_batch(per_transaction)
            .read_retry_max(Duration::from_millis(200))
            .retry(retry);
        (recorder, options)
    };
    let (shared, shared_options) = transactional("shared", 5);
    let (alone, alone_options) = transactional("alone", 1);
    let workers = kit
        .workers()
        .consumer(shared, shared_options)
        .consumer(alone, alone_options)
        .consumer(
            Recorder::new("order", "plain", &log).delay(Duration::from_millis(1)),
            ConsumerOptions::new("plain")
                .batch_size(20)
                .position_update_interval(7)
                .read_retry_max(Duration::from_millis(200))
                .retry(retry),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually(
        "the consumers are midway",
        Duration::from_secs(30),
        || async {
            let positions: Vec<i64> = workers.consumers().iter().map(|h| h.position()).collect();
            positions.iter().any(|&p| p >= last / 4) && positions.iter().any(|&p| p < last)
        },
    )
    .await;
    disrupt(last, workers.consumers().to_vec()).await;
    for handle in workers.consumers() {
        handle
            .wait_for(last, Duration::from_secs(60))
            .await
            .unwrap_or_else(|error| panic!("{} caught up: {error}", handle.name()));
    }
    workers.shutdown().await.expect("shutdown");

    let effects = Postgres::effect_counts(&db.pool).await;
    let expected: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    for id in &expected {
        // One effect per transactional consumer.
        assert_eq!(
            effects.get(id),
            Some(&2),
            "event {id}: one effect per consumer"
        );
    }
    assert_eq!(effects.len(), expected.len(), "no other effects");
    for tag in ["shared", "alone", "plain"] {
        let seen: HashSet<String> = log.ids_of(tag).iter().map(ToString::to_string).collect();
        assert_eq!(seen, expected, "{tag} handled every event");
    }
    let admin = ConsumerAdmin::for_kit(&env.kit(&db.pool));
    for name in ["shared", "alone", "plain"] {
        assert!(
            admin.parked("order", name).await.unwrap().is_empty(),
            "{name} parked nothing"
        );
        let positions = admin.positions("order", name).await.unwrap();
        assert_eq!(
            positions[0].global_position, last,
            "{name} saved its position"
        );
    }
}

/// PostgreSQL ends the consumers' sessions again and again while they work, as a restart or
/// failover does: handler transactions, savepoints, position saves and processed records fail
/// mid-flight, some of them after PostgreSQL committed them.
/// [`consumer_scenarios::a_replay_before_a_reset_is_handled_again`] for a transactional
/// consumer, whose replay records in the handler's transaction (PostgreSQL only: on SQLite
/// that transaction holds the write lock the reset needs while the handler waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transactional_replay_before_a_reset_is_handled_again() {
    consumer_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    consumer_scenarios::replay_then_reset(db.pool.clone(), true).await;
    cleanup(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_database_connections_lose_and_repeat_no_effect() {
    consumer_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    // The consumers' "process": a pool of its own, named so that only its sessions end.
    let name = format!("consumer_dropped_{}", uuid::Uuid::new_v4().simple());
    let consumer_pool = pg_schema::named_pool(&db.pool, &name, 8).await;
    let admin = db.pool.clone();
    consumers_work_through(&db, &consumer_pool, |last, handles| async move {
        // Until every consumer is done.
        pg_schema::SessionEnder::end_while(admin, name, || async {
            handles.iter().any(|h| h.position() < last)
        })
        .await;
    })
    .await;
    consumer_pool.close().await;
    cleanup(db).await;
}

/// The consumers' database goes away for 2 s while they work (every connection closed, new
/// ones refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_loses_and_repeats_no_effect() {
    consumer_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let proxy = pg_schema::DbProxy::start(&db.pool).await;
    let consumer_pool = proxy.pool(&db.pool, 8).await;
    consumers_work_through(&db, &consumer_pool, |_, _| {
        proxy.outage(Duration::from_secs(2))
    })
    .await;
    consumer_pool.close().await;
    cleanup(db).await;
}

/// The stored position of the consumer `name`, if it has one.
async fn stored_position(db: &PgSchema, name: &str) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT global_position FROM eventodb_kit_consumer_positions WHERE consumer = $1",
    )
    .bind(name)
    .fetch_optional(&db.pool)
    .await
    .expect("position")
}

/// Workers started while their database cannot be reached start all the same. Once it
/// answers, the sender delivers the rows committed meanwhile, and the consumer, which reads
/// its state only then, handles each once and in order, and saves its position.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_started_before_their_database_work_once_it_answers() {
    use consumer_scenarios::{Log, Recorder, eventually};
    use eventodb_kit::consumer::ConsumerOptions;
    use eventodb_kit::outbox::{RawMessage, SenderOptions};

    consumer_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let env = consumer_scenarios::Env::new("consumer").await;
    let kit = env.kit(&db.pool);
    let proxy = pg_schema::DbProxy::start(&db.pool).await;
    proxy.go_down();
    let late_pool = proxy.lazy_pool(&db.pool, 8);
    let log = Log::default();
    let workers = env
        .kit(&late_pool)
        .workers()
        .outbox_sender(SenderOptions::default())
        .consumer(
            Recorder::new("late", "late", &log),
            ConsumerOptions::new("late").poll_interval(Duration::from_millis(100)),
        )
        .spawn()
        .await
        .expect("the workers start while their database cannot be reached");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut tx = db.pool.begin().await.unwrap();
        let written = kit
            .outbox()
            .write(
                &mut *tx,
                "late-1",
                RawMessage::new("Ok", serde_json::json!({ "n": i })),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(written.id);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        log.ids().is_empty(),
        "nothing moves while the database is away"
    );
    proxy.come_up();
    eventually("handled", Duration::from_secs(30), || async {
        log.ids().len() >= 5
    })
    .await;
    assert_eq!(log.ids(), ids, "each once, in order");
    workers.shutdown().await.expect("shutdown");
    let last = log.last_global_position();
    let saved = stored_position(&db, "late").await;
    late_pool.close().await;
    cleanup(db).await;
    assert_eq!(saved, last, "the position is saved");
}

/// A consumer stopped before its database answered read nothing and saves nothing: the
/// position it saved in an earlier run stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_stopped_before_its_database_answered_keeps_its_position() {
    use consumer_scenarios::{Log, Recorder, eventually};
    use eventodb_kit::consumer::ConsumerOptions;

    consumer_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let env = consumer_scenarios::Env::new("consumer").await;
    let mut last = 0;
    for i in 0..3 {
        last = env.write("kept-1", "Ok", i).await.1.global_position;
    }
    let log = Log::default();
    let first = env
        .kit(&db.pool)
        .workers()
        .consumer(
            Recorder::new("kept", "first", &log),
            ConsumerOptions::new("kept"),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually("handled", Duration::from_secs(30), || async {
        log.ids().len() == 3
    })
    .await;
    first.shutdown().await.expect("shutdown");
    assert_eq!(stored_position(&db, "kept").await, Some(last));

    let proxy = pg_schema::DbProxy::start(&db.pool).await;
    proxy.go_down();
    let late_pool = proxy.lazy_pool(&db.pool, 8);
    let second = env
        .kit(&late_pool)
        .workers()
        .consumer(
            Recorder::new("kept", "second", &log),
            ConsumerOptions::new("kept"),
        )
        .spawn()
        .await
        .expect("the workers start while their database cannot be reached");
    // Back, but stopped before the consumer tries again to read its state.
    proxy.come_up();
    second.shutdown().await.expect("shutdown");
    let saved = stored_position(&db, "kept").await;
    late_pool.close().await;
    cleanup(db).await;
    assert_eq!(saved, Some(last), "the saved position is kept");
    assert!(log.ids_of("second").is_empty());
}

/// Database errors around parked streams (holding an event back behind a parked one,
/// parking a stream, replaying a released one) pause the consumer and are retried, as
/// database trouble in a handler's transaction is: the consumer neither stops nor moves its
/// position past the events it could not deal with. The parked-events table is locked away
/// from the consumer's sessions, whose `lock_timeout` turns each wait into an error. (Each
/// of these errors ended the consumer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_errors_around_parked_streams_pause_the_consumer() {
    use consumer_scenarios::{Log, Recorder, eventually};
    use eventodb_kit::consumer::{ConsumerAdmin, ConsumerOptions, FailurePolicy, RetryPolicy};
    const LONG: Duration = Duration::from_secs(30);

    consumer_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let env = consumer_scenarios::Env::new("consumer").await;
    let options = db
        .pool
        .connect_options()
        .as_ref()
        .clone()
        .options([("lock_timeout", "100ms")]);
    let consumer_pool = pg_schema::connect(options, 8).await;
    let kit = env.kit(&consumer_pool);
    let admin = ConsumerAdmin::for_kit(&env.kit(&db.pool));
    let lock = || async {
        let mut tx = db.pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE eventodb_kit_parked_events IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    };

    let (p, at) = env.write("locked-1", "Poison", 1).await;
    let log = Log::default();
    let recorder = Recorder::new("locked", "locked", &log).failing("Poison");
    let workers = kit
        .workers()
        .consumer(
            recorder.clone(),
            ConsumerOptions::new("locked")
                .failure_policy(FailurePolicy::ParkStream)
                .read_retry_max(Duration::from_millis(200))
                .retry(RetryPolicy::new(
                    2,
                    Duration::from_millis(1),
                    Duration::from_millis(5),
                )),
        )
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("locked").unwrap().clone();
    handle.wait_for(at.global_position, LONG).await.unwrap();
    assert_eq!(
        admin.parked_streams("locked", "locked").await.unwrap(),
        ["locked-1"]
    );

    // A poison event parking another stream, then an event held back behind a parked
    // stream, each while the consumer cannot write parked events.
    let tx = lock().await;
    let (q, at) = env.write("locked-2", "Poison", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(handle.is_running(), "stopped: {:?}", handle.failure());
    assert!(handle.position() < at.global_position, "the position waits");
    tx.rollback().await.unwrap();
    handle.wait_for(at.global_position, LONG).await.unwrap();
    let tx = lock().await;
    let (a2, _) = env.write("locked-1", "Ok", 3).await;
    let (b, at) = env.write("locked-3", "Ok", 4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(handle.is_running(), "stopped: {:?}", handle.failure());
    assert!(handle.position() < at.global_position, "the position waits");
    tx.rollback().await.unwrap();
    handle.wait_for(at.global_position, LONG).await.unwrap();
    let parked: Vec<uuid::Uuid> = admin
        .parked("locked", "locked")
        .await
        .unwrap()
        .iter()
        .map(|event| consumer_scenarios::uuid_of(&event.id))
        .collect();
    assert_eq!(parked, vec![p, q, a2]);
    assert!(log.contains(b));

    // Released while the consumer cannot read or delete parked events.
    recorder.heal();
    let tx = lock().await;
    for stream in ["locked-1", "locked-2"] {
        assert!(
            admin
                .release_stream("locked", "locked", stream)
                .await
                .unwrap()
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(handle.is_running(), "stopped: {:?}", handle.failure());
    tx.rollback().await.unwrap();
    eventually("the streams are unparked", LONG, || async {
        admin
            .parked_streams("locked", "locked")
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids_in_stream("locked-1"), vec![p, a2]);
    assert_eq!(log.ids_in_stream("locked-2"), vec![q]);
    assert!(admin.parked("locked", "locked").await.unwrap().is_empty());
    consumer_pool.close().await;
    cleanup(db).await;
}
