//! Writer tasks: application transactions that lock their streams' aggregate rows, write
//! events through the outbox (expectedVersion chains on half of the streams), and sometimes
//! roll back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventodb_kit::Kit;
use eventodb_kit::outbox::RawMessage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::Postgres;
use tokio::time::Instant;
use uuid::Uuid;

/// The category every soak stream belongs to.
pub(crate) const CATEGORY: &str = "soak";

/// The name of stream `k`.
pub(crate) fn stream(k: usize) -> String {
    format!("{CATEGORY}-{k}")
}

/// Whether stream `k` is written with an expectedVersion chain.
fn chained(k: usize) -> bool {
    k % 2 == 0
}

/// What the writers did, shared with the progress reports.
#[derive(Default)]
pub(crate) struct Written {
    /// Events committed.
    pub(crate) committed: AtomicU64,
    /// Transactions rolled back after writing to the outbox.
    pub(crate) rolled_back_txs: AtomicU64,
    /// Ids of events written in rolled-back transactions: never to be seen anywhere.
    pub(crate) rolled_back: std::sync::Mutex<Vec<Uuid>>,
    /// Ids of committed events.
    pub(crate) committed_ids: std::sync::Mutex<Vec<Uuid>>,
}

/// Creates the aggregate rows of `streams` streams (version -1: no stream yet).
pub(crate) async fn create_streams(pool: &sqlx::PgPool, streams: usize) {
    sqlx::query(
        "INSERT INTO soak_streams (stream, version)
         SELECT $1 || '-' || k, -1 FROM generate_series(0, $2 - 1) AS k",
    )
    .bind(CATEGORY)
    .bind(i64::try_from(streams).expect("streams"))
    .execute(pool)
    .await
    .expect("create streams");
}

/// What one writer does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// The soak's seed (each writer draws from its own stream of it).
    pub(crate) seed: u64,
    /// Events this writer commits.
    pub(crate) events: u64,
    /// Streams it spreads them over.
    pub(crate) streams: usize,
    /// Most events in one business transaction (each has 1 to this many).
    pub(crate) per_transaction: u64,
    /// Writers in all.
    pub(crate) writers: usize,
    /// Events/s of all writers together, at most.
    pub(crate) rate: f64,
}

/// The streams of one transaction's `size` events: 1 to 3 streams (a business
/// transaction touches a few aggregates), each event on one of them. Mostly streams of the
/// writer's own share (`k % writers == writer`), one transaction in ten anywhere: writers
/// then still meet on a stream and its lock orders them, but rarely enough that 8 writers
/// do not queue behind each other's locks (with every stream drawn anywhere, waiting for
/// those locks was the largest share of PostgreSQL's time).
fn targets(
    rng: &mut StdRng,
    writer: usize,
    writers: usize,
    streams: usize,
    size: u64,
) -> Vec<usize> {
    let own = writer < streams && !rng.random_bool(0.1);
    let draw = |rng: &mut StdRng| {
        if own {
            let share = (streams - writer).div_ceil(writers);
            writer + writers * rng.random_range(0..share)
        } else {
            rng.random_range(0..streams)
        }
    };
    let touched: Vec<usize> = (0..rng.random_range(1..=3usize))
        .map(|_| draw(rng))
        .collect();
    (0..size)
        .map(|_| touched[rng.random_range(0..touched.len())])
        .collect()
}

/// One writer: commits its plan's events, several per business transaction.
pub(crate) async fn run(kit: Kit<Postgres>, writer: usize, plan: Plan, written: Arc<Written>) {
    let Plan {
        seed,
        events,
        streams,
        per_transaction,
        writers,
        rate,
    } = plan;
    let mut rng = StdRng::seed_from_u64(seed ^ (0x5eed_0000 + writer as u64));
    let started = Instant::now();
    let mut mine = 0u64;
    let mut n = 0u64;
    while mine < events {
        let size = rng.random_range(1..=per_transaction).min(events - mine);
        let targets = targets(&mut rng, writer, writers, streams, size);
        let rollback = rng.random_bool(0.04);
        let mut tx = kit.pool().begin().await.expect("begin");
        // Lock every stream of the transaction in one order (no deadlocks), before any
        // outbox row exists, so rows of one stream get their seq in commit order.
        let locked: BTreeSet<usize> = targets.iter().copied().collect();
        let mut versions = std::collections::HashMap::new();
        for &k in &locked {
            let (version,): (i64,) =
                sqlx::query_as("SELECT version FROM soak_streams WHERE stream = $1 FOR UPDATE")
                    .bind(stream(k))
                    .fetch_one(&mut *tx)
                    .await
                    .expect("lock stream");
            versions.insert(k, version);
        }
        let mut ids = Vec::with_capacity(targets.len());
        for &k in &targets {
            n += 1;
            let version = versions.get_mut(&k).expect("locked");
            let message = RawMessage::new("Ticked", json!({ "writer": writer, "n": n }));
            let mut write = kit.outbox().write(&mut *tx, stream(k), message);
            if chained(k) {
                write = write.expected_version(*version);
            }
            let id = write.await.expect("outbox write").id;
            *version += 1;
            ids.push(id);
        }
        for (&k, &version) in &versions {
            sqlx::query("UPDATE soak_streams SET version = $2 WHERE stream = $1")
                .bind(stream(k))
                .bind(version)
                .execute(&mut *tx)
                .await
                .expect("update stream");
        }
        if rollback {
            tx.rollback().await.expect("rollback");
            written.rolled_back_txs.fetch_add(1, Ordering::Relaxed);
            written.rolled_back.lock().unwrap().extend(ids);
            continue;
        }
        tx.commit().await.expect("commit");
        mine += size;
        written.committed_ids.lock().unwrap().extend(ids);
        let total = written.committed.fetch_add(size, Ordering::Relaxed) + size;
        // Spread the writes over the fault window.
        let due = Duration::from_secs_f64(total as f64 / rate);
        let elapsed = started.elapsed();
        if due > elapsed {
            tokio::time::sleep((due - elapsed).min(Duration::from_millis(500))).await;
        }
    }
}
