//! PostgreSQL: `jsonb`, `timestamptz`, `uuid`; claims of new streams serialized per namespace by
//! an advisory transaction lock, a stream's lease row locked by whoever claims its rows;
//! wake-ups by a trigger's `NOTIFY` (delivered at commit only).

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{DialectKind, Migration, Sql, backend_impl, lease_fences, retry_busy, secs};
use crate::error::Result;

const KIND: DialectKind = DialectKind::Postgres;

/// The channel the outbox trigger notifies, with the namespace as payload.
pub(crate) const CHANNEL: &str = "eventodb_kit_outbox";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "outbox",
        up: include_str!("../../../migrations/postgres/0001_outbox.up.sql"),
        down: include_str!("../../../migrations/postgres/0001_outbox.down.sql"),
    },
    Migration {
        version: 2,
        name: "consumers",
        up: include_str!("../../../migrations/postgres/0002_consumers.up.sql"),
        down: include_str!("../../../migrations/postgres/0002_consumers.down.sql"),
    },
    Migration {
        version: 3,
        name: "consumer_release",
        up: include_str!("../../../migrations/postgres/0003_consumer_release.up.sql"),
        down: include_str!("../../../migrations/postgres/0003_consumer_release.down.sql"),
    },
    Migration {
        version: 4,
        name: "outbox_verification",
        up: include_str!("../../../migrations/postgres/0004_outbox_verification.up.sql"),
        down: include_str!("../../../migrations/postgres/0004_outbox_verification.down.sql"),
    },
    Migration {
        version: 5,
        name: "consumer_positions_and_batches",
        up: include_str!("../../../migrations/postgres/0005_consumer_positions_and_batches.up.sql"),
        down: include_str!(
            "../../../migrations/postgres/0005_consumer_positions_and_batches.down.sql"
        ),
    },
    Migration {
        version: 6,
        name: "outbox_status",
        up: include_str!("../../../migrations/postgres/0006_outbox_status.up.sql"),
        down: include_str!("../../../migrations/postgres/0006_outbox_status.down.sql"),
    },
    Migration {
        version: 7,
        name: "outbox_fillfactor",
        up: include_str!("../../../migrations/postgres/0007_outbox_fillfactor.up.sql"),
        down: include_str!("../../../migrations/postgres/0007_outbox_fillfactor.down.sql"),
    },
    Migration {
        version: 8,
        name: "outbox_stream_leases",
        up: include_str!("../../../migrations/postgres/0008_outbox_stream_leases.up.sql"),
        down: include_str!("../../../migrations/postgres/0008_outbox_stream_leases.down.sql"),
    },
    Migration {
        version: 9,
        name: "outbox_idempotency_index",
        up: include_str!("../../../migrations/postgres/0009_outbox_idempotency_index.up.sql"),
        down: include_str!("../../../migrations/postgres/0009_outbox_idempotency_index.down.sql"),
    },
    Migration {
        version: 10,
        name: "outbox_sent_indexes",
        up: include_str!("../../../migrations/postgres/0010_outbox_sent_indexes.up.sql"),
        down: include_str!("../../../migrations/postgres/0010_outbox_sent_indexes.down.sql"),
    },
    Migration {
        version: 11,
        name: "outbox_counts",
        up: include_str!("../../../migrations/postgres/0011_outbox_counts.up.sql"),
        down: include_str!("../../../migrations/postgres/0011_outbox_counts.down.sql"),
    },
    Migration {
        version: 12,
        name: "outbox_waiting",
        up: include_str!("../../../migrations/postgres/0012_outbox_waiting.up.sql"),
        down: include_str!("../../../migrations/postgres/0012_outbox_waiting.down.sql"),
    },
    Migration {
        version: 13,
        name: "consumer_resets",
        up: include_str!("../../../migrations/postgres/0013_consumer_resets.up.sql"),
        down: include_str!("../../../migrations/postgres/0013_consumer_resets.down.sql"),
    },
    Migration {
        version: 14,
        name: "consumer_state",
        up: include_str!("../../../migrations/postgres/0014_consumer_state.up.sql"),
        down: include_str!("../../../migrations/postgres/0014_consumer_state.down.sql"),
    },
    Migration {
        version: 15,
        name: "outbox_id_per_namespace",
        up: include_str!("../../../migrations/postgres/0015_outbox_id_per_namespace.up.sql"),
        down: include_str!("../../../migrations/postgres/0015_outbox_id_per_namespace.down.sql"),
    },
    Migration {
        version: 16,
        name: "consumer_owner",
        up: include_str!("../../../migrations/postgres/0016_consumer_owner.up.sql"),
        down: include_str!("../../../migrations/postgres/0016_consumer_owner.down.sql"),
    },
    Migration {
        version: 17,
        name: "outbox_unverified_again",
        up: include_str!("../../../migrations/postgres/0017_outbox_unverified_again.up.sql"),
        down: include_str!("../../../migrations/postgres/0017_outbox_unverified_again.down.sql"),
    },
];

