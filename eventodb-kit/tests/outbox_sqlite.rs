//! The outbox scenarios on SQLite (a fresh database file per test).

mod eventodb_env;
mod outbox_scenarios;

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

struct TestDb {
    pool: SqlitePool,
    _dir: tempfile::TempDir,
}

async fn fresh() -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::from_str("sqlite://outbox.db")
        .expect("options")
        .filename(dir.path().join("outbox.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("sqlite pool");
    let applied = eventodb_kit::migrate(&pool).await.expect("migrate");
    assert_eq!(
        applied.len(),
        eventodb_kit::migrations::<sqlx::Sqlite>().len()
    );
    Some(TestDb { pool, _dir: dir })
}

async fn cleanup(db: TestDb) {
    db.pool.close().await;
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

/// The migration SQL shipped in `migrations/sqlite/` is what `migrate` runs.
#[test]
fn shipped_sql_matches_the_embedded_migrations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for step in eventodb_kit::migrations::<sqlx::Sqlite>() {
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
