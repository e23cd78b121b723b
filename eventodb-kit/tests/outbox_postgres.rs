//! The outbox scenarios on PostgreSQL (`DATABASE_URL`; a fresh schema per test). Skipped,
//! with a printed reason, when `DATABASE_URL` is unset.

mod eventodb_env;
mod outbox_scenarios;
mod pg_schema;

use std::time::Duration;

use eventodb_kit::Kit;
use pg_schema::PgSchema;

async fn fresh() -> Option<PgSchema> {
    pg_schema::fresh("outbox", 12).await
}

async fn cleanup(db: PgSchema) {
    db.cleanup().await;
}

scenarios!(fresh, cleanup;
    migrations_are_idempotent_and_reversible,
    an_unmigrated_database_is_named_as_such,
    rollback_leaves_nothing,
    write_fixes_the_id_and_options,
    idempotency_key_returns_the_first_id,
    fifty_concurrent_writers_make_one_row,
    bad_input_is_rejected_before_the_database,
    write_batch_checks_everything_first,
    write_batch_is_all_or_nothing,
    transactions_that_read_first_commit_beside_the_sender,
    sender_keeps_rows_while_eventodb_is_unreachable,
    drains_in_commit_order_per_stream,
    wakes_on_commit_without_polling,
    rollback_sends_nothing,
    writes_while_eventodb_is_down_drain_after,
    unknown_outcome_is_checked_not_resent,
    an_unreadable_reply_to_a_write_is_looked_up,
    unknown_outcome_is_found_among_foreign_ids,
    a_write_that_lands_after_its_timeout_is_not_sent_again,
    a_row_whose_write_may_still_land_is_not_discarded,
    duplicate_id_means_already_written,
    a_slow_lookup_does_not_outlast_the_lease,
    a_long_lookup_keeps_its_lease,
    an_expired_lease_hands_its_rows_over_for_lookup,
    a_row_committed_late_is_not_held_by_the_lease,
    a_row_committed_late_inside_a_lease_is_not_held_by_it,
    killed_senders_never_send_twice,
    two_senders_send_each_row_once_in_order,
    two_senders_with_small_batches_send_each_row_once_in_order,
    two_senders_with_one_worker_id_send_each_row_once,
    version_conflict_parks_only_its_stream,
    a_row_being_sent_cannot_be_discarded,
    a_row_that_reached_eventodb_is_not_discarded,
    discard_unparks_the_stream,
    wait_sent_says_why_a_row_is_not_sent,
    parked_streams_do_not_starve_the_others,
    long_streams_leave_no_stranded_lease,
    shutdown_mid_drain_loses_nothing,
    purges_sent_rows_after_retention,
    the_purge_deletes_only_rows_past_the_retention,
    a_long_purge_does_not_hold_back_sends,
    a_slow_sweep_does_not_hold_back_sends,
    a_long_stream_takes_turns_with_waiting_streams,
    data_and_metadata_round_trip,
    lost_writes_are_resent_exactly_once,
    verified_events_lost_in_a_crash_are_resent,
    events_lost_in_a_crash_are_resent_in_order,
    a_sweep_puts_nothing_back_while_another_walks_back,
    nothing_is_purged_before_verification,
    a_stream_that_moved_on_gets_the_lost_event_at_its_end,
    an_idle_sweep_only_reads_back_the_newest_events,
    sends_each_row_once_while_the_application_writes,
    status_counts_follow_every_change_to_a_row,
    one_id_in_two_namespaces_is_sent_to_both,
    the_id_constraint_migration_keeps_every_row,
    drain_sends_the_backlog_then_stops,
);

/// Waits until 50 rows are sent and some are still pending.
async fn midway(kit: &Kit<sqlx::Postgres>) {
    outbox_scenarios::eventually("the sender is midway", Duration::from_secs(30), || async {
        let status = kit.outbox().status().await.expect("status");
        (status.sent >= 50 && status.pending > 0).then_some(())
    })
    .await;
}