const SQL: Sql = Sql {
    create_version_table: "CREATE TABLE IF NOT EXISTS eventodb_kit_migrations (
        version BIGINT PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    applied_versions: "SELECT version FROM eventodb_kit_migrations ORDER BY version",
    record_version: "INSERT INTO eventodb_kit_migrations (version, name) VALUES ($1, $2)",
    forget_version: "DELETE FROM eventodb_kit_migrations WHERE version = $1",
    insert: "INSERT INTO eventodb_kit_outbox
            (id, namespace, stream, message_type, data, metadata, write_options,
             expected_version, idempotency_key, content_hash)
        VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT DO NOTHING
        RETURNING seq",
    id_taken: "SELECT EXISTS (SELECT 1 FROM eventodb_kit_outbox WHERE namespace = $1 AND id = $2::uuid)",
    find_by_key: "SELECT id::text, content_hash FROM eventodb_kit_outbox
        WHERE namespace = $1 AND idempotency_key = $2",
    // `ORDER BY ... LIMIT 1`, not `min()`: after a burst of writes, before the statistics
    // caught up, PostgreSQL answered the first `min(f.stream)` by reading every unsent row
    // of every stream (13,400 rows and 9 ms in one claim of a 20,000-row drain).
    heads: concat!(
        "WITH RECURSIVE s(stream, n) AS (
            SELECT (SELECT f.stream FROM eventodb_kit_outbox AS f
                    WHERE f.namespace = $1 AND f.status IN ('pending', 'failed')
                      AND f.stream > $2
                    ORDER BY f.stream LIMIT 1), 1
          UNION ALL
            SELECT (SELECT f.stream FROM eventodb_kit_outbox AS f
                    WHERE f.namespace = $1 AND f.status IN ('pending', 'failed')
                      AND f.stream > s.stream
                    ORDER BY f.stream LIMIT 1), s.n + 1
            FROM s WHERE s.stream IS NOT NULL AND s.n < $3)
        SELECT s.stream,
               (h.status = 'pending' AND h.next_attempt_at <= now()
                AND NOT EXISTS (
                    SELECT 1 FROM eventodb_kit_outbox_leases AS l
                    WHERE l.namespace = $1 AND l.stream = s.stream
                      AND l.through_seq >= h.seq AND l.lease_until >= now()
                      AND ",
        lease_fences!(postgres, "$1", "s.stream"),
        ")) AS claimable
        FROM s JOIN eventodb_kit_outbox AS h ON h.seq = (
            SELECT m.seq FROM eventodb_kit_outbox AS m
            WHERE m.namespace = $1 AND m.stream = s.stream AND m.status IN ('pending', 'failed')
            ORDER BY m.seq LIMIT 1)
        ORDER BY s.n"
    ),
    // The row lock serializes the claims of one stream (a task claiming its stream's next
    // rows holds no advisory lock), and makes a renewal wait for the claim and then find the
    // lease gone, instead of renewing a lease the claim read as expired and is taking over.
    lease_read: concat!(
        "SELECT owner, lease_until >= now() AS live, from_seq, through_seq, ",
        lease_fences!(postgres, "$1", "$2"),
        " AS fencing
        FROM eventodb_kit_outbox_leases AS l WHERE namespace = $1 AND stream = $2
        FOR UPDATE OF l"
    ),
    // Cost bounded by `limit`, not by the stream's length.
    stream_rows: "SELECT seq, id::text AS id, stream, message_type, data, metadata,
               expected_version, attempts::int8 AS attempts, outcome_unknown,
               (status = 'failed' OR next_attempt_at > now()) AS held
        FROM eventodb_kit_outbox
        WHERE namespace = $1 AND stream = $2 AND status IN ('pending', 'failed') AND seq > $3
        ORDER BY seq
        LIMIT $4",
    unsent_below: "SELECT EXISTS (SELECT 1 FROM eventodb_kit_outbox
        WHERE namespace = $1 AND stream = $2 AND status IN ('pending', 'failed') AND seq < $3
          AND seq NOT IN (SELECT jsonb_array_elements_text($4::jsonb)::int8))",
    mark_unknown_between: "UPDATE eventodb_kit_outbox SET outcome_unknown = TRUE
        WHERE namespace = $1 AND stream = $2 AND status IN ('pending', 'failed')
          AND status = 'pending' AND seq BETWEEN $3 AND $4
          AND NOT outcome_unknown",
    lease_upsert: "INSERT INTO eventodb_kit_outbox_leases AS l
            (namespace, stream, owner, lease_until, from_seq, through_seq)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6)
        ON CONFLICT (namespace, stream) DO UPDATE
        SET from_seq = CASE WHEN l.owner = excluded.owner THEN l.from_seq
                            ELSE excluded.from_seq END,
            owner = excluded.owner, lease_until = excluded.lease_until,
            through_seq = excluded.through_seq",
    // Only a lease still running: one that ran out may have been given up on meanwhile (an
    // operator's discard of a row it covered), so the task that held it stops. Renewed
    // after its end, it let that task send a row the operator had just discarded.
    renew: "UPDATE eventodb_kit_outbox_leases
        SET lease_until = now() + make_interval(secs => $4)
        WHERE namespace = $1 AND stream = $2 AND owner = $3 AND lease_until >= now()",
    release: "UPDATE eventodb_kit_outbox_leases SET through_seq = $4
        WHERE namespace = $1 AND stream = $2 AND owner = $3 AND through_seq > $4",
    // Committed without waiting for the WAL flush: a settle lost in a crash leaves the lease
    // as it was, and a row committed late inside it waits for the lease to run out, as it
    // did before settling existed. The old range is read first, as `l` (the update's
    // `RETURNING` sees the new one), so that `lease_fences!` tests it.
    settle: concat!(
        "WITH async_commit AS (
            SELECT set_config('synchronous_commit', 'off', true) AS setting),
        l AS (
            SELECT from_seq, through_seq FROM eventodb_kit_outbox_leases
            WHERE namespace = $1 AND stream = $2 AND owner = $3 AND through_seq >= from_seq
            FOR UPDATE)
        UPDATE eventodb_kit_outbox_leases AS lease SET through_seq = 0
        FROM l, async_commit
        WHERE lease.namespace = $1 AND lease.stream = $2 AND lease.owner = $3
        RETURNING ",
        lease_fences!(postgres, "$1", "$2")
    ),
    drop_leases: "DELETE FROM eventodb_kit_outbox_leases WHERE namespace = $1 AND owner = $2",
    // The deleted row itself must still be expired and fence nothing: when a stream task
    // extends the lease meanwhile (it holds the row's lock), PostgreSQL checks the row's own
    // conditions again on the new version, but not the subquery's, whose rows it read before
    // the wait. The subquery only bounds how many go at once.
    //
    // The fence test is written `IS NOT TRUE`, not `NOT EXISTS`, so that it stays a probe of
    // the lease's own stream per lease: as an anti-join, with statistics that had not caught
    // up with a burst of writes, PostgreSQL read every unsent row of the namespace per lease,
    // and ran the subquery again per lease (10 leases over 20,000 rows: 1.3 million buffers
    // and a second; 224 leases in a soak run: minutes, with every claim waiting behind it).
    // The candidates are materialized for the same reason.
    purge_leases: concat!(
        "WITH due AS MATERIALIZED (
            SELECT l.stream FROM eventodb_kit_outbox_leases AS l
            WHERE l.namespace = $1 AND l.lease_until < now() AND ",
        lease_fences!(postgres, "$1", "l.stream"),
        " IS NOT TRUE
            LIMIT $2)
        DELETE FROM eventodb_kit_outbox_leases AS l
        WHERE l.namespace = $1 AND l.lease_until < now() AND ",
        lease_fences!(postgres, "$1", "l.stream"),
        " IS NOT TRUE AND l.stream IN (SELECT stream FROM due)"
    ),
    // Committed without waiting for the WAL flush: if PostgreSQL crashes and loses this
    // record, the rows are still leased (the claim was flushed), so whoever claims them after
    // the lease marks their outcome unknown and finds them in EventoDB instead of resending.
    // Saves a disk flush on the path from commit to "sent".
    mark_sent_many: "WITH async_commit AS (
            SELECT set_config('synchronous_commit', 'off', true) AS setting)
        UPDATE eventodb_kit_outbox AS o
        SET status = 'sent', sent_at = now(),
            position = e.position, global_position = e.global_position,
            attempts = o.attempts + 1, outcome_unknown = FALSE,
            last_error = CASE WHEN o.requeued > 0 THEN o.last_error END
        FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS e(seq, position, global_position),
            async_commit
        WHERE o.seq = e.seq",
    mark_retry: "UPDATE eventodb_kit_outbox
        SET attempts = attempts + 1, last_error = $2,
            next_attempt_at = now() + make_interval(secs => $3),
            outcome_unknown = outcome_unknown OR $4
        WHERE seq = $1 AND status = 'pending'",
    mark_failed: "UPDATE eventodb_kit_outbox
        SET status = 'failed', attempts = attempts + 1, last_error = $2,
            outcome_unknown = outcome_unknown OR $3
        WHERE seq = $1 AND status = 'pending'",
    clear_unknown: "UPDATE eventodb_kit_outbox SET outcome_unknown = FALSE
        WHERE seq = $1 AND attempts = $2",
    // Pending and parked rows are counted (one partial index each: as many entries as the
    // backlog); sent rows are read from the counts the triggers of migration 11 keep.
    status: "SELECT
            (SELECT count(*) FROM eventodb_kit_outbox
             WHERE namespace = $1 AND status = 'pending'),
            (SELECT count(*) FROM eventodb_kit_outbox
             WHERE namespace = $1 AND status = 'failed'),
            (SELECT sent - unverified FROM eventodb_kit_outbox_counts WHERE namespace = $1),
            (SELECT unverified FROM eventodb_kit_outbox_counts WHERE namespace = $1),
            (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM eventodb_kit_outbox
             WHERE namespace = $1 AND status = 'pending'),
            (SELECT count(*) FROM eventodb_kit_outbox
             WHERE namespace = $1 AND requeued > 0),
            (SELECT last_error FROM eventodb_kit_outbox
             WHERE namespace = $1 AND status = 'pending' AND next_attempt_at > created_at
               AND last_error IS NOT NULL
             ORDER BY next_attempt_at DESC LIMIT 1)",
    row: "SELECT id::text AS id, stream, message_type, status, attempts::int8 AS attempts,
               last_error, outcome_unknown, position, global_position, expected_version,
               idempotency_key
        FROM eventodb_kit_outbox WHERE namespace = $1 AND id = $2::uuid",
    failed: "SELECT id::text AS id, stream, message_type, status, attempts::int8 AS attempts,
               last_error, outcome_unknown, position, global_position, expected_version,
               idempotency_key
        FROM eventodb_kit_outbox WHERE namespace = $1 AND status = 'failed'
        ORDER BY seq LIMIT $2",
    retry: "UPDATE eventodb_kit_outbox
        SET status = 'pending', attempts = 0, next_attempt_at = now(),
            expected_version = CASE WHEN $3 THEN NULL ELSE expected_version END,
            write_options = CASE WHEN $3 THEN write_options - 'expectedVersion'
                                 ELSE write_options END
        WHERE namespace = $1 AND id = $2::uuid AND status = 'failed'",
    discard_lock_lease: "SELECT 1 FROM eventodb_kit_outbox_leases AS l
        WHERE l.namespace = $1 AND l.stream = (
            SELECT o.stream FROM eventodb_kit_outbox AS o WHERE o.namespace = $1 AND o.id = $2::uuid)
        FOR UPDATE OF l",
    discard_state: "SELECT o.stream, o.status, o.attempts::int8 AS attempts, o.outcome_unknown,
            o.expected_version, l.owner AS lease_owner, l.lease_until::text AS lease_until,
            l.from_seq, l.through_seq,
            COALESCE(o.status = 'pending' AND o.seq BETWEEN l.from_seq AND l.through_seq
                     AND l.lease_until >= now(), FALSE)
            OR (o.status = 'pending' AND o.outcome_unknown AND o.next_attempt_at > now())
                AS in_flight,
            COALESCE(o.status = 'pending' AND o.seq BETWEEN l.from_seq AND l.through_seq
                     AND l.lease_until < now(), FALSE) AS lapsed
        FROM eventodb_kit_outbox AS o
        LEFT JOIN eventodb_kit_outbox_leases AS l
            ON l.namespace = o.namespace AND l.stream = o.stream
        WHERE o.namespace = $1 AND o.id = $2::uuid",
    discard: "UPDATE eventodb_kit_outbox
        SET status = 'discarded'
        WHERE namespace = $1 AND id = $2::uuid AND status IN ('pending', 'failed')",
    // One branch per kind of row, each read from its own index oldest first: a single
    // condition over all of them was answered by reading the whole table.
    // The outer conditions repeat the inner ones: a row that changed while the delete
    // waited for its lock (put back to be sent again by another process's sweep, which
    // found its event lost) is checked again on its new version, and kept. The subquery
    // only picks the candidates.
    purge: "DELETE FROM eventodb_kit_outbox AS o
        WHERE (
            (o.status = 'sent' AND (o.verified_at IS NOT NULL OR NOT $4)
             AND o.sent_at < now() - make_interval(secs => $2))
            OR (o.status = 'discarded' AND o.created_at < now() - make_interval(secs => $2)))
          AND o.namespace = $1
          AND o.seq IN (
            SELECT seq FROM (
                (SELECT seq FROM eventodb_kit_outbox
                 WHERE namespace = $1 AND status = 'sent' AND verified_at IS NOT NULL
                   AND sent_at < now() - make_interval(secs => $2)
                 ORDER BY sent_at LIMIT $3)
                UNION ALL
                (SELECT seq FROM eventodb_kit_outbox
                 WHERE NOT $4 AND namespace = $1 AND status = 'sent' AND verified_at IS NULL
                   AND sent_at < now() - make_interval(secs => $2)
                 ORDER BY sent_at LIMIT $3)
                UNION ALL
                (SELECT seq FROM eventodb_kit_outbox
                 WHERE namespace = $1 AND status = 'discarded'
                   AND created_at < now() - make_interval(secs => $2)
                 ORDER BY created_at LIMIT $3)
            ) AS due
            LIMIT $3)",
    unverified: "SELECT seq, id::text AS id, stream, position, global_position,
               requeued::int8 AS requeued, unverified_again::int8 AS unverified_again
        FROM eventodb_kit_outbox
        WHERE namespace = $1 AND status = 'sent' AND verified_at IS NULL
          AND sent_at <= now() - make_interval(secs => $2)
        ORDER BY sent_at, seq LIMIT $3",
    // Read from the index of migration 10, newest first.
    newest_verified: "SELECT seq, id::text AS id, stream, position, global_position,
               requeued::int8 AS requeued, unverified_again::int8 AS unverified_again
        FROM eventodb_kit_outbox
        WHERE namespace = $1 AND status = 'sent' AND verified_at IS NOT NULL
        ORDER BY sent_at DESC LIMIT $2",
    unverify_many: "UPDATE eventodb_kit_outbox
        SET verified_at = NULL, unverified_again = unverified_again + 1
        WHERE seq IN (SELECT jsonb_array_elements_text($1::jsonb)::int8)
          AND status = 'sent' AND verified_at IS NOT NULL",
    mark_verified_many: "UPDATE eventodb_kit_outbox AS o SET verified_at = now()
        FROM jsonb_array_elements($1::jsonb) AS e(row)
        WHERE o.seq = (e.row->>0)::int8 AND o.requeued = (e.row->>1)::int4
          AND o.unverified_again = (e.row->>2)::int4 AND o.status = 'sent'",
    requeue_lost: "UPDATE eventodb_kit_outbox
        SET status = 'pending', requeued = requeued + 1, lost_at = now(), last_error = $2,
            position = NULL, global_position = NULL, sent_at = NULL, verified_at = NULL,
            expected_version = NULL, write_options = write_options - 'expectedVersion',
            next_attempt_at = now(), outcome_unknown = FALSE
        WHERE seq = $1 AND status = 'sent' AND requeued = $3",
    // `next_attempt_at > created_at` lets the planner read the few rows put off from the
    // index of migration 12 instead of every pending row.
    next_due: "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8
        FROM eventodb_kit_outbox
        WHERE namespace = $1 AND status = 'pending' AND next_attempt_at > created_at
          AND next_attempt_at > now()",
};

