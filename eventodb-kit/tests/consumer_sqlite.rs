//! The consumer scenarios on SQLite (a fresh database file per test).

mod consumer_scenarios;
mod eventodb_env;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use consumer_scenarios::Db;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

struct TestDb {
    pool: SqlitePool,
    _dir: tempfile::TempDir,
}

async fn fresh() -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::from_str("sqlite://consumer.db")
        .expect("options")
        .filename(dir.path().join("consumer.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("sqlite pool");
    eventodb_kit::migrate(&pool).await.expect("migrate");
    Some(TestDb { pool, _dir: dir })
}

async fn cleanup(db: TestDb) {
    db.pool.close().await;
}

impl Db for Sqlite {
    async fn create_effects(pool: &SqlitePool) {
        sqlx::query("CREATE TABLE consumer_effects (event_id TEXT NOT NULL, stream TEXT NOT NULL)")
            .execute(pool)
            .await
            .expect("create effects");
    }

    async fn insert_effect(
        conn: &mut SqliteConnection,
        event_id: &str,
        stream: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO consumer_effects (event_id, stream) VALUES (?1, ?2)")
            .bind(event_id)
            .bind(stream)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn effect_counts(pool: &SqlitePool) -> HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT event_id, count(*) FROM consumer_effects GROUP BY event_id",
        )
        .fetch_all(pool)
        .await
        .expect("effects")
        .into_iter()
        .collect()
    }

    async fn effects_seen_by(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM consumer_effects")
            .fetch_one(conn)
            .await?;
        Ok(count)
    }

    async fn release_elsewhere(pool: &SqlitePool, stream: &str) {
        let done = sqlx::query("UPDATE eventodb_kit_parked_streams SET released_at = CURRENT_TIMESTAMP WHERE stream = ?1")
            .bind(stream)
            .execute(pool)
            .await
            .expect("release");
        assert_eq!(done.rows_affected(), 1, "{stream} is parked");
    }

    async fn hand_members_to(pool: &SqlitePool, owner: Option<&str>) {
        let query = match owner {
            Some(owner) => sqlx::query("UPDATE eventodb_kit_consumer_positions SET owner = ?1, owned_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 hour'), resets = resets + 1").bind(owner.to_owned()),
            None => sqlx::query("UPDATE eventodb_kit_consumer_positions SET owner = NULL, owned_until = NULL"),
        };
        query.execute(pool).await.expect("hand the members over");
    }

    async fn fail_a_statement(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT * FROM no_such_table")
            .execute(conn)
            .await
            .map(|_| ())
    }

    async fn block_processed_batches(pool: &SqlitePool, blocked: bool) {
        let sql = if blocked {
            "CREATE TRIGGER test_block_batches BEFORE INSERT ON eventodb_kit_processed_batches
             BEGIN SELECT RAISE(ABORT, 'processed batches blocked by the test'); END"
        } else {
            "DROP TRIGGER test_block_batches"
        };
        sqlx::query(sql)
            .execute(pool)
            .await
            .expect("block processed batches");
    }

    async fn processed_batch_ids(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT j.value FROM eventodb_kit_processed_batches AS b, json_each(b.event_ids) AS j",
        )
        .fetch_all(pool)
        .await
        .expect("processed batches")
    }

    async fn create_deferred_foreign_key(pool: &SqlitePool) {
        sqlx::raw_sql(consumer_scenarios::DEFERRED_FOREIGN_KEY)
            .execute(pool)
            .await
            .expect("create the foreign key");
    }

    async fn insert_orphan(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
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
);
