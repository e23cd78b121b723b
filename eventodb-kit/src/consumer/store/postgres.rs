//! PostgreSQL statements of the consumer tables.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{Sql, store_impl};
use crate::error::Result;

macro_rules! key {
    () => {
        "namespace = $1 AND category = $2 AND consumer = $3"
    };
}

/// Every member's position (of every group size).
macro_rules! positions {
    () => {
        concat!(
            "SELECT group_member, group_size, global_position
            FROM eventodb_kit_consumer_positions WHERE ",
            key!()
        )
    };
}

/// A position row (member, size, global_position), and what to do when it exists.
macro_rules! upsert_position {
    () => {
        "INSERT INTO eventodb_kit_consumer_positions
            (namespace, category, consumer, group_member, group_size, global_position)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (namespace, category, consumer, group_size, group_member) DO "
    };
}

const SQL: Sql = Sql {
    load_positions: positions!(),
    lock_positions: concat!(
        positions!(),
        " ORDER BY group_size, group_member FOR UPDATE"
    ),
    save_position: concat!(
        upsert_position!(),
        "UPDATE SET global_position = EXCLUDED.global_position, updated_at = now(), ",
        "seen_at = now()",
        " WHERE eventodb_kit_consumer_positions.global_position <= EXCLUDED.global_position
            AND eventodb_kit_consumer_positions.resets = $7"
    ),
    member_states: concat!(
        "SELECT group_member, group_size, global_position,
               (EXTRACT(EPOCH FROM now() - seen_at) * 1000)::int8, heartbeat_ms,
               (EXTRACT(EPOCH FROM now() - stopped_at) * 1000)::int8, stop_error
        FROM eventodb_kit_consumer_positions WHERE ",
        key!()
    ),
    mark_running: concat!(
        "UPDATE eventodb_kit_consumer_positions
        SET seen_at = now(), heartbeat_ms = $6, stopped_at = NULL, stop_error = NULL
        WHERE ",
        key!(),
        " AND group_member = $4 AND group_size = $5"
    ),
    // SET reads the row as it was: `owner` there is the previous owner.
    take_member: concat!(
        "UPDATE eventodb_kit_consumer_positions
        SET owner = $6, owned_until = now() + make_interval(secs => $7::float8 / 1000),
            resets = CASE WHEN owner IS DISTINCT FROM $6 THEN resets + 1 ELSE resets END
        WHERE ",
        key!(),
        " AND group_member = $4 AND group_size = $5
          AND (owner IS NULL OR owner = $6 OR owned_until < now())
          AND NOT EXISTS (
            SELECT 1 FROM eventodb_kit_consumer_positions AS held
            WHERE held.namespace = $1 AND held.category = $2 AND held.consumer = $3
              AND held.owner = 'eventodb-kit:position-lost')
        RETURNING resets"
    ),
    // The statement's time, not the transaction's: a renewal inside a long shared
    // transaction of a transactional consumer counted the lease from the transaction's start
    // and committed a claim that had already run out, for a standby to take.
    heartbeat: concat!(
        "UPDATE eventodb_kit_consumer_positions
        SET seen_at = clock_timestamp(),
            owned_until = clock_timestamp() + make_interval(secs => $7::float8 / 1000)
        WHERE ",
        key!(),
        " AND group_member = $4 AND group_size = $5 AND owner = $6 RETURNING resets"
    ),
    // Held (`$8`): owned by nobody's name for ever, until a reset frees it. A held row
    // matches again (a hold whose answer was lost is tried again) while not reset since.
    mark_stopped: concat!(
        "UPDATE eventodb_kit_consumer_positions
        SET stopped_at = now(), stop_error = $7,
            owner = CASE WHEN $8 THEN 'eventodb-kit:position-lost' END,
            owned_until = CASE WHEN $8 THEN 'infinity'::timestamptz END
        WHERE ",
        key!(),
        " AND group_member = $4 AND group_size = $5
          AND (owner = $6 OR ($8 AND owner = 'eventodb-kit:position-lost'))
          AND (NOT $8 OR resets = $9)"
    ),
    own_resets: concat!(
        "SELECT resets FROM eventodb_kit_consumer_positions WHERE ",
        key!(),
        " AND group_member = $4 AND group_size = $5"
    ),
    // `FOR SHARE` conflicts with the reset's update: the reset waits for this transaction.
    lock_own_resets: concat!(
        "SELECT resets FROM eventodb_kit_consumer_positions WHERE ",
        key!(),
        " AND group_member = $4 AND group_size = $5 FOR SHARE"
    ),
    insert_position: concat!(upsert_position!(), "NOTHING"),
    processed_among: concat!(
        "SELECT event_id FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " AND event_id IN (SELECT jsonb_array_elements_text($4::jsonb))
        UNION
        SELECT t.e FROM eventodb_kit_processed_batches
            CROSS JOIN LATERAL jsonb_array_elements_text(event_ids) AS t(e)
        WHERE ",
        key!(),
        " AND last_position >= $5 AND first_position <= $6
            AND t.e IN (SELECT jsonb_array_elements_text($4::jsonb))"
    ),
    max_processed: concat!(
        "SELECT max(m) FROM (
            SELECT max(global_position) AS m FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " UNION ALL SELECT max(last_position) FROM eventodb_kit_processed_batches WHERE ",
        key!(),
        ") AS t"
    ),
    insert_processed: "INSERT INTO eventodb_kit_processed_events
            (namespace, category, consumer, event_id, event_type, stream, global_position)
        SELECT $1, $2, $3, e->>'id', e->>'type', e->>'stream', (e->>'gp')::bigint
        FROM jsonb_array_elements($4::jsonb) AS e
        ON CONFLICT DO NOTHING",
    insert_processed_batch: "INSERT INTO eventodb_kit_processed_batches
            (namespace, category, consumer, first_position, last_position, event_ids)
        VALUES ($1, $2, $3, $4, $5, $6)",
    parked_streams: concat!(
        "SELECT stream, released_at IS NOT NULL FROM eventodb_kit_parked_streams WHERE ",
        key!()
    ),
    park_event: "INSERT INTO eventodb_kit_parked_events
            (namespace, category, consumer, event_id, stream, event_type, position,
             global_position, data, metadata, error, attempts, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT DO NOTHING",
    hold_stream: "INSERT INTO eventodb_kit_parked_streams
            (namespace, category, consumer, stream, event_id, global_position, reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (namespace, category, consumer, stream) DO UPDATE
        SET event_id = EXCLUDED.event_id, global_position = EXCLUDED.global_position,
            reason = EXCLUDED.reason, released_at = NULL, parked_at = now()",
    release_stream: concat!(
        "UPDATE eventodb_kit_parked_streams SET released_at = now() WHERE ",
        key!(),
        " AND stream = $4"
    ),
    unhold_stream: concat!(
        "DELETE FROM eventodb_kit_parked_streams WHERE ",
        key!(),
        " AND stream = $4"
    ),
    parked_events: concat!(
        "SELECT event_id, stream, event_type, position, global_position, data, metadata, error,
               attempts, status
        FROM eventodb_kit_parked_events WHERE ",
        key!(),
        " AND ($4::text IS NULL OR stream = $4) AND status = $5
        ORDER BY global_position"
    ),
    delete_parked: concat!(
        "DELETE FROM eventodb_kit_parked_events WHERE ",
        key!(),
        " AND event_id = $4"
    ),
    parked_failed_again: concat!(
        "UPDATE eventodb_kit_parked_events SET error = $5, attempts = attempts + $6 WHERE ",
        key!(),
        " AND event_id = $4"
    ),
    purge_processed: concat!(
        "DELETE FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " AND global_position < $4"
    ),
    purge_batches: concat!(
        "DELETE FROM eventodb_kit_processed_batches WHERE ",
        key!(),
        " AND last_position < $4"
    ),
    delete_stale_positions: concat!(
        "DELETE FROM eventodb_kit_consumer_positions WHERE ",
        key!(),
        " AND group_size <> $4 AND global_position <= $5
          AND owner IS DISTINCT FROM 'eventodb-kit:position-lost'"
    ),
    consumers: "SELECT category, consumer FROM eventodb_kit_consumer_positions
        WHERE namespace = $1
        UNION SELECT category, consumer FROM eventodb_kit_parked_streams WHERE namespace = $1
        ORDER BY 1, 2",
    // A member held until a reset (see `mark_stopped`) is freed; SET reads `owner` as it was.
    reset_positions: concat!(
        "UPDATE eventodb_kit_consumer_positions
        SET global_position = $4, resets = resets + 1, updated_at = now(),
            owned_until = CASE WHEN owner = 'eventodb-kit:position-lost' THEN NULL
                               ELSE owned_until END,
            owner = CASE WHEN owner = 'eventodb-kit:position-lost' THEN NULL ELSE owner END
        WHERE ",
        key!()
    ),
    forget_processed_after: concat!(
        "DELETE FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " AND global_position > $4"
    ),
    forget_batches_after: concat!(
        "DELETE FROM eventodb_kit_processed_batches WHERE ",
        key!(),
        " AND last_position > $4"
    ),
};

/// At `READ COMMITTED` whatever the database's default, and safe to drop midway (see
/// [`begin_read_committed`](crate::outbox::backend::postgres::begin_read_committed)).
async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    crate::outbox::backend::postgres::begin_read_committed(pool).await
}

store_impl!(Postgres, PgConnection, SQL, begin);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::backend::postgres::pg_schema;

    /// A renewal late in a long transaction counts the lease from when it runs.
    #[tokio::test]
    async fn a_renewal_late_in_a_transaction_counts_from_the_renewal() {
        let Some(db) = pg_schema::fresh("eventodb_kit_heartbeat", 2).await else {
            return;
        };
        sqlx::query(
            "INSERT INTO eventodb_kit_consumer_positions
                (namespace, category, consumer, global_position, owner, owned_until)
            VALUES ('default', 'c', 'k', 0, 'me', now())",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        sqlx::query("SELECT pg_sleep(0.6)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let renewed = sqlx::query(SQL.heartbeat)
            .bind("default")
            .bind("c")
            .bind("k")
            .bind(0_i64)
            .bind(1_i64)
            .bind("me")
            .bind(500_i64)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        let (running,): (bool,) = sqlx::query_as(
            "SELECT owned_until > clock_timestamp() FROM eventodb_kit_consumer_positions",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        db.cleanup().await;
        assert_eq!(renewed, 1);
        assert!(
            running,
            "a 500 ms lease renewed 600 ms into the transaction had run out"
        );
    }
}