/// Interval binds are fractional seconds for `make_interval(secs => ...)`.
fn interval(duration: std::time::Duration) -> f64 {
    secs(duration)
}

/// How every transaction of this crate begins on PostgreSQL, whatever the database's
/// `default_transaction_isolation`. They take a lock and then read what the lock's previous
/// holder committed (applied migrations, leases, positions): under `REPEATABLE READ` or
/// `SERIALIZABLE` the snapshot is taken at the first statement, the lock call itself,
/// before it waits, and those rows would stay invisible. A second `migrate` would then
/// apply every migration again and fail, and a discard would miss the lease of a claim that
/// had just committed.
pub(crate) const BEGIN_READ_COMMITTED: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Begins one of this crate's transactions (see [`BEGIN_READ_COMMITTED`]), safe to drop
/// midway (see [`begin_in_task`](super::begin_in_task)).
pub(crate) async fn begin_read_committed(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    super::begin_in_task(pool, Some(BEGIN_READ_COMMITTED)).await
}

/// A transaction holding the migration lock (one migrator at a time across processes).
async fn begin_locked(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = begin_read_committed(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('eventodb_kit_migrations', 0))")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(tx)
}

/// Notifications arrive after the commit, so the claim's scan of stream heads needs no lock.
const SCAN_UNDER_LOCK: bool = false;

