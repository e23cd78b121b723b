//! The code both dialects run, generated once per database from its statement table.

/// Generates the shared part of a [`Dialect`](super::private::Dialect) impl from a
/// dialect's `SQL` table.
macro_rules! backend_impl {
    ($db:ty, $conn:ty, $sql:expr, $interval:path, $begin_locked:path) => {
        #[allow(private_interfaces)]
        impl $crate::outbox::backend::private::Dialect for $db {
            const KIND: $crate::outbox::backend::DialectKind = KIND;
            const MIGRATIONS: &'static [$crate::outbox::backend::Migration] = MIGRATIONS;

            async fn migrate_up(pool: &sqlx::Pool<Self>) -> $crate::error::Result<Vec<i64>> {
                let mut tx = $begin_locked(pool).await?;
                let applied = applied_versions(&mut tx).await?;
                let mut done = Vec::new();
                for migration in MIGRATIONS {
                    if applied.contains(&migration.version) {
                        continue;
                    }
                    run_migration_script(&mut tx, migration, migration.up).await?;
                    sqlx::query($sql.record_version)
                        .bind(migration.version)
                        .bind(migration.name)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    done.push(migration.version);
                }
                tx.commit().await.map_err(db)?;
                Ok(done)
            }

            async fn migrate_down(
                pool: &sqlx::Pool<Self>,
                target: i64,
            ) -> $crate::error::Result<Vec<i64>> {
                let mut tx = $begin_locked(pool).await?;
                let applied = applied_versions(&mut tx).await?;
                let mut done = Vec::new();
                for migration in MIGRATIONS.iter().rev() {
                    if migration.version <= target || !applied.contains(&migration.version) {
                        continue;
                    }
                    run_migration_script(&mut tx, migration, migration.down).await?;
                    sqlx::query($sql.forget_version)
                        .bind(migration.version)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    done.push(migration.version);
                }
                tx.commit().await.map_err(db)?;
                Ok(done)
            }

            async fn insert(
                conn: &mut $conn,
                namespace: &str,
                message: &$crate::outbox::message::CheckedMessage,
            ) -> $crate::error::Result<$crate::outbox::backend::Inserted> {
                use $crate::outbox::backend::Inserted;
                let id = message.id.to_string();
                let inserted: Option<(i64,)> = sqlx::query_as($sql.insert)
                    .bind(&id)
                    .bind(namespace)
                    .bind(&message.stream)
                    .bind(&message.message_type)
                    .bind(sqlx::types::Json(&message.data))
                    .bind(message.metadata.as_ref().map(sqlx::types::Json))
                    .bind(sqlx::types::Json(message.write_options()))
                    .bind(message.expected_version)
                    .bind(message.idempotency_key.as_deref())
                    .bind(&message.content_hash)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err($crate::error::database_or_not_migrated)?;
                if inserted.is_some() {
                    return Ok(Inserted::New);
                }
                // The key's row decides first: a replay, or a key reused with other content
                // (whatever its id).
                if let Some(key) = message.idempotency_key.as_deref() {
                    let winner: Option<(String, String)> = sqlx::query_as($sql.find_by_key)
                        .bind(namespace)
                        .bind(key)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(db)?;
                    if let Some((id, content_hash)) = winner {
                        return Ok(Inserted::Existing { id, content_hash });
                    }
                }
                let id_taken: bool = sqlx::query_scalar($sql.id_taken)
                    .bind(namespace)
                    .bind(&id)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db)?;
                if id_taken {
                    return Err($crate::error::Error::OutboxDuplicateId { id });
                }
                // Neither is visible: the key's row was committed after this transaction's
                // snapshot (an isolation stricter than read committed).
                Err($crate::error::Error::OutboxIdempotencyRace {
                    key: message.idempotency_key.clone().unwrap_or_default(),
                })
            }

            async fn after_insert(conn: &mut $conn) -> $crate::error::Result<()> {
                after_insert_hook(conn).await
            }

            async fn wake_source(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                cancel: tokio_util::sync::CancellationToken,
            ) -> $crate::error::Result<tokio::sync::watch::Receiver<u64>> {
                wake_source(pool, namespace, cancel).await
            }

            async fn begin_application(
                pool: &sqlx::Pool<Self>,
            ) -> $crate::error::Result<sqlx::Transaction<'static, Self>> {
                begin_application(pool).await
            }

            async fn sender_pool(
                pool: &sqlx::Pool<Self>,
            ) -> $crate::error::Result<Option<sqlx::Pool<Self>>> {
                sender_pool(pool).await
            }

            async fn claim(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                owner: &str,
                lease: std::time::Duration,
                streams: usize,
                per_stream: i64,
                cursor: &mut String,
                first_rows: usize,
            ) -> $crate::error::Result<$crate::outbox::backend::Claim> {
                retry_busy!(async {
                    use $crate::outbox::backend::HEAD_SCAN;
                    // The scan only picks candidates (`lease_stream_rows` decides under the
                    // lock), so where it can, it runs outside the lock: an idle claim takes no
                    // lock at all.
                    let mut locked = if SCAN_UNDER_LOCK {
                        Some(claim_begin(pool, namespace).await?)
                    } else {
                        None
                    };
                    let scan = sqlx::query_as($sql.heads)
                        .bind(namespace)
                        .bind(cursor.as_str())
                        .bind(HEAD_SCAN);
                    let heads: Vec<(String, bool)> = match locked.as_mut() {
                        Some(tx) => scan.fetch_all(&mut **tx).await,
                        None => scan.fetch_all(pool).await,
                    }
                    .map_err(db)?;
                    let reached_last =
                        heads.len() < usize::try_from(HEAD_SCAN).unwrap_or(usize::MAX);
                    let mut picked: Vec<String> = Vec::new();
                    let mut stopped_early = false;
                    for (stream, claimable) in heads {
                        if picked.len() >= streams {
                            stopped_early = true;
                            break;
                        }
                        if claimable {
                            picked.push(stream.clone());
                        }
                        *cursor = stream;
                    }
                    let reached_end = reached_last && !stopped_early;
                    if reached_end {
                        // The next scan starts from the first stream again.
                        cursor.clear();
                    }
                    if picked.is_empty() {
                        if let Some(tx) = locked {
                            tx.commit().await.map_err(db)?;
                        }
                        return Ok($crate::outbox::backend::Claim {
                            rows: Vec::new(),
                            rest: Vec::new(),
                            reached_end,
                        });
                    }
                    let mut tx = match locked {
                        Some(tx) => tx,
                        None => claim_begin(pool, namespace).await?,
                    };
                    let (rows, used) = lease_each(
                        &mut tx, namespace, owner, lease, per_stream, &picked, first_rows,
                    )
                    .await?;
                    tx.commit().await.map_err(db)?;
                    let rest = picked.split_off(used);
                    Ok($crate::outbox::backend::Claim {
                        rows,
                        rest,
                        reached_end,
                    })
                })
            }

            async fn lease_streams(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                owner: &str,
                lease: std::time::Duration,
                per_stream: i64,
                streams: &[String],
                min_rows: usize,
            ) -> $crate::error::Result<(Vec<$crate::outbox::backend::Claimed>, usize)> {
                if streams.is_empty() {
                    return Ok((Vec::new(), 0));
                }
                retry_busy!(async {
                    let mut tx = claim_begin(pool, namespace).await?;
                    let leased = lease_each(
                        &mut tx, namespace, owner, lease, per_stream, streams, min_rows,
                    )
                    .await?;
                    tx.commit().await.map_err(db)?;
                    Ok(leased)
                })
            }

            async fn claim_stream(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
                lease: std::time::Duration,
                limit: i64,
                taken: &[i64],
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::Claimed>> {
                if taken.last().is_none_or(|&seq| seq <= 0) {
                    // A task that sent nothing has no lease to go on with.
                    return Ok(Vec::new());
                }
                retry_busy!(async {
                    let mut tx = continue_begin(pool, namespace).await?;
                    let rows =
                        lease_stream_rows(&mut tx, namespace, stream, owner, lease, limit, taken)
                            .await?;
                    tx.commit().await.map_err(db)?;
                    Ok(rows)
                })
            }

            async fn renew(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
                lease: std::time::Duration,
            ) -> $crate::error::Result<u64> {
                retry_busy!(async {
                    let done = sqlx::query($sql.renew)
                        .bind(namespace)
                        .bind(stream)
                        .bind(owner)
                        .bind($interval(lease))
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                })
            }

            async fn release(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
                after_seq: i64,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.release)
                        .bind(namespace)
                        .bind(stream)
                        .bind(owner)
                        .bind(after_seq)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn settle(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
            ) -> $crate::error::Result<bool> {
                retry_busy!(async {
                    let fenced: Option<(bool,)> = sqlx::query_as($sql.settle)
                        .bind(namespace)
                        .bind(stream)
                        .bind(owner)
                        .fetch_optional(pool)
                        .await
                        .map_err(db)?;
                    Ok(fenced.is_some_and(|(fenced,)| fenced))
                })
            }

            async fn drop_leases(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                owner: &str,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.drop_leases)
                        .bind(namespace)
                        .bind(owner)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn mark_sent_many(
                pool: &sqlx::Pool<Self>,
                sent: &[(i64, i64, i64)],
            ) -> $crate::error::Result<()> {
                // One statement for the whole batch: one round trip, whatever its size.
                record_sends(pool, sent).await
            }

            async fn mark_retry(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                error: &str,
                delay: std::time::Duration,
                outcome_unknown: bool,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.mark_retry)
                        .bind(seq)
                        .bind(error)
                        .bind($interval(delay))
                        .bind(outcome_unknown)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn mark_failed(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                error: &str,
                outcome_unknown: bool,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.mark_failed)
                        .bind(seq)
                        .bind(error)
                        .bind(outcome_unknown)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn clear_unknown(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                attempts: i64,
            ) -> $crate::error::Result<bool> {
                retry_busy!(async {
                    let done = sqlx::query($sql.clear_unknown)
                        .bind(seq)
                        .bind(attempts)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected() > 0)
                })
            }

            async fn status(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
            ) -> $crate::error::Result<$crate::outbox::backend::OutboxStatus> {
                retry_busy!(async {
                    let (pending, failed, verified, unverified, age, lost, retry_error): (
                        Option<i64>,
                        Option<i64>,
                        Option<i64>,
                        Option<i64>,
                        Option<f64>,
                        Option<i64>,
                        Option<String>,
                    ) = sqlx::query_as($sql.status)
                        .bind(namespace)
                        .fetch_one(pool)
                        .await
                        .map_err(db)?;
                    let count = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
                    Ok($crate::outbox::backend::OutboxStatus {
                        pending: count(pending),
                        failed: count(failed),
                        sent: count(verified) + count(unverified),
                        unverified: count(unverified),
                        lost: count(lost),
                        oldest_pending_age: age
                            .map(|secs| std::time::Duration::from_secs_f64(secs.max(0.0))),
                        retry_error,
                    })
                })
            }

            async fn row(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
            ) -> $crate::error::Result<Option<$crate::outbox::backend::OutboxRow>> {
                let row = sqlx::query($sql.row)
                    .bind(namespace)
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(db)?;
                row.map(|row| decode_row(&row)).transpose()
            }

            async fn failed(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::OutboxRow>> {
                let rows = sqlx::query($sql.failed)
                    .bind(namespace)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(db)?;
                rows.iter().map(decode_row).collect()
            }

            async fn retry(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
                drop_expected_version: bool,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query($sql.retry)
                    .bind(namespace)
                    .bind(id)
                    .bind(drop_expected_version)
                    .execute(pool)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected() > 0)
            }

            async fn discard_state(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
            ) -> $crate::error::Result<Option<$crate::outbox::backend::DiscardState>> {
                let mut conn = pool.acquire().await.map_err(db)?;
                read_discard_state(&mut conn, namespace, id).await
            }

            async fn discard(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
                seen: &$crate::outbox::backend::DiscardState,
            ) -> $crate::error::Result<$crate::outbox::backend::Discard> {
                use $crate::outbox::backend::Discard;
                // Under the claim lock and the stream's lease row (so no claim is half-way
                // through taking the row), refuse a row a sender holds: it may be on its way
                // to EventoDB, and discarding it would neither stop that send nor keep the
                // rows after it from overtaking it.
                let mut tx = claim_begin(pool, namespace).await?;
                sqlx::query($sql.discard_lock_lease)
                    .bind(namespace)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                let now = read_discard_state(&mut tx, namespace, id).await?;
                match now {
                    Some(state) if state.in_flight => return Ok(Discard::InFlight),
                    Some(state) if state == *seen => {}
                    Some(state) if !state.unsent() => return Ok(Discard::Gone),
                    Some(_) => return Ok(Discard::Moved),
                    None => return Ok(Discard::Gone),
                }
                let done = sqlx::query($sql.discard)
                    .bind(namespace)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(if done.rows_affected() > 0 {
                    Discard::Done
                } else {
                    Discard::Gone
                })
            }

            async fn purge(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                retention: std::time::Duration,
                batch: i64,
                require_verified: bool,
            ) -> $crate::error::Result<u64> {
                // Two statements, each tried again on its own: a refused second one does not
                // run the first again.
                let done = retry_busy!(async {
                    sqlx::query($sql.purge)
                        .bind(namespace)
                        .bind($interval(retention))
                        .bind(batch)
                        .bind(require_verified)
                        .execute(pool)
                        .await
                        .map_err(db)
                })?;
                // Leases of streams that went quiet: one row per stream ever sent otherwise.
                retry_busy!(async {
                    sqlx::query($sql.purge_leases)
                        .bind(namespace)
                        .bind(batch)
                        .execute(pool)
                        .await
                        .map_err(db)
                })?;
                Ok(done.rows_affected())
            }

            async fn unverified(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                older_than: std::time::Duration,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::Unverified>> {
                retry_busy!(async {
                    let rows: Vec<$crate::outbox::backend::SentRow> =
                        sqlx::query_as($sql.unverified)
                            .bind(namespace)
                            .bind($interval(older_than))
                            .bind(limit)
                            .fetch_all(pool)
                            .await
                            .map_err(db)?;
                    Ok(rows.into_iter().map($crate::outbox::backend::Unverified::from).collect())
                })
            }

            async fn newest_verified(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::Unverified>> {
                retry_busy!(async {
                    let rows: Vec<$crate::outbox::backend::SentRow> =
                        sqlx::query_as($sql.newest_verified)
                            .bind(namespace)
                            .bind(limit)
                            .fetch_all(pool)
                            .await
                            .map_err(db)?;
                    Ok(rows.into_iter().map($crate::outbox::backend::Unverified::from).collect())
                })
            }

            async fn unverify_many(
                pool: &sqlx::Pool<Self>,
                seqs: &[i64],
            ) -> $crate::error::Result<u64> {
                retry_busy!(async {
                    let done = sqlx::query($sql.unverify_many)
                        .bind(sqlx::types::Json(seqs))
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                })
            }

            async fn mark_verified_many(
                pool: &sqlx::Pool<Self>,
                rows: &[(i64, i64, i64)],
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.mark_verified_many)
                        .bind(sqlx::types::Json(rows))
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn requeue_lost(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                requeued: i64,
                error: &str,
            ) -> $crate::error::Result<bool> {
                retry_busy!(async {
                    let done = sqlx::query($sql.requeue_lost)
                        .bind(seq)
                        .bind(error)
                        .bind(requeued)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected() > 0)
                })
            }

            async fn next_due(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
            ) -> $crate::error::Result<Option<std::time::Duration>> {
                retry_busy!(async {
                    let (secs,): (Option<f64>,) = sqlx::query_as($sql.next_due)
                        .bind(namespace)
                        .fetch_one(pool)
                        .await
                        .map_err(db)?;
                    Ok(secs.map(|secs| std::time::Duration::from_secs_f64(secs.max(0.0))))
                })
            }
        }

        /// Leases the sendable head rows of `streams`, in order, inside the caller's claim
        /// transaction (see `lease_stream_rows`), until it holds `min_rows` rows (at least one
        /// stream). Returns the rows and how many streams it went through.
        async fn lease_each(
            tx: &mut sqlx::Transaction<'static, $db>,
            namespace: &str,
            owner: &str,
            lease: std::time::Duration,
            per_stream: i64,
            streams: &[String],
            min_rows: usize,
        ) -> $crate::error::Result<(Vec<$crate::outbox::backend::Claimed>, usize)> {
            let mut rows = Vec::new();
            let mut used = 0;
            for stream in streams {
                rows.extend(
                    lease_stream_rows(tx, namespace, stream, owner, lease, per_stream, &[]).await?,
                );
                used += 1;
                if rows.len() >= min_rows {
                    break;
                }
            }
            Ok((rows, used))
        }

        /// Leases up to `limit` sendable rows of `stream` inside the caller's claim
        /// transaction: for the main claim (`taken` empty) from the stream's first unsent row;
        /// for a task going on with its stream, after the last of its `taken` rows, and none
        /// while an unsent row below that one is not among them (see
        /// `Dialect::claim_stream`). Claims of one stream are serialized: by SQLite's write
        /// lock, and on PostgreSQL by the lease row (read `FOR UPDATE` first; a stream with no
        /// lease row yet is only ever claimed under the advisory claim lock). One lease row
        /// per stream, not a write per row: see migration `outbox_stream_leases`.
        async fn lease_stream_rows(
            tx: &mut sqlx::Transaction<'static, $db>,
            namespace: &str,
            stream: &str,
            owner: &str,
            lease: std::time::Duration,
            limit: i64,
            taken: &[i64],
        ) -> $crate::error::Result<Vec<$crate::outbox::backend::Claimed>> {
            use sqlx::Row as _;
            let sent_seq = taken.last().copied().unwrap_or(0);
            // (owner, live, from_seq, through_seq, fencing); locked on PostgreSQL against a
            // concurrent renewal.
            let current: Option<(String, bool, i64, i64, bool)> = sqlx::query_as($sql.lease_read)
                .bind(namespace)
                .bind(stream)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db)?;
            match current {
                // The caller's own lease is gone (purged after it ran out): the stream goes
                // back to the main claim, which takes the claim lock before it leases anew.
                None if sent_seq > 0 => return Ok(Vec::new()),
                Some((holder, ..)) if sent_seq > 0 && holder != owner => {
                    // The caller's own lease passed to another task.
                    return Ok(Vec::new());
                }
                // Another task's lease still covers pending rows (it then reaches the head: a
                // lease whose rows are all recorded, or that lies below the head, fences
                // nothing).
                Some((holder, live, from, through, true)) if holder != owner => {
                    if live {
                        return Ok(Vec::new());
                    }
                    // It ran out: that task may have sent these rows without recording it,
                    // so each is looked up before it is sent again (marked before they are
                    // read, so the rows below carry the mark).
                    sqlx::query($sql.mark_unknown_between)
                        .bind(namespace)
                        .bind(stream)
                        .bind(from)
                        .bind(through)
                        .execute(&mut **tx)
                        .await
                        .map_err(db)?;
                }
                _ => {}
            }
            if sent_seq > 0 {
                // Going on past such a row would send the rows after it first (rows whose
                // transactions may have begun after its commit): it goes first.
                let taken = serde_json::to_string(taken).map_err(|error| {
                    $crate::error::Error::Internal(format!("the taken rows as JSON: {error}"))
                })?;
                let skipped: bool = sqlx::query_scalar($sql.unsent_below)
                    .bind(namespace)
                    .bind(stream)
                    .bind(sent_seq)
                    .bind(taken)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(db)?;
                if skipped {
                    return Ok(Vec::new());
                }
            }
            // One row more than it takes, to tell the stream task whether to claim on: a
            // stream task whose batch was full claimed again as a rule, and at the end of a
            // stream that claim found nothing. On PostgreSQL each such claim locks the lease
            // row and commits synchronously. In the outbox bench (100 streams of 200 rows,
            // batches of 200) every stream ended that way, 32 at once, and those claims took
            // the pool's connections just when the main claim needed one to refill the
            // slots: sends stopped for 30 to 90 ms at each wave of streams.
            let mut rows = sqlx::query($sql.stream_rows)
                .bind(namespace)
                .bind(stream)
                .bind(sent_seq)
                .bind(limit.saturating_add(1))
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?;
            let more_after = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            if more_after {
                rows.pop();
            }
            let mut taken = Vec::with_capacity(rows.len());
            for row in &rows {
                // The rows before the first one that holds the stream back (parked, or
                // waiting for its retry).
                if row.try_get::<bool, _>("held").map_err(db)? {
                    break;
                }
                taken.push(row);
            }
            // A held row stops the stream task anyway.
            let more_after = more_after && taken.len() == rows.len();
            let (Some(first), Some(last)) = (taken.first(), taken.last()) else {
                return Ok(Vec::new());
            };
            let from_seq: i64 = first.try_get("seq").map_err(db)?;
            let through_seq: i64 = last.try_get("seq").map_err(db)?;
            // A continuation keeps its lease's start: its earlier rows may not be recorded yet.
            sqlx::query($sql.lease_upsert)
                .bind(namespace)
                .bind(stream)
                .bind(owner)
                .bind($interval(lease))
                .bind(from_seq)
                .bind(through_seq)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            let mut claimed = decode_claimed(taken)?;
            if let Some(last) = claimed.last_mut() {
                last.more_after = more_after;
            }
            Ok(claimed)
        }

        async fn read_discard_state(
            conn: &mut $conn,
            namespace: &str,
            id: &str,
        ) -> $crate::error::Result<Option<$crate::outbox::backend::DiscardState>> {
            use sqlx::Row as _;
            let Some(row) = sqlx::query($sql.discard_state)
                .bind(namespace)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
            else {
                return Ok(None);
            };
            let decode = || -> Result<$crate::outbox::backend::DiscardState, sqlx::Error> {
                let owner: Option<String> = row.try_get("lease_owner")?;
                let lease = match owner {
                    Some(owner) => Some((
                        owner,
                        row.try_get("lease_until")?,
                        row.try_get("from_seq")?,
                        row.try_get("through_seq")?,
                    )),
                    None => None,
                };
                Ok($crate::outbox::backend::DiscardState {
                    stream: row.try_get("stream")?,
                    status: row.try_get("status")?,
                    attempts: row.try_get::<i64, _>("attempts")?,
                    outcome_unknown: row.try_get("outcome_unknown")?,
                    expected_version: row.try_get("expected_version")?,
                    lease,
                    in_flight: row.try_get("in_flight")?,
                    lapsed: row.try_get("lapsed")?,
                })
            };
            decode().map(Some).map_err(db)
        }

        fn decode_claimed(
            rows: Vec<&<$db as sqlx::Database>::Row>,
        ) -> $crate::error::Result<Vec<$crate::outbox::backend::Claimed>> {
            use sqlx::Row as _;
            // `stream_rows` reads them in `seq` order.
            rows.into_iter()
                .map(|row| {
                    let data = row.try_get::<sqlx::types::Json<serde_json::Value>, _>("data")?.0;
                    let metadata = row
                        .try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>("metadata")?
                        .map(|json| json.0);
                    let mut message = $crate::client::NewMessage::new(
                        row.try_get::<String, _>("message_type")?,
                        data,
                    );
                    if let Some(metadata) = metadata {
                        message = message.metadata(metadata);
                    }
                    Ok($crate::outbox::backend::Claimed {
                        seq: row.try_get("seq")?,
                        id: row.try_get("id")?,
                        stream: row.try_get("stream")?,
                        message,
                        expected_version: row.try_get("expected_version")?,
                        attempts: row.try_get::<i64, _>("attempts")?,
                        outcome_unknown: row.try_get("outcome_unknown")?,
                        more_after: false,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(db)
        }

        fn decode_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> $crate::error::Result<$crate::outbox::backend::OutboxRow> {
            use sqlx::Row as _;
            let decode = || -> Result<$crate::outbox::backend::OutboxRow, sqlx::Error> {
                let id: String = row.try_get("id")?;
                Ok($crate::outbox::backend::OutboxRow {
                    id: uuid::Uuid::parse_str(&id)
                        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
                    stream: row.try_get("stream")?,
                    message_type: row.try_get("message_type")?,
                    status: $crate::outbox::backend::RowStatus::parse(
                        &row.try_get::<String, _>("status")?,
                    ),
                    attempts: row.try_get::<i64, _>("attempts")?,
                    last_error: row.try_get("last_error")?,
                    outcome_unknown: row.try_get("outcome_unknown")?,
                    position: row.try_get("position")?,
                    global_position: row.try_get("global_position")?,
                    expected_version: row.try_get("expected_version")?,
                    idempotency_key: row.try_get("idempotency_key")?,
                })
            };
            decode().map_err(db)
        }

        /// The versions applied so far, in order (the version table is made if missing), inside
        /// the migration transaction.
        async fn applied_versions(
            tx: &mut sqlx::Transaction<'static, $db>,
        ) -> $crate::error::Result<Vec<i64>> {
            exec_script(&mut **tx, $sql.create_version_table).await.map_err(db)?;
            let applied: Vec<(i64,)> = sqlx::query_as($sql.applied_versions)
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?;
            Ok(applied.into_iter().map(|(version,)| version).collect())
        }

        /// Runs one migration's `up` or `down` script; its error names the version.
        async fn run_migration_script(
            tx: &mut sqlx::Transaction<'static, $db>,
            migration: &$crate::outbox::backend::Migration,
            script: &'static str,
        ) -> $crate::error::Result<()> {
            exec_script(&mut **tx, script).await.map_err(|source| {
                $crate::error::Error::Migration {
                    version: migration.version,
                    message: source.to_string(),
                }
            })
        }

        /// Runs a multi-statement script.
        fn exec_script<'c>(
            conn: &'c mut $conn,
            sql: &'static str,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>,
        > {
            // A query without arguments runs as a simple query: several statements at once.
            Box::pin(async move {
                sqlx::Executor::execute(conn, sql).await?;
                Ok(())
            })
        }

        fn db(source: sqlx::Error) -> $crate::error::Error {
            $crate::error::Error::Database { source }
        }
    };
}

pub(crate) use backend_impl;