/// A sender on `sender_pool` drains rows committed before `disrupt` starts (once the sender
/// is midway) and while it runs, then one committed after it: every stream holds its ids once
/// and in order, and the server saw one write per row. `disrupt` gets the application's kit.
async fn drains_through<F, Fut>(db: &PgSchema, sender_pool: &sqlx::PgPool, disrupt: F)
where
    F: FnOnce(Kit<sqlx::Postgres>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use outbox_scenarios::{assert_streams, commit_round_robin, drained, fast};

    let env = eventodb_env::Env::new("outbox").await;
    if let Some(server) = &env.server {
        server.faults().latency(Duration::from_millis(2));
    }
    let kit = env.kit(&db.pool);
    let mut expected = commit_round_robin(&kit, "disrupted", 30, 10).await;
    let sender = env
        .kit(sender_pool)
        .outbox()
        .spawn_sender(fast().concurrency(4).batch_size(5))
        .await
        .expect("sender");
    midway(&kit).await;
    let ((), during) = tokio::join!(
        disrupt(kit.clone()),
        commit_round_robin(&kit, "disrupted", 10, 10)
    );
    for (stream, ids) in during {
        expected.entry(stream).or_default().extend(ids);
    }
    drained(&kit, Duration::from_secs(60)).await;
    // Once the database stays up, a new commit is sent as before (the sender listens again).
    for (stream, ids) in commit_round_robin(&kit, "disrupted", 1, 10).await {
        expected.entry(stream).or_default().extend(ids);
    }
    drained(&kit, Duration::from_secs(30)).await;
    assert_streams(&kit, &env, &expected).await;
    sender.shutdown().await.expect("shutdown");
}

/// PostgreSQL ends the sender's sessions again and again while it drains, as a restart or
/// failover does: claims, lease renewals, the records of sends and `LISTEN` fail mid-flight,
/// some after PostgreSQL committed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_database_connections_send_each_row_once_in_order() {
    outbox_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    // The sender's "process": a pool of its own, named so that only its sessions are ended.
    let name = format!("outbox_dropped_{}", uuid::Uuid::new_v4().simple());
    let sender_pool = pg_schema::named_pool(&db.pool, &name, 6).await;
    let admin = db.pool.clone();
    drains_through(&db, &sender_pool, |kit| async move {
        // Until every row is sent.
        pg_schema::SessionEnder::end_while(admin, name, || async {
            let status = kit.outbox().status().await.expect("status");
            status.pending > 0 || status.failed > 0
        })
        .await;
    })
    .await;
    sender_pool.close().await;
    cleanup(db).await;
}

/// The sender's database goes away for 2 s mid-drain (every connection closed, new ones
/// refused), longer than the sender's leases, while the application keeps committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_mid_drain_sends_each_row_once_in_order() {
    outbox_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let proxy = pg_schema::DbProxy::start(&db.pool).await;
    let sender_pool = proxy.pool(&db.pool, 6).await;
    drains_through(&db, &sender_pool, |_| proxy.outage(Duration::from_secs(2))).await;
    sender_pool.close().await;
    cleanup(db).await;
}

/// A sender that reaches PostgreSQL through a proxy, with `options`, drains `rounds` rows on
/// each of `streams` streams (EventoDB answering each write after `latency`); once `wait`
/// returns (it gets the application's kit) the database goes away for `outage`. Afterwards
/// every row was sent once and in order, and none was looked up in EventoDB. Needs the
/// embedded server's request counts (skipped on a real EventoDB).
async fn drains_without_lookup<F, Fut>(
    test: &str,
    latency: Duration,
    (rounds, streams): (i64, usize),
    options: eventodb_kit::outbox::SenderOptions,
    wait: F,
    outage: Duration,
) where
    F: FnOnce(Kit<sqlx::Postgres>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use outbox_scenarios::{assert_streams, commit_round_robin, drained};

    outbox_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let Some(env) = eventodb_env::Env::ours(test).await else {
        return cleanup(db).await;
    };
    env.server().faults().latency(latency);
    let proxy = pg_schema::DbProxy::start(&db.pool).await;
    let sender_pool = proxy.pool(&db.pool, 6).await;
    let kit = env.kit(&db.pool);
    let expected = commit_round_robin(&kit, "unlooked", rounds, streams).await;
    let sender = env
        .kit(&sender_pool)
        .outbox()
        .spawn_sender(options)
        .await
        .expect("sender");
    wait(kit.clone()).await;
    proxy.outage(outage).await;
    // Well before any lease here runs out.
    drained(&kit, Duration::from_secs(20)).await;
    // Counted before the streams are read below.
    assert_eq!(env.count("stream.get"), Some(0), "no row was looked up");
    assert_streams(&kit, &env, &expected).await;
    sender.shutdown().await.expect("shutdown");
    sender_pool.close().await;
    cleanup(db).await;
}

