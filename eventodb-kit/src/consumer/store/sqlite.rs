//! SQLite statements of the consumer tables (JSON as text, times as sortable UTC text).

use sqlx::{Sqlite, SqliteConnection};

use super::{Sql, store_impl};
use crate::error::Result;

macro_rules! key {
    () => {
        "namespace = ?1 AND category = ?2 AND consumer = ?3"
    };
}

macro_rules! now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    };
}

/// Now plus the lease bound as parameter 7, in milliseconds.
macro_rules! owned_until {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', (?7 / 1000.0) || ' seconds')"
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
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT (namespace, category, consumer, group_size, group_member) DO "
    };
}

const SQL: Sql = Sql {
    load_positions: positions!(),
    lock_positions: concat!(positions!(), " ORDER BY group_size, group_member"),
    save_position: concat!(
        upsert_position!(),
        "UPDATE SET global_position = excluded.global_position, updated_at = ",
        now!(),
        ", seen_at = ",
        now!(),
        " WHERE eventodb_kit_consumer_positions.global_position <= excluded.global_position
            AND eventodb_kit_consumer_positions.resets = ?7"
    ),
    member_states: concat!(
        "SELECT group_member, group_size, global_position,
               CAST(round((julianday('now') - julianday(seen_at)) * 86400000) AS INTEGER),
               heartbeat_ms,
               CAST(round((julianday('now') - julianday(stopped_at)) * 86400000) AS INTEGER),
               stop_error
        FROM eventodb_kit_consumer_positions WHERE ",
        key!()
    ),
    mark_running: concat!(
        "UPDATE eventodb_kit_consumer_positions SET seen_at = ",
        now!(),
        ", heartbeat_ms = ?6, stopped_at = NULL, stop_error = NULL WHERE ",
        key!(),
        " AND group_member = ?4 AND group_size = ?5"
    ),
    // SET reads the row as it was: `owner` there is the previous owner.
    take_member: concat!(
        "UPDATE eventodb_kit_consumer_positions
        SET owner = ?6, owned_until = ",
        owned_until!(),
        ", resets = CASE WHEN owner IS ?6 THEN resets ELSE resets + 1 END
        WHERE ",
        key!(),
        " AND group_member = ?4 AND group_size = ?5
          AND (owner IS NULL OR owner = ?6 OR owned_until < ",
        now!(),
        ")
          AND NOT EXISTS (
            SELECT 1 FROM eventodb_kit_consumer_positions AS held
            WHERE held.namespace = ?1 AND held.category = ?2 AND held.consumer = ?3
              AND held.owner = 'eventodb-kit:position-lost')
        RETURNING resets"
    ),
    heartbeat: concat!(
        "UPDATE eventodb_kit_consumer_positions SET seen_at = ",
        now!(),
        ", owned_until = ",
        owned_until!(),
        " WHERE ",
        key!(),
        " AND group_member = ?4 AND group_size = ?5 AND owner = ?6 RETURNING resets"
    ),
    // Held (`?8`): owned by nobody's name for ever, until a reset frees it. A held row
    // matches again (a hold whose answer was lost is tried again) while not reset since.
    mark_stopped: concat!(
        "UPDATE eventodb_kit_consumer_positions SET stopped_at = ",
        now!(),
        ", stop_error = ?7,
            owner = CASE WHEN ?8 THEN 'eventodb-kit:position-lost' END,
            owned_until = CASE WHEN ?8 THEN '9999-12-31T23:59:59.999Z' END
        WHERE ",
        key!(),
        " AND group_member = ?4 AND group_size = ?5
          AND (owner = ?6 OR (?8 AND owner = 'eventodb-kit:position-lost'))
          AND (NOT ?8 OR resets = ?9)"
    ),
    own_resets: concat!(
        "SELECT resets FROM eventodb_kit_consumer_positions WHERE ",
        key!(),
        " AND group_member = ?4 AND group_size = ?5"
    ),
    // Writes begin `IMMEDIATE`: the transaction already holds the database's write lock.
    lock_own_resets: concat!(
        "SELECT resets FROM eventodb_kit_consumer_positions WHERE ",
        key!(),
        " AND group_member = ?4 AND group_size = ?5"
    ),
    insert_position: concat!(upsert_position!(), "NOTHING"),
    processed_among: concat!(
        "SELECT event_id FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " AND event_id IN (SELECT value FROM json_each(?4))
        UNION
        SELECT j.value FROM eventodb_kit_processed_batches AS b, json_each(b.event_ids) AS j
        WHERE b.namespace = ?1 AND b.category = ?2 AND b.consumer = ?3
            AND b.last_position >= ?5 AND b.first_position <= ?6
            AND j.value IN (SELECT value FROM json_each(?4))"
    ),
    max_processed: concat!(
        "SELECT max(m) FROM (
            SELECT max(global_position) AS m FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " UNION ALL SELECT max(last_position) FROM eventodb_kit_processed_batches WHERE ",
        key!(),
        ")"
    ),
    insert_processed: "INSERT INTO eventodb_kit_processed_events
            (namespace, category, consumer, event_id, event_type, stream, global_position)
        SELECT ?1, ?2, ?3, json_extract(value, '$.id'), json_extract(value, '$.type'),
               json_extract(value, '$.stream'), json_extract(value, '$.gp')
        FROM json_each(?4) WHERE true
        ON CONFLICT DO NOTHING",
    insert_processed_batch: "INSERT INTO eventodb_kit_processed_batches
            (namespace, category, consumer, first_position, last_position, event_ids)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    parked_streams: concat!(
        "SELECT stream, released_at IS NOT NULL FROM eventodb_kit_parked_streams WHERE ",
        key!()
    ),
    park_event: "INSERT INTO eventodb_kit_parked_events
            (namespace, category, consumer, event_id, stream, event_type, position,
             global_position, data, metadata, error, attempts, status)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
        ON CONFLICT DO NOTHING",
    hold_stream: concat!(
        "INSERT INTO eventodb_kit_parked_streams
            (namespace, category, consumer, stream, event_id, global_position, reason)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
        ON CONFLICT (namespace, category, consumer, stream) DO UPDATE
        SET event_id = excluded.event_id, global_position = excluded.global_position,
            reason = excluded.reason, released_at = NULL, parked_at = ",
        now!()
    ),
    release_stream: concat!(
        "UPDATE eventodb_kit_parked_streams SET released_at = ",
        now!(),
        " WHERE ",
        key!(),
        " AND stream = ?4"
    ),
    unhold_stream: concat!(
        "DELETE FROM eventodb_kit_parked_streams WHERE ",
        key!(),
        " AND stream = ?4"
    ),
    parked_events: concat!(
        "SELECT event_id, stream, event_type, position, global_position, data, metadata, error,
               attempts, status
        FROM eventodb_kit_parked_events WHERE ",
        key!(),
        " AND (?4 IS NULL OR stream = ?4) AND status = ?5
        ORDER BY global_position"
    ),
    delete_parked: concat!(
        "DELETE FROM eventodb_kit_parked_events WHERE ",
        key!(),
        " AND event_id = ?4"
    ),
    parked_failed_again: concat!(
        "UPDATE eventodb_kit_parked_events SET error = ?5, attempts = attempts + ?6 WHERE ",
        key!(),
        " AND event_id = ?4"
    ),
    purge_processed: concat!(
        "DELETE FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " AND global_position < ?4"
    ),
    purge_batches: concat!(
        "DELETE FROM eventodb_kit_processed_batches WHERE ",
        key!(),
        " AND last_position < ?4"
    ),
    delete_stale_positions: concat!(
        "DELETE FROM eventodb_kit_consumer_positions WHERE ",
        key!(),
        " AND group_size <> ?4 AND global_position <= ?5
          AND owner IS NOT 'eventodb-kit:position-lost'"
    ),
    consumers: "SELECT category, consumer FROM eventodb_kit_consumer_positions
        WHERE namespace = ?1
        UNION SELECT category, consumer FROM eventodb_kit_parked_streams WHERE namespace = ?1
        ORDER BY 1, 2",
    // A member held until a reset (see `mark_stopped`) is freed; SET reads `owner` as it was.
    reset_positions: concat!(
        "UPDATE eventodb_kit_consumer_positions SET global_position = ?4, resets = resets + 1,
            updated_at = ",
        now!(),
        ",
            owned_until = CASE WHEN owner = 'eventodb-kit:position-lost' THEN NULL
                               ELSE owned_until END,
            owner = CASE WHEN owner = 'eventodb-kit:position-lost' THEN NULL ELSE owner END
        WHERE ",
        key!()
    ),
    forget_processed_after: concat!(
        "DELETE FROM eventodb_kit_processed_events WHERE ",
        key!(),
        " AND global_position > ?4"
    ),
    forget_batches_after: concat!(
        "DELETE FROM eventodb_kit_processed_batches WHERE ",
        key!(),
        " AND last_position > ?4"
    ),
};

// Transactions take SQLite's write lock up front (`BEGIN IMMEDIATE`), so they never fail
// to upgrade a read lock under another writer.
store_impl!(
    Sqlite,
    SqliteConnection,
    SQL,
    crate::outbox::backend::sqlite::begin_immediate
);
