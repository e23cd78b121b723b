//! The consumer scenarios on PostgreSQL (`DATABASE_URL`; a fresh schema per test). Skipped,
//! with a printed reason, when `DATABASE_URL` is unset (and then failed when
//! `EVENTODB_KIT_REQUIRE_POSTGRES` is set, as in CI).

mod consumer_scenarios;
mod eventodb_env;
mod pg_schema;

use std::collections::HashMap;

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
}

consumer_scenarios!(fresh, cleanup;
    killed_mid_batch_resumes_exactly_once,
    group_of_three_matches_the_server_partition,
    resizing_a_group_loses_and_repeats_nothing,
    poison_event_stops_the_consumer,
    poison_event_parks_its_stream_until_released,
    poison_event_is_skipped_with_a_record,
    sse_outage_reconnects,
    sse_outage_falls_back_to_polling,
    two_consumers_both_see_every_event,
    wait_for_times_out_while_behind,
    outbox_commit_reaches_the_handler,
    correlation_filter_sees_only_matching_events,
    bad_options_are_refused,
    batched_transactions_commit_effects_once,
    failure_mid_batch_is_retried_alone,
    poison_mid_batch_is_skipped_alone,
    poison_mid_batch_parks_only_its_stream,
    killed_inside_a_batch_transaction_leaves_no_partial_effects,
    doubled_group_members_never_handle_twice,
);