/// A 1 s outage fails the records of sends that EventoDB acknowledged. The sender keeps them
/// and writes them once the database is back, so their streams go on at once: nothing waits
/// for the lease (60 s here) to run out, and no row is looked up in EventoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_recorded_after_an_outage_need_no_lookup() {
    drains_without_lookup(
        "sends_recorded_after_an_outage_need_no_lookup",
        Duration::from_millis(2),
        (30, 10),
        outbox_scenarios::fast()
            .lease(Duration::from_secs(60))
            .concurrency(4),
        |kit| async move { midway(&kit).await },
        Duration::from_secs(1),
    )
    .await;
}

/// The database is away when a stream task must renew its lease (halfway through its 6 s), so
/// the task stops with rows left and cannot give them back. It gives them back once the
/// database answers: the rows are sent by the next claim, without waiting for the lease to run
/// out, and none is looked up in EventoDB as if it might have been sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_the_database_could_not_take_back_is_given_back_later() {
    // 300 rows per stream at 20 ms a write: each task is still sending when it renews, 3 s
    // after its claim. The database is away from 2 s to 4 s, and comes back 2 s before the
    // lease would run out.
    drains_without_lookup(
        "a_lease_the_database_could_not_take_back_is_given_back_later",
        Duration::from_millis(20),
        (300, 2),
        outbox_scenarios::fast()
            .lease(Duration::from_secs(6))
            .concurrency(2),
        |_| tokio::time::sleep(Duration::from_secs(2)),
        Duration::from_secs(2),
    )
    .await;
}

/// The migration SQL shipped in `migrations/postgres/` is what `migrate` runs.
#[test]
fn shipped_sql_matches_the_embedded_migrations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for step in eventodb_kit::migrations::<sqlx::Postgres>() {
        let up =
            std::fs::read_to_string(dir.join(format!("{:04}_{}.up.sql", step.version, step.name)))
                .expect("up file");
        let down = std::fs::read_to_string(
            dir.join(format!("{:04}_{}.down.sql", step.version, step.name)),
        )
        .expect("down file");
        assert_eq!(up, step.up);
        assert_eq!(down, step.down);
    }
}

/// The sender's database cannot be reached when the sender starts: it starts all the same,
/// delivers the rows committed meanwhile once the database answers, and then listens: a row
/// committed later is sent without waiting for the poll (a minute here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_started_before_its_database_delivers_once_it_answers() {
    use outbox_scenarios::{assert_streams, commit_round_robin, drained, fast};

    outbox_scenarios::init_tracing();
    let Some(db) = fresh().await else { return };
    let env = eventodb_env::Env::new("outbox").await;
    let kit = env.kit(&db.pool);
    let proxy = pg_schema::DbProxy::start(&db.pool).await;
    proxy.go_down();
    let sender_pool = proxy.lazy_pool(&db.pool, 6);
    let sender = env
        .kit(&sender_pool)
        .outbox()
        .spawn_sender(fast().poll_interval(Duration::from_secs(60)))
        .await
        .expect("the sender starts while its database cannot be reached");
    let mut expected = commit_round_robin(&kit, "late-db", 3, 4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = kit.outbox().status().await.expect("status");
    assert_eq!(status.sent, 0, "nothing is sent while the database is away");
    proxy.come_up();
    drained(&kit, Duration::from_secs(20)).await;
    // Past the listener's retry, so that its connection's own wake-up is spent: within the
    // poll interval, only a notification can wake the sender for these.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (stream, ids) in commit_round_robin(&kit, "late-db", 1, 4).await {
        expected.entry(stream).or_default().extend(ids);
    }
    drained(&kit, Duration::from_secs(10)).await;
    assert_streams(&kit, &env, &expected).await;
    sender.shutdown().await.expect("shutdown");
    sender_pool.close().await;
    cleanup(db).await;
}

