//! SQLite: JSON and UUIDs as text, times as sortable UTC text, claims under the
//! write lock (SQLite runs one writer at a time, so a claim sees every committed lease);
//! wake-ups by a commit hook installed on the connection that wrote the row.

use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::{DialectKind, Migration, Sql, backend_impl, lease_fences, retry_busy, secs};
use crate::error::Result;

const KIND: DialectKind = DialectKind::Sqlite;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "outbox",
        up: include_str!("../../../migrations/sqlite/0001_outbox.up.sql"),
        down: include_str!("../../../migrations/sqlite/0001_outbox.down.sql"),
    },
    Migration {
        version: 2,
        name: "consumers",
        up: include_str!("../../../migrations/sqlite/0002_consumers.up.sql"),
        down: include_str!("../../../migrations/sqlite/0002_consumers.down.sql"),
    },
    Migration {
        version: 3,
        name: "consumer_release",
        up: include_str!("../../../migrations/sqlite/0003_consumer_release.up.sql"),
        down: include_str!("../../../migrations/sqlite/0003_consumer_release.down.sql"),
    },
    Migration {
        version: 4,
        name: "outbox_verification",
        up: include_str!("../../../migrations/sqlite/0004_outbox_verification.up.sql"),
        down: include_str!("../../../migrations/sqlite/0004_outbox_verification.down.sql"),
    },
    Migration {
        version: 5,
        name: "consumer_positions_and_batches",
        up: include_str!("../../../migrations/sqlite/0005_consumer_positions_and_batches.up.sql"),
        down: include_str!(
            "../../../migrations/sqlite/0005_consumer_positions_and_batches.down.sql"
        ),
    },
    Migration {
        version: 6,
        name: "outbox_status",
        up: include_str!("../../../migrations/sqlite/0006_outbox_status.up.sql"),
        down: include_str!("../../../migrations/sqlite/0006_outbox_status.down.sql"),
    },
    Migration {
        version: 7,
        name: "outbox_stream_leases",
        up: include_str!("../../../migrations/sqlite/0007_outbox_stream_leases.up.sql"),
        down: include_str!("../../../migrations/sqlite/0007_outbox_stream_leases.down.sql"),
    },
    Migration {
        version: 8,
        name: "outbox_sent_indexes",
        up: include_str!("../../../migrations/sqlite/0008_outbox_sent_indexes.up.sql"),
        down: include_str!("../../../migrations/sqlite/0008_outbox_sent_indexes.down.sql"),
    },
    Migration {
        version: 9,
        name: "outbox_counts",
        up: include_str!("../../../migrations/sqlite/0009_outbox_counts.up.sql"),
        down: include_str!("../../../migrations/sqlite/0009_outbox_counts.down.sql"),
    },
    Migration {
        version: 10,
        name: "outbox_waiting",
        up: include_str!("../../../migrations/sqlite/0010_outbox_waiting.up.sql"),
        down: include_str!("../../../migrations/sqlite/0010_outbox_waiting.down.sql"),
    },
    Migration {
        version: 11,
        name: "consumer_resets",
        up: include_str!("../../../migrations/sqlite/0011_consumer_resets.up.sql"),
        down: include_str!("../../../migrations/sqlite/0011_consumer_resets.down.sql"),
    },
    Migration {
        version: 12,
        name: "consumer_state",
        up: include_str!("../../../migrations/sqlite/0012_consumer_state.up.sql"),
        down: include_str!("../../../migrations/sqlite/0012_consumer_state.down.sql"),
    },
    Migration {
        version: 13,
        name: "outbox_id_per_namespace",
        up: include_str!("../../../migrations/sqlite/0013_outbox_id_per_namespace.up.sql"),
        down: include_str!("../../../migrations/sqlite/0013_outbox_id_per_namespace.down.sql"),
    },
    Migration {
        version: 14,
        name: "consumer_owner",
        up: include_str!("../../../migrations/sqlite/0014_consumer_owner.up.sql"),
        down: include_str!("../../../migrations/sqlite/0014_consumer_owner.down.sql"),
    },
    Migration {
        version: 15,
        name: "outbox_unverified_again",
        up: include_str!("../../../migrations/sqlite/0015_outbox_unverified_again.up.sql"),
        down: include_str!("../../../migrations/sqlite/0015_outbox_unverified_again.down.sql"),
    },
];

macro_rules! now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    };
    ($modifier:literal) => {
        concat!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ", $modifier, ")")
    };
}