/// A transaction holding the claim lock of `namespace`: claims are serialized so that two
/// senders never take rows of one stream (a claim sees the leases the previous one committed).
async fn claim_begin(pool: &PgPool, namespace: &str) -> Result<Transaction<'static, Postgres>> {
    let mut tx = begin_read_committed(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('eventodb_kit_outbox/' || $1, 0))")
        .bind(namespace)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(tx)
}

/// A transaction for a task taking the next rows of a stream it already leases. It takes no
/// claim lock: it reads its lease row `FOR UPDATE` before anything else (`lease_read`), as
/// every claim does, so it waits for, or makes wait, the one claim that might take the same
/// stream, and it never writes another stream's lease. Under the claim lock, one such task
/// per stream queued behind every claim: measured on 20,000 rows over 100 streams, sessions
/// spent 7–17 s in all waiting for that lock during a 1.5 s drain.
async fn continue_begin(pool: &PgPool, _namespace: &str) -> Result<Transaction<'static, Postgres>> {
    begin_read_committed(pool).await
}

/// Nothing to do: the trigger notifies at commit.
async fn after_insert_hook(_conn: &mut PgConnection) -> Result<()> {
    Ok(())
}

backend_impl!(Postgres, PgConnection, SQL, interval, begin_locked);

/// Records sends in one statement, the batch as three arrays: unnesting arrays took 8.5 to
/// 9.1 µs per row where a JSON array took 9.2 to 10.8 (300-row statements, 4 runs each).
async fn record_sends(pool: &PgPool, sent: &[(i64, i64, i64)]) -> Result<()> {
    let seqs: Vec<i64> = sent.iter().map(|row| row.0).collect();
    let positions: Vec<i64> = sent.iter().map(|row| row.1).collect();
    let global_positions: Vec<i64> = sent.iter().map(|row| row.2).collect();
    sqlx::query(SQL.mark_sent_many)
        .bind(seqs)
        .bind(positions)
        .bind(global_positions)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

/// The application's transaction: at the database's (or the session's) own isolation level.
async fn begin_application(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    super::begin_in_task(pool, None).await
}

/// The sender shares the application's pool: PostgreSQL's row locks and the claim's advisory
/// lock queue their waiters, so none needs connections of its own.
async fn sender_pool(_pool: &PgPool) -> Result<Option<PgPool>> {
    Ok(None)
}

/// `LISTEN`s on the trigger's channel (own connection, reconnected by sqlx when lost) and
/// bumps the returned channel for each notification about `namespace`, and after a lost
/// connection (notifications may have been missed).
///
/// A database that cannot be reached yet (see
/// [`database_unreachable`](crate::error::database_unreachable)) does not stop the sender from
/// starting: an application whose database comes up after it (a container started first, a
/// failover under way) gets a sender that delivers once the database answers, as one that
/// lost its database later does. Until the listener connects, the sender polls, and its claims
/// fail and back off. An error that waiting cannot mend (a wrong password, a missing database)
/// fails at once.
async fn wake_source(
    pool: &PgPool,
    namespace: &str,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<tokio::sync::watch::Receiver<u64>> {
    let mut listener = match listen(pool).await {
        Ok(listener) => Some(listener),
        Err(error) if crate::error::database_unreachable(&error) => {
            tracing::warn!(
                error = crate::error::log_field(&error),
                "outbox listen: the database cannot be reached; the sender starts and listens once it can"
            );
            None
        }
        Err(error) => return Err(db(error)),
    };
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let namespace = namespace.to_owned();
    let pool = pool.clone();
    let bump = move |tx: &tokio::sync::watch::Sender<u64>| {
        tx.send_modify(|generation| *generation = generation.wrapping_add(1));
    };
    tokio::spawn(async move {
        loop {
            let Some(connected) = listener.as_mut() else {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(LISTEN_RETRY) => {}
                }
                match listen(&pool).await {
                    Ok(connected) => {
                        tracing::info!("outbox listen connected");
                        listener = Some(connected);
                        // Rows may have been committed while nobody listened.
                        bump(&tx);
                    }
                    Err(error) => tracing::debug!(
                        error = crate::error::log_field(&error),
                        "outbox listen: the database still cannot be reached"
                    ),
                }
                if tx.is_closed() {
                    break;
                }
                continue;
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                received = connected.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if notification.payload() == namespace {
                            bump(&tx);
                        }
                    }
                    Ok(None) => {
                        tracing::debug!("outbox listen connection lost; reconnecting");
                        bump(&tx);
                    }
                    Err(error) => {
                        tracing::warn!(error = crate::error::log_field(&error), "outbox listen failed; retrying in 1s");
                        bump(&tx);
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            () = tokio::time::sleep(LISTEN_RETRY) => {}
                        }
                    }
                },
            }
            if tx.is_closed() {
                break;
            }
        }
    });
    Ok(rx)
}