/// A sender whose database does not exist fails to start, with the database's error: waiting
/// would not mend it.
#[tokio::test]
async fn a_sender_whose_database_does_not_exist_fails_to_start() {
    let Some(db) = fresh().await else { return };
    let env = eventodb_env::Env::new("outbox").await;
    let options = db
        .pool
        .connect_options()
        .as_ref()
        .clone()
        .database("eventodb_kit_no_such_database");
    let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy_with(options);
    let started = env
        .kit(&pool)
        .outbox()
        .spawn_sender(outbox_scenarios::fast())
        .await;
    cleanup(db).await;
    match started {
        Err(eventodb_kit::Error::Database { source }) => {
            let code = source.as_database_error().and_then(|error| error.code());
            assert_eq!(code.as_deref(), Some("3D000"), "{source}");
        }
        other => panic!("expected the database's error, got {:?}", other.map(|_| ())),
    }
}

/// The triggers that keep the sent counts work from a session whose `search_path` does not
/// hold the kit's schema, as an operator's `psql` reaching the outbox by its qualified name.
/// (Their function kept no search path at first, and such a statement failed: relation
/// `eventodb_kit_outbox_counts` does not exist.)
#[tokio::test]
async fn the_counts_follow_a_change_made_from_another_search_path() {
    let Some(db) = fresh().await else { return };
    let kit = outbox_scenarios::offline_kit(&db.pool);
    for n in 0..6 {
        outbox_scenarios::commit_one(&kit, "operator-1", n).await;
    }
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()")
        .fetch_one(&db.pool)
        .await
        .expect("schema");
    let url = std::env::var("DATABASE_URL").expect("fresh() read it");
    let operator = sqlx::PgPool::connect(&url).await.expect("operator session");
    for sql in [
        format!("UPDATE {schema}.eventodb_kit_outbox SET status = 'sent', sent_at = created_at"),
        format!(
            "DELETE FROM {schema}.eventodb_kit_outbox
             WHERE seq = (SELECT min(seq) FROM {schema}.eventodb_kit_outbox)"
        ),
    ] {
        sqlx::query(&sql)
            .execute(&operator)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
    operator.close().await;
    let status = kit.outbox().status().await.expect("status");
    assert_eq!((status.sent, status.unverified, status.pending), (5, 5, 0));
    cleanup(db).await;
}

/// Every transaction of the kit runs at `READ COMMITTED`, whatever the database's default:
/// they take a lock, then read what its previous holder committed. Here every session
/// defaults to `REPEATABLE READ`, and four processes migrate one schema at once: those that
/// waited for the migration lock must see the migrations the first one applied (before, they
/// applied them again and failed on "already exists"). Then a sender drains on that pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kit_runs_at_read_committed_whatever_the_default() {
    use std::str::FromStr;

    outbox_scenarios::init_tracing();
    let Some(schema) = pg_schema::Schema::create("outbox_isolation").await else {
        return;
    };
    let options = sqlx::postgres::PgConnectOptions::from_str(&schema.url())
        .expect("DATABASE_URL")
        .options([("default_transaction_isolation", r"repeatable\ read")]);
    let pools: Vec<sqlx::PgPool> =
        futures_util::future::join_all((0..4).map(|_| pg_schema::connect(options.clone(), 2)))
            .await;
    let isolation: String = sqlx::query_scalar("SHOW default_transaction_isolation")
        .fetch_one(&pools[0])
        .await
        .expect("show");
    assert_eq!(isolation, "repeatable read");
    let migrated = futures_util::future::join_all(pools.iter().map(eventodb_kit::migrate)).await;
    let applied: usize = migrated
        .into_iter()
        .map(|applied| applied.expect("concurrent migrate").len())
        .sum();
    assert_eq!(
        applied,
        eventodb_kit::migrations::<sqlx::Postgres>().len(),
        "each migration applied once"
    );

    let env = eventodb_env::Env::new("outbox").await;
    let kit = env.kit(&pools[0]);
    let expected = outbox_scenarios::commit_round_robin(&kit, "isolated", 5, 4).await;
    let sender = kit
        .outbox()
        .spawn_sender(outbox_scenarios::fast())
        .await
        .expect("sender");
    outbox_scenarios::drained(&kit, Duration::from_secs(20)).await;
    outbox_scenarios::assert_streams(&kit, &env, &expected).await;
    sender.shutdown().await.expect("shutdown");
    for pool in pools {
        pool.close().await;
    }
    schema.drop_all().await;
}