const SQL: Sql = Sql {
    create_version_table: "CREATE TABLE IF NOT EXISTS eventodb_kit_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
    applied_versions: "SELECT version FROM eventodb_kit_migrations ORDER BY version",
    record_version: "INSERT INTO eventodb_kit_migrations (version, name) VALUES (?1, ?2)",
    forget_version: "DELETE FROM eventodb_kit_migrations WHERE version = ?1",
    insert: "INSERT INTO eventodb_kit_outbox
            (id, namespace, stream, message_type, data, metadata, write_options,
             expected_version, idempotency_key, content_hash)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
        ON CONFLICT DO NOTHING
        RETURNING seq",
    id_taken: "SELECT EXISTS (SELECT 1 FROM eventodb_kit_outbox WHERE namespace = ?1 AND id = ?2)",
    find_by_key: "SELECT id, content_hash FROM eventodb_kit_outbox
        WHERE namespace = ?1 AND idempotency_key = ?2",
    heads: concat!(
        "WITH RECURSIVE s(stream, n) AS (
            SELECT (SELECT min(f.stream) FROM eventodb_kit_outbox AS f
                    WHERE f.namespace = ?1 AND f.status IN ('pending', 'failed')
                      AND f.stream > ?2), 1
          UNION ALL
            SELECT (SELECT min(f.stream) FROM eventodb_kit_outbox AS f
                    WHERE f.namespace = ?1 AND f.status IN ('pending', 'failed')
                      AND f.stream > s.stream), s.n + 1
            FROM s WHERE s.stream IS NOT NULL AND s.n < ?3)
        SELECT s.stream,
               (h.status = 'pending' AND h.next_attempt_at <= ",
        now!(),
        "
                AND NOT EXISTS (
                    SELECT 1 FROM eventodb_kit_outbox_leases AS l
                    WHERE l.namespace = ?1 AND l.stream = s.stream
                      AND l.through_seq >= h.seq AND l.lease_until >= ",
        now!(),
        " AND ",
        lease_fences!(sqlite, "?1", "s.stream"),
        ")) AS claimable
        FROM s JOIN eventodb_kit_outbox AS h ON h.seq = (
            SELECT min(m.seq) FROM eventodb_kit_outbox AS m
            WHERE m.namespace = ?1 AND m.stream = s.stream AND m.status IN ('pending', 'failed'))
        ORDER BY s.n"
    ),
    // Claims run under the write lock: nothing can change the lease between read and write.
    // `status IN ('pending', 'failed') AND status = 'pending'`, below and in `lease_fences!`:
    // SQLite uses a partial index only when the query repeats its condition.
    lease_read: concat!(
        "SELECT owner, lease_until >= ",
        now!(),
        " AS live, from_seq, through_seq, ",
        lease_fences!(sqlite, "?1", "?2"),
        " AS fencing
        FROM eventodb_kit_outbox_leases AS l WHERE namespace = ?1 AND stream = ?2"
    ),
    // Cost bounded by `limit`, not by the stream's length.
    stream_rows: concat!(
        "SELECT seq, id, stream, message_type, data, metadata, expected_version, attempts,
               outcome_unknown, (status = 'failed' OR next_attempt_at > ",
        now!(),
        ") AS held
        FROM eventodb_kit_outbox
        WHERE namespace = ?1 AND stream = ?2 AND status IN ('pending', 'failed') AND seq > ?3
        ORDER BY seq
        LIMIT ?4"
    ),
    unsent_below: "SELECT EXISTS (SELECT 1 FROM eventodb_kit_outbox
        WHERE namespace = ?1 AND stream = ?2 AND status IN ('pending', 'failed') AND seq < ?3
          AND seq NOT IN (SELECT value FROM json_each(?4)))",
    mark_unknown_between: "UPDATE eventodb_kit_outbox SET outcome_unknown = 1
        WHERE namespace = ?1 AND stream = ?2 AND status IN ('pending', 'failed')
          AND status = 'pending' AND seq BETWEEN ?3 AND ?4
          AND outcome_unknown = 0",
    lease_upsert: concat!(
        "INSERT INTO eventodb_kit_outbox_leases
            (namespace, stream, owner, lease_until, from_seq, through_seq)
        VALUES (?1, ?2, ?3, ",
        now!("?4"),
        ", ?5, ?6)
        ON CONFLICT (namespace, stream) DO UPDATE
        SET from_seq = CASE WHEN eventodb_kit_outbox_leases.owner = excluded.owner
                            THEN eventodb_kit_outbox_leases.from_seq ELSE excluded.from_seq END,
            owner = excluded.owner, lease_until = excluded.lease_until,
            through_seq = excluded.through_seq"
    ),
    // Only a lease still running: one that ran out may have been given up on meanwhile (an
    // operator's discard of a row it covered), so the task that held it stops.
    renew: concat!(
        "UPDATE eventodb_kit_outbox_leases SET lease_until = ",
        now!("?4"),
        " WHERE namespace = ?1 AND stream = ?2 AND owner = ?3 AND lease_until >= ",
        now!()
    ),
    release: "UPDATE eventodb_kit_outbox_leases SET through_seq = ?4
        WHERE namespace = ?1 AND stream = ?2 AND owner = ?3 AND through_seq > ?4",
    // The sender never settles on SQLite (its writers hold the database's lock from drawing
    // a `seq` to their commit, so no row becomes visible inside a lease taken before it):
    // this shrinks the lease and reports no row found.
    settle: "UPDATE eventodb_kit_outbox_leases SET through_seq = 0
        WHERE namespace = ?1 AND stream = ?2 AND owner = ?3 AND through_seq >= from_seq
        RETURNING FALSE",
    drop_leases: "DELETE FROM eventodb_kit_outbox_leases WHERE namespace = ?1 AND owner = ?2",
    purge_leases: concat!(
        "DELETE FROM eventodb_kit_outbox_leases
        WHERE namespace = ?1 AND stream IN (
            SELECT l.stream FROM eventodb_kit_outbox_leases AS l
            WHERE l.namespace = ?1 AND l.lease_until < ",
        now!(),
        " AND NOT ",
        lease_fences!(sqlite, "?1", "l.stream"),
        "
            LIMIT ?2)"
    ),
    mark_sent_many: concat!(
        "UPDATE eventodb_kit_outbox AS o
        SET status = 'sent', sent_at = ",
        now!(),
        ", position = e.value ->> 1, global_position = e.value ->> 2,
            attempts = o.attempts + 1, outcome_unknown = 0,
            last_error = CASE WHEN o.requeued > 0 THEN o.last_error END
        FROM json_each(?1) AS e
        WHERE o.seq = e.value ->> 0"
    ),
    mark_retry: concat!(
        "UPDATE eventodb_kit_outbox
        SET attempts = attempts + 1, last_error = ?2,
            next_attempt_at = ",
        now!("?3"),
        ",
            outcome_unknown = (outcome_unknown OR ?4)
        WHERE seq = ?1 AND status = 'pending'"
    ),
    mark_failed: "UPDATE eventodb_kit_outbox
        SET status = 'failed', attempts = attempts + 1, last_error = ?2,
            outcome_unknown = (outcome_unknown OR ?3)
        WHERE seq = ?1 AND status = 'pending'",
    clear_unknown: "UPDATE eventodb_kit_outbox SET outcome_unknown = 0
        WHERE seq = ?1 AND attempts = ?2",
    // Pending and parked rows are counted (one partial index each: as many entries as the
    // backlog); sent rows are read from the counts the triggers of migration 9 keep.
    status: concat!(
        "SELECT
            (SELECT count(*) FROM eventodb_kit_outbox
             WHERE namespace = ?1 AND status = 'pending'),
            (SELECT count(*) FROM eventodb_kit_outbox
             WHERE namespace = ?1 AND status = 'failed'),
            (SELECT sent - unverified FROM eventodb_kit_outbox_counts WHERE namespace = ?1),
            (SELECT unverified FROM eventodb_kit_outbox_counts WHERE namespace = ?1),
            (SELECT (julianday(",
        now!(),
        ") - julianday(min(created_at))) * 86400.0 FROM eventodb_kit_outbox
             WHERE namespace = ?1 AND status = 'pending'),
            (SELECT count(*) FROM eventodb_kit_outbox
             WHERE namespace = ?1 AND requeued > 0),
            (SELECT last_error FROM eventodb_kit_outbox
             WHERE namespace = ?1 AND status = 'pending' AND next_attempt_at > created_at
               AND last_error IS NOT NULL
             ORDER BY next_attempt_at DESC LIMIT 1)"
    ),
    row: "SELECT id, stream, message_type, status, attempts, last_error, outcome_unknown,
               position, global_position, expected_version, idempotency_key
        FROM eventodb_kit_outbox WHERE namespace = ?1 AND id = ?2",
    failed: "SELECT id, stream, message_type, status, attempts, last_error, outcome_unknown,
               position, global_position, expected_version, idempotency_key
        FROM eventodb_kit_outbox WHERE namespace = ?1 AND status = 'failed'
        ORDER BY seq LIMIT ?2",
    retry: concat!(
        "UPDATE eventodb_kit_outbox
        SET status = 'pending', attempts = 0, next_attempt_at = ",
        now!(),
        ",
            expected_version = CASE WHEN ?3 THEN NULL ELSE expected_version END,
            write_options = CASE WHEN ?3 THEN json_remove(write_options, '$.expectedVersion')
                                 ELSE write_options END
        WHERE namespace = ?1 AND id = ?2 AND status = 'failed'"
    ),
    // The claim's write lock (`BEGIN IMMEDIATE`) already keeps claims out.
    discard_lock_lease: "SELECT 1 WHERE ?1 IS NOT NULL AND ?2 IS NOT NULL",
    discard_state: concat!(
        "SELECT o.stream, o.status, o.attempts, o.outcome_unknown, o.expected_version,
            l.owner AS lease_owner, l.lease_until, l.from_seq, l.through_seq,
            COALESCE(o.status = 'pending' AND o.seq BETWEEN l.from_seq AND l.through_seq
                     AND l.lease_until >= ",
        now!(),
        ", FALSE)
            OR (o.status = 'pending' AND o.outcome_unknown AND o.next_attempt_at > ",
        now!(),
        ") AS in_flight,
            COALESCE(o.status = 'pending' AND o.seq BETWEEN l.from_seq AND l.through_seq
                     AND l.lease_until < ",
        now!(),
        ", FALSE) AS lapsed
        FROM eventodb_kit_outbox AS o
        LEFT JOIN eventodb_kit_outbox_leases AS l
            ON l.namespace = o.namespace AND l.stream = o.stream
        WHERE o.namespace = ?1 AND o.id = ?2"
    ),
    discard: "UPDATE eventodb_kit_outbox
        SET status = 'discarded'
        WHERE namespace = ?1 AND id = ?2 AND status IN ('pending', 'failed')",
    // One branch per kind of row, each read from its own index oldest first: a single
    // condition over all of them was answered by reading the whole table.
    purge: concat!(
        "DELETE FROM eventodb_kit_outbox WHERE seq IN (
            SELECT seq FROM (SELECT seq FROM eventodb_kit_outbox
                WHERE namespace = ?1 AND status = 'sent' AND verified_at IS NOT NULL
                  AND sent_at < ",
        now!("'-' || ?2"),
        "
                ORDER BY sent_at LIMIT ?3)
            UNION ALL
            SELECT seq FROM (SELECT seq FROM eventodb_kit_outbox
                WHERE NOT ?4 AND namespace = ?1 AND status = 'sent' AND verified_at IS NULL
                  AND sent_at < ",
        now!("'-' || ?2"),
        "
                ORDER BY sent_at LIMIT ?3)
            UNION ALL
            SELECT seq FROM (SELECT seq FROM eventodb_kit_outbox
                WHERE namespace = ?1 AND status = 'discarded' AND created_at < ",
        now!("'-' || ?2"),
        "
                ORDER BY created_at LIMIT ?3)
            LIMIT ?3)"
    ),
    unverified: concat!(
        "SELECT seq, id, stream, position, global_position, requeued, unverified_again
        FROM eventodb_kit_outbox
        WHERE namespace = ?1 AND status = 'sent' AND verified_at IS NULL
          AND sent_at <= ",
        now!("'-' || ?2"),
        "
        ORDER BY sent_at, seq LIMIT ?3"
    ),
    newest_verified: "SELECT seq, id, stream, position, global_position, requeued,
            unverified_again
        FROM eventodb_kit_outbox
        WHERE namespace = ?1 AND status = 'sent' AND verified_at IS NOT NULL
        ORDER BY sent_at DESC LIMIT ?2",
    unverify_many: "UPDATE eventodb_kit_outbox
        SET verified_at = NULL, unverified_again = unverified_again + 1
        WHERE seq IN (SELECT value FROM json_each(?1))
          AND status = 'sent' AND verified_at IS NOT NULL",
    mark_verified_many: concat!(
        "UPDATE eventodb_kit_outbox SET verified_at = ",
        now!(),
        " WHERE status = 'sent' AND (seq, requeued, unverified_again) IN
            (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]')
             FROM json_each(?1))"
    ),
    requeue_lost: concat!(
        "UPDATE eventodb_kit_outbox
        SET status = 'pending', requeued = requeued + 1, lost_at = ",
        now!(),
        ", last_error = ?2,
            position = NULL, global_position = NULL, sent_at = NULL, verified_at = NULL,
            expected_version = NULL, write_options = json_remove(write_options, '$.expectedVersion'),
            next_attempt_at = ",
        now!(),
        ", outcome_unknown = 0
        WHERE seq = ?1 AND status = 'sent' AND requeued = ?3"
    ),
    // `next_attempt_at > created_at` matches the condition of migration 10's index: SQLite
    // then reads the few rows put off instead of every pending row.
    next_due: concat!(
        "SELECT (julianday(min(next_attempt_at)) - julianday(",
        now!(),
        ")) * 86400.0
        FROM eventodb_kit_outbox
        WHERE namespace = ?1 AND status = 'pending' AND next_attempt_at > created_at
          AND next_attempt_at > ",
        now!(),
        ""
    ),
};

/// Interval binds are `strftime` modifiers: `"1.500 seconds"`.
fn interval(duration: std::time::Duration) -> String {
    format!("{:.3} seconds", secs(duration))
}

/// Begins a transaction that holds SQLite's write lock from the start (`BEGIN IMMEDIATE`),
/// safe to drop midway (see [`begin_in_task`](super::begin_in_task)).
pub(crate) async fn begin_immediate(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    super::begin_in_task(pool, Some("BEGIN IMMEDIATE")).await
}

/// The claim's scan of stream heads runs under the write lock: the commit hook that wakes
/// the sender fires while the writer is still committing, and only the write lock waits for
/// that commit (a plain read could miss the row and leave it to the fallback poll).
const SCAN_UNDER_LOCK: bool = true;

/// Claims take the write lock up front, so they read what the last writer committed.
async fn claim_begin(pool: &SqlitePool, _namespace: &str) -> Result<Transaction<'static, Sqlite>> {
    begin_immediate(pool).await
}

/// A task taking the next rows of its own stream takes the write lock too: SQLite has no
/// row locks, so the write lock is what keeps it and another claim of the stream apart.
async fn continue_begin(
    pool: &SqlitePool,
    namespace: &str,
) -> Result<Transaction<'static, Sqlite>> {
    claim_begin(pool, namespace).await
}

/// Wakes the in-process senders when this connection's transaction commits (a rolled-back
/// transaction never wakes them). Replaces any commit hook set on the connection.
///
/// The hook wakes once, at the commit of the transaction that wrote the row, and stays quiet
/// after it: the connection goes back to the pool, and a hook that fired on every later
/// commit (the sender's own claims and records included) would wake the sender in a loop.
async fn after_insert_hook(conn: &mut SqliteConnection) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut handle = conn.lock_handle().await.map_err(db)?;
    let armed = Arc::new(AtomicBool::new(true));
    let on_commit = Arc::clone(&armed);
    handle.set_commit_hook(move || {
        if on_commit.swap(false, Ordering::Relaxed) {
            crate::outbox::wake::local_commit();
        }
        true
    });
    // A rolled-back write leaves nothing to send: disarm, or the connection's next commit
    // would wake the sender for nothing.
    handle.set_rollback_hook(move || armed.store(false, Ordering::Relaxed));
    Ok(())
}

backend_impl!(Sqlite, SqliteConnection, SQL, interval, begin_immediate);

/// Records sends in one statement, the batch as a JSON array of `[seq, position,
/// global_position]` (SQLite has no array binds).
async fn record_sends(pool: &SqlitePool, sent: &[(i64, i64, i64)]) -> Result<()> {
    let rows: Vec<[i64; 3]> = sent
        .iter()
        .map(|&(seq, position, global_position)| [seq, position, global_position])
        .collect();
    retry_busy!(async {
        sqlx::query(SQL.mark_sent_many)
            .bind(sqlx::types::Json(&rows))
            .execute(pool)
            .await
            .map_err(db)?;
        Ok(())
    })
}

/// In-process commits (see [`after_insert_hook`]).
async fn wake_source(
    _pool: &SqlitePool,
    _namespace: &str,
    _cancel: tokio_util::sync::CancellationToken,
) -> Result<tokio::sync::watch::Receiver<u64>> {
    Ok(crate::outbox::wake::local_commits())
}

/// The application's transaction takes the write lock at once: see [`Kit::begin`](crate::Kit::begin).
async fn begin_application(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    begin_immediate(pool).await
}

/// Connections the sender opens beside the application's pool. One: SQLite runs one writer
/// at a time anyway, and the sender's own statements then queue for the connection in the
/// pool instead of meeting on SQLite's lock, where the one that loses polls for it. In four
/// interleaved runs of the outbox bench, commit → sent while the application writes had a p50
/// of 4.9–10.5 ms with 4 connections and 5.0–7.3 ms with one; a connection also keeps its
/// own page cache.
const SENDER_CONNECTIONS: u32 = 1;

/// The sender's own pool on the application's database file, busy timeout 0:
/// a statement that finds the write lock taken fails at once, and the sender's operations
/// try again themselves (after 1 ms, then every 10 ms: [`super::BUSY_POLL`]) instead of
/// sleeping in SQLite's busy handler, which checks the lock only every 100 ms once a
/// connection has waited a while. Same connect options as the application's pool otherwise
/// (file, journal mode, pragmas); the pool's own hooks (`after_connect`) are not run.
///
/// `None` for an in-memory or temporary database: only the application's pool's
/// connections see it.
async fn sender_pool(pool: &SqlitePool) -> Result<Option<SqlitePool>> {
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await
            .map_err(db)?;
    if file.is_empty() {
        return Ok(None);
    }
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .busy_timeout(std::time::Duration::ZERO);
    Ok(Some(
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(SENDER_CONNECTIONS)
            .connect_lazy_with(options),
    ))
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Executor};

    use super::*;

    /// A lease that ran out is not renewed: the task holding it stops (see the PostgreSQL
    /// test of the same name).
    #[tokio::test]
    async fn a_lease_that_ran_out_is_not_renewed() {
        use crate::outbox::backend::private::Dialect;
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("app.db"))
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        crate::migrate(&pool).await.unwrap();
        sqlx::query(concat!(
            "INSERT INTO eventodb_kit_outbox_leases
                (namespace, stream, owner, lease_until, from_seq, through_seq)
            VALUES ('default', 'over', 'task', ",
            now!("'-1 seconds'"),
            ", 1, 2), ('default', 'live', 'task', ",
            now!("'+60 seconds'"),
            ", 1, 2)"
        ))
        .execute(&pool)
        .await
        .unwrap();
        let lease = std::time::Duration::from_secs(30);
        let over = Sqlite::renew(&pool, "default", "over", "task", lease).await;
        let live = Sqlite::renew(&pool, "default", "live", "task", lease).await;
        assert_eq!(over.unwrap(), 0, "ran out: lost");
        assert_eq!(live.unwrap(), 1, "still running: renewed");
    }

    /// A task that begins a transaction and is aborted at any point leaves every pooled
    /// connection out of a transaction and SQLite's write lock free. With sqlx's
    /// `begin_with` called directly, this failed: a connection came back still inside the
    /// transaction it had begun.
    #[tokio::test]
    async fn a_begin_aborted_midway_leaves_no_transaction_open() {
        const CONNECTIONS: u32 = 3;
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("app.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_millis(500));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .unwrap();
        for round in 0..1000 {
            crate::outbox::backend::begin::begin_and_abort(&pool, Some("BEGIN IMMEDIATE"), round)
                .await;
        }
        let mut connections = Vec::new();
        for _ in 0..CONNECTIONS {
            connections.push(pool.acquire().await.unwrap());
        }
        for (n, connection) in connections.iter_mut().enumerate() {
            let tx = connection
                .begin_with("BEGIN IMMEDIATE")
                .await
                .unwrap_or_else(|error| panic!("connection {n}: {error}"));
            tx.rollback().await.unwrap();
        }
    }

    fn commits() -> u64 {
        *crate::outbox::wake::local_commits().borrow()
    }

    /// Only the commit of a transaction that wrote outbox rows wakes the sender; later
    /// commits on the same (pooled) connection do not, nor does a rolled-back write.
    #[tokio::test]
    async fn the_commit_hook_wakes_once_per_outbox_write() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        conn.execute("CREATE TABLE t (n INTEGER)").await.unwrap();

        let before = commits();
        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (1)").await.unwrap();
        after_insert_hook(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(commits(), before + 1, "the writing commit wakes");

        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (2)").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(commits(), before + 1, "a later commit does not wake");

        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (3)").await.unwrap();
        after_insert_hook(&mut tx).await.unwrap();
        tx.rollback().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (4)").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(commits(), before + 1, "a rolled-back write never wakes");
    }

    /// The lines of SQLite's plan for `sql` (run with `binds`) that read the outbox table.
    async fn outbox_reads(
        pool: &SqlitePool,
        sql: &str,
        binds: (&str, &str, i64, bool),
    ) -> Vec<String> {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(binds.0)
                .bind(binds.1)
                .bind(binds.2)
                .bind(binds.3)
                .fetch_all(pool)
                .await
                .unwrap();
        plan.into_iter()
            .map(|(_, _, _, detail)| detail)
            .filter(|detail| detail.contains("eventodb_kit_outbox "))
            .collect()
    }

    /// The purge, the sweep's read and the status read each find their rows through the
    /// partial indexes made for them, never through a scan of the namespace's rows: they run
    /// every minute, every sweep and every health check, with a week of sent rows kept by
    /// default. (The purge's one condition over every kind of row, ordered by `seq`, was
    /// answered by reading every row of the namespace.) The status reads no sent row at all:
    /// it takes their counts from `eventodb_kit_outbox_counts`. The idle sender's look for
    /// the next row due reads only the rows it put off (it read every pending row, on every
    /// wake-up).
    #[tokio::test]
    async fn housekeeping_reads_go_through_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let binds = ("default", "3600.000 seconds", 500, true);
        let cases = [
            (
                "purge",
                SQL.purge,
                &["verified", "unverified", "discarded"][..],
            ),
            ("unverified", SQL.unverified, &["unverified"][..]),
            (
                "status",
                SQL.status,
                &["pending", "failed", "lost", "waiting"][..],
            ),
            ("next_due", SQL.next_due, &["waiting"][..]),
        ];
        let uses =
            |read: &str, index: &str| read.contains(&format!("INDEX eventodb_kit_outbox_{index} "));
        for (name, sql, indexes) in cases {
            let reads = outbox_reads(&pool, sql, binds).await;
            for index in indexes {
                assert!(
                    reads.iter().any(|read| uses(read, index)),
                    "{name} does not use the {index} index: {reads:#?}"
                );
            }
            for read in &reads {
                let indexed = indexes.iter().any(|index| uses(read, index))
                    || read.contains("USING INTEGER PRIMARY KEY");
                assert!(indexed, "{name} reads the outbox otherwise: {read}");
            }
        }
    }

    /// A sweep puts a lost row back only if no sweep did since it read the row: the sweeps
    /// of two processes that both found the event missing would otherwise both put it back,
    /// the second after the first one's resend was recorded, and it would be sent twice.
    #[tokio::test]
    async fn a_lost_row_is_put_back_once_per_read() {
        use crate::outbox::backend::private::Dialect;

        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let mark_sent = "UPDATE eventodb_kit_outbox SET status = 'sent', position = 0,
            global_position = 1, sent_at = '2000-01-01T00:00:00.000Z'";
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox (id, namespace, stream, message_type, data,
                content_hash)
             VALUES ('0190c0de-0000-7000-8000-000000000001', 'default', 's-1', 'T', '{}', 'h')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(mark_sent).execute(&pool).await.unwrap();
        let unverified = |pool| Sqlite::unverified(pool, "default", std::time::Duration::ZERO, 10);
        let read_by_a = unverified(&pool).await.unwrap();
        let read_by_b = unverified(&pool).await.unwrap();
        let (row, stale) = (&read_by_a[0], &read_by_b[0]);
        assert_eq!((row.requeued, stale.requeued), (0, 0));

        assert!(
            Sqlite::requeue_lost(&pool, row.seq, row.requeued, "lost")
                .await
                .unwrap()
        );
        // A's sender sends it again, and records it.
        sqlx::query(mark_sent).execute(&pool).await.unwrap();
        assert!(
            !Sqlite::requeue_lost(&pool, stale.seq, stale.requeued, "lost")
                .await
                .unwrap(),
            "B's read is older than A's put-back"
        );
        let fresh = &unverified(&pool).await.unwrap()[0];
        assert_eq!(fresh.requeued, 1);
        assert!(
            Sqlite::requeue_lost(&pool, fresh.seq, fresh.requeued, "lost")
                .await
                .unwrap()
        );
    }

    /// The application's pool on a new file, and the sender's pool beside it.
    /// The idle sender sleeps until the earliest row it put off is due: that row is found
    /// among the rows put off, and rows written since, due at once, are not counted.
    #[tokio::test]
    async fn the_next_row_due_is_the_earliest_put_off() {
        use crate::outbox::backend::private::Dialect;
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        for stream in ["s-1", "s-2", "s-3"] {
            sqlx::query(
                "INSERT INTO eventodb_kit_outbox (id, namespace, stream, message_type, data,
                    content_hash)
                 VALUES (lower(hex(randomblob(16))), 'default', ?1, 'T', '{}', 'h')",
            )
            .bind(stream)
            .execute(&pool)
            .await
            .unwrap();
        }
        assert_eq!(Sqlite::next_due(&pool, "default").await.unwrap(), None);
        Sqlite::mark_retry(&pool, 1, "down", Duration::from_secs(60), false)
            .await
            .unwrap();
        Sqlite::mark_retry(&pool, 2, "down", Duration::from_secs(20), false)
            .await
            .unwrap();
        let due = Sqlite::next_due(&pool, "default").await.unwrap().unwrap();
        // Julian-day arithmetic may come out a hair over 20 s when no millisecond passed.
        assert!(
            due > Duration::from_secs(15) && due < Duration::from_millis(20_001),
            "{due:?}"
        );
        assert_eq!(Sqlite::next_due(&pool, "other").await.unwrap(), None);
    }

    async fn app_and_sender_pools() -> (tempfile::TempDir, SqlitePool, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let own = sender_pool(&pool)
            .await
            .unwrap()
            .expect("a file gets a pool");
        (dir, pool, own)
    }

    async fn busy_timeout(pool: &SqlitePool) -> i64 {
        let (ms,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        ms
    }

    /// The application's pool holds SQLite's write lock until it commits.
    async fn hold_write_lock(pool: &SqlitePool) -> Transaction<'static, Sqlite> {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE eventodb_kit_outbox SET attempts = attempts WHERE seq = 0")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    }

    #[tokio::test]
    async fn the_sender_gets_a_connection_of_its_own_that_never_waits_in_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let app_timeout = busy_timeout(&pool).await;
        let own = sender_pool(&pool)
            .await
            .unwrap()
            .expect("a file gets a pool");
        assert_eq!(busy_timeout(&own).await, 0);
        assert_eq!(
            busy_timeout(&pool).await,
            app_timeout,
            "the application's pool is as it was"
        );
        assert!(app_timeout > 0);
        let (tables,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sqlite_master WHERE name = 'eventodb_kit_outbox'")
                .fetch_one(&own)
                .await
                .unwrap();
        assert_eq!(tables, 1, "the same database");

        let memory = SqlitePool::connect("sqlite::memory:").await.unwrap();
        assert!(
            sender_pool(&memory).await.unwrap().is_none(),
            "an in-memory database is seen only through its own pool"
        );
    }

    /// Whether the outbox's only row is verified.
    async fn only_row_verified(pool: &sqlx::SqlitePool) -> bool {
        let (at,): (Option<String>,) =
            sqlx::query_as("SELECT verified_at FROM eventodb_kit_outbox")
                .fetch_one(pool)
                .await
                .unwrap();
        at.is_some()
    }

    /// A sweep verifies the send it found in EventoDB only: a row another sweep put back and
    /// that was sent again since (`requeued` moved on) stays unverified.
    #[tokio::test]
    async fn a_stale_sweep_does_not_verify_a_send_it_did_not_check() {
        use super::super::private::Dialect;
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox
                (id, namespace, stream, message_type, data, content_hash, status, requeued,
                 sent_at)
            VALUES ('a', 'default', 's-1', 'T', '{}', 'h', 'sent', 1, '2026-01-01 00:00:00')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let verified = || only_row_verified(&pool);
        Sqlite::mark_verified_many(&pool, &[(1, 0, 0)])
            .await
            .unwrap();
        assert!(!verified().await, "read before the row was put back");
        Sqlite::mark_verified_many(&pool, &[(1, 1, 0)])
            .await
            .unwrap();
        assert!(verified().await);
    }

    /// A lookup that found the event absent clears the outcome-unknown flag only if the row
    /// was not tried since its claim: a later attempt's unknown outcome stays flagged.
    #[tokio::test]
    async fn a_stale_lookup_keeps_a_later_attempts_unknown_outcome() {
        use super::super::private::Dialect;
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox
                (id, namespace, stream, message_type, data, content_hash, outcome_unknown)
            VALUES ('a', 'default', 's-1', 'T', '{}', 'h', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let unknown = || async {
            let (unknown,): (bool,) =
                sqlx::query_as("SELECT outcome_unknown FROM eventodb_kit_outbox")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            unknown
        };
        // Claimed with 0 attempts; another sender tries it meanwhile, outcome unknown.
        Sqlite::mark_retry(&pool, 1, "timed out", std::time::Duration::ZERO, true)
            .await
            .unwrap();
        assert!(!Sqlite::clear_unknown(&pool, 1, 0).await.unwrap());
        assert!(unknown().await, "the later attempt still needs its lookup");
        assert!(Sqlite::clear_unknown(&pool, 1, 1).await.unwrap());
        assert!(!unknown().await);
    }

    /// A sweep that read a row before another sweep found a loss and made the row unverified
    /// again does not verify it: its check may predate the loss.
    #[tokio::test]
    async fn a_sweep_that_read_a_row_before_a_loss_does_not_verify_it() {
        use super::super::private::Dialect;
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox
                (id, namespace, stream, message_type, data, content_hash, status, position,
                 global_position, sent_at)
            VALUES ('a', 'default', 's-1', 'T', '{}', 'h', 'sent', 0, 1, '2026-01-01 00:00:00')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let unverified = || Sqlite::unverified(&pool, "default", std::time::Duration::ZERO, 10);
        let verified = || only_row_verified(&pool);
        let token = |row: &crate::outbox::backend::Unverified| {
            (row.seq, row.requeued, row.unverified_again)
        };
        let late = token(&unverified().await.unwrap()[0]);
        let prompt = token(&unverified().await.unwrap()[0]);
        Sqlite::mark_verified_many(&pool, &[prompt]).await.unwrap();
        assert_eq!(Sqlite::unverify_many(&pool, &[prompt.0]).await.unwrap(), 1);
        Sqlite::mark_verified_many(&pool, &[late]).await.unwrap();
        assert!(!verified().await, "read before the loss");
        let again = unverified().await.unwrap();
        assert_eq!(again[0].unverified_again, 1);
        Sqlite::mark_verified_many(&pool, &[token(&again[0])])
            .await
            .unwrap();
        assert!(verified().await, "read after the loss");
    }

    /// The sender's statement waits for the lock by trying again itself: it goes through
    /// once the application commits, instead of failing at once (busy timeout 0).
    #[tokio::test]
    async fn a_sender_statement_goes_through_once_the_application_commits() {
        let (_dir, pool, own) = app_and_sender_pools().await;
        let held = hold_write_lock(&pool).await;

        let refused = sqlx::query("DELETE FROM eventodb_kit_outbox_leases")
            .execute(&own)
            .await
            .map_err(db)
            .unwrap_err();
        assert!(super::super::is_busy(KIND, &refused), "{refused}");
        assert!(!super::super::is_busy(DialectKind::Postgres, &refused));

        let release = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            held.commit().await.unwrap();
        });
        <Sqlite as super::super::private::Dialect>::release(&own, "default", "s", "w", 0)
            .await
            .expect("tried again until the lock was free");
        release.await.unwrap();
    }

    /// A lock held for longer than the sender waits fails the statement with the busy error
    /// (the sender then backs off as after any database error). On the real clock: a paused
    /// one would also run out the pool's acquire timeout while SQLite's thread works.
    #[tokio::test]
    async fn a_sender_statement_gives_up_after_the_lock_wait() {
        let (_dir, pool, own) = app_and_sender_pools().await;
        let _held = hold_write_lock(&pool).await;
        let started = tokio::time::Instant::now();
        let error =
            <Sqlite as super::super::private::Dialect>::release(&own, "default", "s", "w", 0)
                .await
                .unwrap_err();
        assert!(super::super::is_busy(KIND, &error), "{error}");
        assert!(started.elapsed() >= super::super::LOCK_WAIT);
    }
}