/// How long the listener waits before it connects again.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection of its own, listening on the trigger's channel.
async fn listen(pool: &PgPool) -> std::result::Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// A fresh schema per test in `DATABASE_URL`'s database (the integration tests' helper).
#[cfg(test)]
#[path = "../../../tests/pg_schema/mod.rs"]
pub(crate) mod pg_schema;

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Writes `rows` pending rows in one statement; `stream` is an SQL expression of the row
    /// number `i` (from 1).
    async fn insert_rows(pool: &PgPool, stream: &str, rows: i64) {
        sqlx::query(&format!(
            "INSERT INTO eventodb_kit_outbox
                (id, namespace, stream, message_type, data, content_hash)
            SELECT gen_random_uuid(), 'default', {stream}, 'T', '{{}}', 'h'
            FROM generate_series(1, $1) AS i"
        ))
        .bind(rows)
        .execute(pool)
        .await
        .unwrap();
    }

    /// 20,000 pending rows over 100 streams (row `i` on stream `s-{i % 100}`, `seq` = `i`),
    /// written at once and never analyzed: the table right after a burst of writes, before
    /// autovacuum has caught up with its statistics.
    async fn backlog() -> Option<pg_schema::PgSchema> {
        let db = pg_schema::fresh("eventodb_kit_plans", 2).await?;
        insert_rows(&db.pool, "'s-' || (i % 100)", 20_000).await;
        Some(db)
    }

    /// The shared buffers (hits and reads) a statement touched, from its `EXPLAIN ANALYZE`.
    fn buffers(explain: &Value) -> i64 {
        let plan = &explain[0]["Plan"];
        plan["Shared Hit Blocks"].as_i64().unwrap() + plan["Shared Read Blocks"].as_i64().unwrap()
    }

    /// A task that begins a transaction and is aborted at any point leaves no session of
    /// the pool idle in a transaction. With sqlx's `pool.begin()` called directly, this
    /// failed: a connection went back to the pool inside the transaction it had begun.
    #[tokio::test]
    async fn a_begin_aborted_midway_leaves_no_transaction_open() {
        let Some(db) = pg_schema::fresh("eventodb_kit_begin", 1).await else {
            return;
        };
        let name = format!("begin_abort_{}", uuid::Uuid::new_v4().simple());
        let pool = pg_schema::named_pool(&db.pool, &name, 3).await;
        let mut left_open = Vec::new();
        for round in 0..200 {
            crate::outbox::backend::begin::begin_and_abort(&pool, None, round).await;
            // Every connection back in the pool (a rollback owed has gone out with the ping
            // on release), then none may be in a transaction. Looked at after every round:
            // the next begin on a connection left in one would end it.
            let mut connections = Vec::new();
            for _ in 0..3 {
                connections.push(pool.acquire().await.unwrap());
            }
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            )
            .bind(&name)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            if open > 0 {
                left_open.push(round);
            }
        }
        pool.close().await;
        db.cleanup().await;
        assert!(
            left_open.is_empty(),
            "transactions left open in rounds {left_open:?}"
        );
    }

    /// A lease whose range holds only other streams' rows: the check reads the lease's own
    /// stream's rows, not every pending row in the range.
    #[tokio::test]
    async fn the_lease_check_reads_only_its_streams_rows() {
        let Some(db) = backlog().await else { return };
        // "quiet" has rows after the backlog only, and a lease over the whole backlog.
        insert_rows(&db.pool, "'quiet'", 10).await;
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox_leases
                (namespace, stream, owner, lease_until, from_seq, through_seq)
            VALUES ('default', 'quiet', 'other', now() + interval '30 seconds', 1, 20000)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let (explain,): (sqlx::types::Json<Value>,) = sqlx::query_as(&format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            SQL.lease_read
        ))
        .bind("default")
        .bind("quiet")
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let touched = buffers(&explain);
        let (_, live, _, _, fencing): (String, bool, i64, i64, bool) =
            sqlx::query_as(SQL.lease_read)
                .bind("default")
                .bind("quiet")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        db.cleanup().await;
        assert!(live);
        assert!(!fencing, "no row of the stream lies in the lease's range");
        assert!(
            touched < 20,
            "the lease check touched {touched} buffers: {explain:?}"
        );
    }

    /// The scan of stream heads reads a few index entries per stream, however many rows
    /// each stream has.
    #[tokio::test]
    async fn the_head_scan_reads_per_stream_not_per_row() {
        let Some(db) = backlog().await else { return };
        let (explain,): (sqlx::types::Json<Value>,) = sqlx::query_as(&format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            SQL.heads
        ))
        .bind("default")
        .bind("s-49")
        .bind(crate::outbox::backend::HEAD_SCAN)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let touched = buffers(&explain);
        let heads: Vec<(String, bool)> = sqlx::query_as(SQL.heads)
            .bind("default")
            .bind("s-49")
            .bind(crate::outbox::backend::HEAD_SCAN)
            .fetch_all(&db.pool)
            .await
            .unwrap();
        db.cleanup().await;
        // Stream names after "s-49", in text order.
        assert_eq!(heads.len(), 55);
        assert!(heads.iter().all(|(_, claimable)| *claimable));
        assert!(
            touched < 2_000,
            "the head scan touched {touched} buffers: {explain:?}"
        );
    }

    /// The idle sender's look for the next row due reads the rows put off, not the backlog:
    /// it runs on every wake-up, and while EventoDB is down every commit wakes the sender.
    /// (It read all 20,000 pending rows here.)
    #[tokio::test]
    async fn the_next_row_due_is_found_without_reading_the_backlog() {
        use crate::outbox::backend::private::Dialect;
        use std::time::Duration;

        let Some(db) = backlog().await else { return };
        assert_eq!(Postgres::next_due(&db.pool, "default").await.unwrap(), None);
        Postgres::mark_retry(&db.pool, 7, "down", Duration::from_secs(60), false)
            .await
            .unwrap();
        Postgres::mark_retry(&db.pool, 8, "down", Duration::from_secs(20), false)
            .await
            .unwrap();
        let (explain,): (sqlx::types::Json<Value>,) = sqlx::query_as(&format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            SQL.next_due
        ))
        .bind("default")
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let touched = buffers(&explain);
        let due = Postgres::next_due(&db.pool, "default").await.unwrap();
        let elsewhere = Postgres::next_due(&db.pool, "other").await.unwrap();
        db.cleanup().await;
        let due = due.unwrap();
        assert!(
            due > Duration::from_secs(15) && due <= Duration::from_secs(20),
            "{due:?}"
        );
        assert_eq!(elsewhere, None);
        assert!(
            touched < 20,
            "the next-due read touched {touched} buffers: {explain:?}"
        );
    }

    /// Settling shrinks the lease of its owner only, and says whether a pending row lay in
    /// its range.
    #[tokio::test]
    async fn settling_reports_a_row_waiting_in_the_lease() {
        use crate::outbox::backend::private::Dialect;

        let Some(db) = pg_schema::fresh("eventodb_kit_settle", 2).await else {
            return;
        };
        // Rows 1 to 3 on "s", row 2 still pending; rows 1 and 3 sent.
        insert_rows(&db.pool, "'s'", 3).await;
        sqlx::query("UPDATE eventodb_kit_outbox SET status = 'sent' WHERE seq IN (1, 3)")
            .execute(&db.pool)
            .await
            .unwrap();
        let lease = |stream: &'static str, owner: &'static str, from: i64, through: i64| {
            sqlx::query(
                "INSERT INTO eventodb_kit_outbox_leases
                    (namespace, stream, owner, lease_until, from_seq, through_seq)
                VALUES ('default', $1, $2, now() + interval '30 seconds', $3, $4)",
            )
            .bind(stream)
            .bind(owner)
            .bind(from)
            .bind(through)
            .execute(&db.pool)
        };
        lease("s", "a#1", 1, 3).await.unwrap();
        lease("t", "a#1", 5, 9).await.unwrap();
        let other = Postgres::settle(&db.pool, "default", "s", "b#1")
            .await
            .unwrap();
        let waiting = Postgres::settle(&db.pool, "default", "s", "a#1")
            .await
            .unwrap();
        let again = Postgres::settle(&db.pool, "default", "s", "a#1")
            .await
            .unwrap();
        let empty = Postgres::settle(&db.pool, "default", "t", "a#1")
            .await
            .unwrap();
        let ranges: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stream, through_seq FROM eventodb_kit_outbox_leases ORDER BY stream",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        db.cleanup().await;
        assert!(!other, "another owner's settle changes nothing");
        assert!(waiting, "row 2 lay pending in the range");
        assert!(!again, "the lease already covers no row");
        assert!(!empty, "no row in the range of t");
        assert_eq!(ranges, [("s".to_owned(), 0), ("t".to_owned(), 0)]);
    }

    /// A purge with nothing due reads a few index pages, not the table: it runs every minute,
    /// with a week of sent rows kept by default. (Its one condition over every kind of row,
    /// ordered by `seq`, read all 20,000 rows here.)
    #[tokio::test]
    async fn a_purge_with_nothing_due_reads_no_rows() {
        let Some(db) = backlog().await else { return };
        sqlx::query(
            "UPDATE eventodb_kit_outbox
            SET status = CASE WHEN seq % 10 = 0 THEN 'discarded' ELSE 'sent' END,
                sent_at = now(), verified_at = CASE WHEN seq % 2 = 0 THEN now() END",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let mut touched = Vec::new();
        for require_verified in [true, false] {
            let (explain,): (sqlx::types::Json<Value>,) = sqlx::query_as(&format!(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
                SQL.purge
            ))
            .bind("default")
            .bind(3600.0_f64)
            .bind(500_i64)
            .bind(require_verified)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            touched.push((buffers(&explain), explain));
        }
        let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM eventodb_kit_outbox")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        db.cleanup().await;
        assert_eq!(left, 20_000, "nothing was due");
        for (touched, explain) in touched {
            assert!(
                touched < 50,
                "the purge touched {touched} buffers: {explain:?}"
            );
        }
    }

    /// One claim of the sender's on PostgreSQL: every picked stream in one transaction.
    async fn claim_all(
        pool: &sqlx::PgPool,
        owner: &str,
        lease: std::time::Duration,
        streams: usize,
        per_stream: i64,
        cursor: &mut String,
    ) -> Vec<crate::outbox::backend::Claimed> {
        use crate::outbox::backend::private::Dialect;
        let claim = Postgres::claim(
            pool,
            "default",
            owner,
            lease,
            streams,
            per_stream,
            cursor,
            usize::MAX,
        )
        .await
        .unwrap();
        assert!(claim.rest.is_empty());
        claim.rows
    }

    /// A task taking its own stream's next rows does not queue behind a claim of other
    /// streams (the claim lock), and a task whose lease is gone gets nothing.
    #[tokio::test]
    async fn a_stream_task_continues_while_another_claim_holds_the_lock() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_continue", 4).await else {
            return;
        };
        insert_rows(&db.pool, "'a'", 6).await;
        let lease = std::time::Duration::from_secs(30);
        let mut cursor = String::new();
        let first = claim_all(&db.pool, "me", lease, 1, 2, &mut cursor).await;
        let taken: Vec<i64> = first.iter().map(|row| row.seq).collect();
        assert_eq!(taken.len(), 2);

        let held = claim_begin(&db.pool, "default").await.unwrap();
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            Postgres::claim_stream(&db.pool, "default", "a", "me", lease, 2, &taken),
        )
        .await
        .expect("the next rows are claimed while the claim lock is held")
        .unwrap();
        held.rollback().await.unwrap();
        let next: Vec<i64> = next.iter().map(|row| row.seq).collect();
        assert_eq!(next, vec![taken[1] + 1, taken[1] + 2]);

        sqlx::query("DELETE FROM eventodb_kit_outbox_leases")
            .execute(&db.pool)
            .await
            .unwrap();
        let all: Vec<i64> = taken.iter().chain(&next).copied().collect();
        let gone = Postgres::claim_stream(&db.pool, "default", "a", "me", lease, 2, &all)
            .await
            .unwrap();
        let nothing_sent = Postgres::claim_stream(&db.pool, "default", "a", "me", lease, 2, &[])
            .await
            .unwrap();
        db.cleanup().await;
        // Rows 5 and 6 are still pending: the main claim takes them.
        assert!(gone.is_empty(), "a task whose lease is gone gets nothing");
        assert!(
            nothing_sent.is_empty(),
            "a task that sent nothing gets nothing"
        );
    }

    /// A row whose transaction drew its `seq` before a stream task's rows and committed after
    /// the task's claim goes before the rows committed after it: the task does not go on past
    /// it, and the main claim takes the stream from it once the task's sends are recorded.
    #[tokio::test]
    async fn a_stream_task_does_not_go_on_past_a_row_committed_late() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_late_row", 4).await else {
            return;
        };
        let mut late = db.pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox (id, namespace, stream, message_type, data, content_hash)
            VALUES (gen_random_uuid(), 'default', 'a', 'T', '{}', 'h')",
        )
        .execute(&mut *late)
        .await
        .unwrap();
        insert_rows(&db.pool, "'a'", 3).await;
        let lease = std::time::Duration::from_secs(30);
        let mut cursor = String::new();
        let first = claim_all(&db.pool, "me", lease, 1, 2, &mut cursor).await;
        let taken: Vec<i64> = first.iter().map(|row| row.seq).collect();
        assert_eq!(taken, vec![2, 3], "the uncommitted row 1 is not seen");
        late.commit().await.unwrap();
        // A transaction that begins after row 1 committed.
        insert_rows(&db.pool, "'a'", 1).await;

        let next = Postgres::claim_stream(&db.pool, "default", "a", "me", lease, 2, &taken)
            .await
            .unwrap();
        assert!(
            next.is_empty(),
            "rows 4 and 5 would go before row 1: {next:?}"
        );
        // The task's sends are recorded and it settles (row 1 lies below its range, and its
        // lease fences nothing once its rows are recorded): the main claim starts at row 1.
        sqlx::query("UPDATE eventodb_kit_outbox SET status = 'sent' WHERE seq IN (2, 3)")
            .execute(&db.pool)
            .await
            .unwrap();
        Postgres::settle(&db.pool, "default", "a", "me")
            .await
            .unwrap();
        let mut cursor = String::new();
        let then = claim_all(&db.pool, "other", lease, 1, 10, &mut cursor).await;
        db.cleanup().await;
        let then: Vec<i64> = then.iter().map(|row| row.seq).collect();
        assert_eq!(then, vec![1, 4, 5]);
    }

    /// Whether the outbox's only row is verified.
    async fn only_row_verified(pool: &PgPool) -> bool {
        let (verified,): (bool,) =
            sqlx::query_as("SELECT verified_at IS NOT NULL FROM eventodb_kit_outbox")
                .fetch_one(pool)
                .await
                .unwrap();
        verified
    }

    /// A sweep verifies the send it found in EventoDB only: a row another sweep put back and
    /// that was sent again since (`requeued` moved on) stays unverified.
    #[tokio::test]
    async fn a_stale_sweep_does_not_verify_a_send_it_did_not_check() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_stale_sweep", 2).await else {
            return;
        };
        insert_rows(&db.pool, "'s-1'", 1).await;
        sqlx::query(
            "UPDATE eventodb_kit_outbox SET status = 'sent', requeued = 1, sent_at = now()",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let verified = || only_row_verified(&db.pool);
        Postgres::mark_verified_many(&db.pool, &[(1, 0, 0)])
            .await
            .unwrap();
        let stale = verified().await;
        Postgres::mark_verified_many(&db.pool, &[(1, 1, 0)])
            .await
            .unwrap();
        let current = verified().await;
        db.cleanup().await;
        assert!(!stale, "read before the row was put back");
        assert!(current);
    }

    /// A lookup that found the event absent clears the outcome-unknown flag only if the row
    /// was not tried since its claim: a later attempt's unknown outcome stays flagged.
    #[tokio::test]
    async fn a_stale_lookup_keeps_a_later_attempts_unknown_outcome() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_stale_lookup", 2).await else {
            return;
        };
        let pool = &db.pool;
        insert_rows(pool, "'s-1'", 1).await;
        sqlx::query("UPDATE eventodb_kit_outbox SET outcome_unknown = TRUE")
            .execute(pool)
            .await
            .unwrap();
        let unknown = || async {
            let (unknown,): (bool,) =
                sqlx::query_as("SELECT outcome_unknown FROM eventodb_kit_outbox")
                    .fetch_one(pool)
                    .await
                    .unwrap();
            unknown
        };
        // Claimed with 0 attempts; another sender tries it meanwhile, outcome unknown.
        Postgres::mark_retry(pool, 1, "timed out", std::time::Duration::ZERO, true)
            .await
            .unwrap();
        let stale = Postgres::clear_unknown(pool, 1, 0).await.unwrap();
        let kept = unknown().await;
        let current = Postgres::clear_unknown(pool, 1, 1).await.unwrap();
        let cleared = !unknown().await;
        db.cleanup().await;
        assert!(!stale && kept, "the later attempt still needs its lookup");
        assert!(current && cleared);
    }

    /// A sweep that read a row before another sweep found a loss and made the row unverified
    /// again does not verify it: its check may predate the loss.
    #[tokio::test]
    async fn a_sweep_that_read_a_row_before_a_loss_does_not_verify_it() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_sweep_before_loss", 2).await else {
            return;
        };
        insert_rows(&db.pool, "'s-1'", 1).await;
        sqlx::query(
            "UPDATE eventodb_kit_outbox SET status = 'sent', position = 0, global_position = 1,
                sent_at = now() - interval '1 minute'",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let pool = &db.pool;
        let unverified = || Postgres::unverified(pool, "default", std::time::Duration::ZERO, 10);
        let verified = || only_row_verified(pool);
        let token = |row: &crate::outbox::backend::Unverified| {
            (row.seq, row.requeued, row.unverified_again)
        };
        let late = token(&unverified().await.unwrap()[0]);
        let prompt = token(&unverified().await.unwrap()[0]);
        Postgres::mark_verified_many(pool, &[prompt]).await.unwrap();
        let made_unverified = Postgres::unverify_many(pool, &[prompt.0]).await.unwrap();
        Postgres::mark_verified_many(pool, &[late]).await.unwrap();
        let stale = verified().await;
        let again = unverified().await.unwrap();
        Postgres::mark_verified_many(pool, &[token(&again[0])])
            .await
            .unwrap();
        let fresh = verified().await;
        db.cleanup().await;
        assert_eq!(made_unverified, 1);
        assert!(!stale, "read before the loss");
        assert_eq!(again[0].unverified_again, 1);
        assert!(fresh, "read after the loss");
    }

    /// Starts a purge (retention 1 h, verification on) on a pool of its own named
    /// `application`, and returns once it waits for a lock another transaction holds.
    async fn purge_waiting_for_a_lock(
        pool: &PgPool,
        application: &str,
    ) -> (PgPool, tokio::task::JoinHandle<Result<u64>>) {
        use crate::outbox::backend::private::Dialect;
        let purger = pg_schema::named_pool(pool, application, 1).await;
        let purge = tokio::spawn({
            let purger = purger.clone();
            async move {
                Postgres::purge(
                    &purger,
                    "default",
                    std::time::Duration::from_secs(3600),
                    10,
                    true,
                )
                .await
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                WHERE application_name = $1 AND wait_event_type = 'Lock'",
            )
            .bind(application)
            .fetch_one(pool)
            .await
            .unwrap();
            if waiting > 0 {
                return (purger, purge);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the purge never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Quiet leases are purged with an index probe per lease, not a read of the backlog per
    /// lease (and per lease again). Right after a burst of writes the planner took the
    /// unsent rows for a handful and joined every lease with all of them: in a soak run one
    /// such purge ran for minutes, holding back every claim behind its row locks.
    #[tokio::test]
    async fn purging_leases_reads_per_lease_not_the_backlog() {
        let Some(db) = backlog().await else { return };
        // Ten expired leases whose ranges hold none of their streams' rows.
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox_leases
                (namespace, stream, owner, lease_until, from_seq, through_seq)
            SELECT 'default', 's-' || i, 'gone', now() - interval '1 minute', 30000, 30001
            FROM generate_series(0, 9) AS i",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        let (explain,): (sqlx::types::Json<Value>,) = sqlx::query_as(&format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            SQL.purge_leases
        ))
        .bind("default")
        .bind(100_i64)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        let touched = buffers(&explain);
        let purged = sqlx::query(SQL.purge_leases)
            .bind("default")
            .bind(100_i64)
            .execute(&db.pool)
            .await
            .unwrap()
            .rows_affected();
        db.cleanup().await;
        assert_eq!(purged, 10);
        assert!(
            touched < 300,
            "the purge of 10 leases touched {touched} buffers: {}",
            explain.0
        );
    }

    /// A quiet lease that a stream task extends while the purge waits for its row is kept:
    /// the purge deletes only a lease that is still expired and fences nothing.
    #[tokio::test]
    async fn purging_quiet_leases_spares_one_extended_meanwhile() {
        let Some(db) = pg_schema::fresh("eventodb_kit_purge_leases", 4).await else {
            return;
        };
        insert_rows(&db.pool, "'a'", 3).await;
        for statement in [
            // Rows 1 and 2 sent under a lease that has run out; row 3 not claimed yet.
            "UPDATE eventodb_kit_outbox SET status = 'sent' WHERE seq <= 2",
            "INSERT INTO eventodb_kit_outbox_leases
                (namespace, stream, owner, lease_until, from_seq, through_seq)
            VALUES ('default', 'a', 'task', now() - interval '1 minute', 1, 2)",
        ] {
            sqlx::query(statement).execute(&db.pool).await.unwrap();
        }
        // The task takes its next row as `claim_stream` does: its lease row locked first.
        let mut task = db.pool.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM eventodb_kit_outbox_leases WHERE stream = 'a' FOR UPDATE")
            .execute(&mut *task)
            .await
            .unwrap();
        // Until the purge waits for the task's lock (it read the lease as quiet before).
        let (purger, purge) = purge_waiting_for_a_lock(&db.pool, "purge_leases_test").await;
        sqlx::query(
            "UPDATE eventodb_kit_outbox_leases
            SET lease_until = now() + interval '30 seconds', through_seq = 3
            WHERE stream = 'a'",
        )
        .execute(&mut *task)
        .await
        .unwrap();
        task.commit().await.unwrap();
        purge.await.unwrap().unwrap();
        let kept: Vec<(String, i64)> =
            sqlx::query_as("SELECT owner, through_seq FROM eventodb_kit_outbox_leases")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        purger.close().await;
        db.cleanup().await;
        assert_eq!(kept, vec![("task".to_owned(), 3)]);
    }

    /// A lease that ran out is not renewed: the task holding it stops. Renewed, it sent a
    /// row an operator had discarded meanwhile (a discard takes a row whose lease lapsed).
    #[tokio::test]
    async fn a_lease_that_ran_out_is_not_renewed() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_renew", 2).await else {
            return;
        };
        sqlx::query(
            "INSERT INTO eventodb_kit_outbox_leases
                (namespace, stream, owner, lease_until, from_seq, through_seq)
            VALUES ('default', 'over', 'task', now() - interval '1 second', 1, 2),
                   ('default', 'live', 'task', now() + interval '1 minute', 1, 2)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let lease = std::time::Duration::from_secs(30);
        let over = Postgres::renew(&db.pool, "default", "over", "task", lease).await;
        let live = Postgres::renew(&db.pool, "default", "live", "task", lease).await;
        db.cleanup().await;
        assert_eq!(over.unwrap(), 0, "ran out: lost");
        assert_eq!(live.unwrap(), 1, "still running: renewed");
    }

    /// A sent row that another process's sweep puts back to be sent again (its event was
    /// lost) while the purge waits for the row's lock is kept: the purge checks it again.
    /// Before, the purge deleted it, and the event was never sent again.
    #[tokio::test]
    async fn the_purge_keeps_a_row_put_back_while_it_waited() {
        let Some(db) = pg_schema::fresh("eventodb_kit_purge_requeued", 4).await else {
            return;
        };
        insert_rows(&db.pool, "'a'", 1).await;
        sqlx::query(
            "UPDATE eventodb_kit_outbox
            SET status = 'sent', sent_at = now() - interval '2 hours', verified_at = now()",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        // The sweep puts the row back, its transaction still open.
        let mut sweep = db.pool.begin().await.unwrap();
        sqlx::query(
            "UPDATE eventodb_kit_outbox
            SET status = 'pending', verified_at = NULL, requeued = requeued + 1, sent_at = NULL",
        )
        .execute(&mut *sweep)
        .await
        .unwrap();
        let (purger, purge) = purge_waiting_for_a_lock(&db.pool, "purge_requeued_test").await;
        sweep.commit().await.unwrap();
        let purged = purge.await.unwrap();
        let left: Vec<String> = sqlx::query_scalar("SELECT status FROM eventodb_kit_outbox")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        purger.close().await;
        db.cleanup().await;
        assert_eq!(purged.unwrap(), 0);
        assert_eq!(left, vec!["pending".to_owned()]);
    }

    /// A claim whose commit took effect though the sender saw it fail: dropping its leases
    /// frees its streams at once (the next claim takes them) and leaves other claims' leases.
    #[tokio::test]
    async fn a_failed_claims_leases_are_dropped_alone() {
        use crate::outbox::backend::private::Dialect;
        let Some(db) = pg_schema::fresh("eventodb_kit_drop_leases", 4).await else {
            return;
        };
        insert_rows(&db.pool, "'s-' || (i % 2)", 4).await;
        let lease = std::time::Duration::from_secs(30);
        let mut cursor = String::new();
        let lost = claim_all(&db.pool, "lost#1", lease, 1, 2, &mut cursor).await;
        let kept = claim_all(&db.pool, "kept#2", lease, 1, 2, &mut cursor).await;
        assert_eq!((lost.len(), kept.len()), (2, 2));
        Postgres::drop_leases(&db.pool, "default", "lost#1")
            .await
            .unwrap();
        let owners: Vec<String> =
            sqlx::query_scalar("SELECT owner FROM eventodb_kit_outbox_leases ORDER BY owner")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        let again = claim_all(&db.pool, "next#3", lease, 2, 2, &mut cursor).await;
        db.cleanup().await;
        assert_eq!(owners, vec!["kept#2".to_owned()]);
        let again: Vec<i64> = again.iter().map(|row| row.seq).collect();
        let lost: Vec<i64> = lost.iter().map(|row| row.seq).collect();
        assert_eq!(again, lost, "the next claim takes the failed claim's rows");
    }
}
