//! `cargo bench --bench outbox`: how fast the outbox drains to the embedded server, against
//! the raw client's best concurrent write rate to the same server in the same run (the raw
//! client writes the same events, at the number in flight that was best at the start, just
//! before each of five drains; the median round's ratio is reported) and against the least
//! any outbox must do, in five rounds of its own (read each row back from the database and
//! send it, recording nothing: the ratio no design could beat on this machine); the
//! latency from commit to "sent" with the default 1 s poll interval (on SQLite also while
//! the application commits other transactions as fast as it can); and the sender's peak
//! memory while it sends 20,000 events with 20,000 and with 200,000 rows pending (measured in
//! a child process, which holds only the database and the sender). SQLite always; PostgreSQL when `DATABASE_URL` is set.
//! Ends with one JSON line.
//!
//! `OUTBOX_BENCH_QUICK=1` divides the event counts by 10.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventodb_kit::client::{NewMessage, WriteOptions};
use eventodb_kit::outbox::{OutboxMessage, RawMessage, SenderOptions};
use eventodb_kit::{Backend, Client, Kit};
use eventodb_kit_testkit::TestServer;
use serde_json::{Value, json};
use sqlx::Pool;
use support::{BoxError, drop_schema, pg_pool, sqlite_pool};

fn scale(n: usize) -> usize {
    if std::env::var_os("OUTBOX_BENCH_QUICK").is_some() {
        n / 10
    } else {
        n
    }
}

/// The data of the `n`th event: the raw client and the outbox send the same events.
fn event_data(n: usize) -> Value {
    json!({ "n": n, "payload": "x".repeat(64) })
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(at) = args.iter().position(|a| a == "--memory-child") {
        return runtime.block_on(memory_child(&args[at + 1..]));
    }
    runtime.block_on(parent())
}

async fn parent() -> Result<(), BoxError> {
    let server = TestServer::start().await?;
    let raw = raw_best(&server, scale(20_000), 100).await?;
    println!(
        "raw client: best {:.0} events/s (concurrency {})",
        raw.rate, raw.concurrency
    );
    let mut results = serde_json::Map::new();
    results.insert("raw_client_events_per_sec".into(), json!(raw.rate.round()));
    results.insert("raw_client_best_concurrency".into(), json!(raw.concurrency));
    results.insert(
        "raw_client_cpu_us_per_event".into(),
        json!(raw.cpu_us_per_event.round()),
    );

    let dir = tempfile::tempdir()?;
    let sqlite = sqlite_pool(&dir.path().join("bench.db")).await?;
    eventodb_kit::migrate(&sqlite).await?;
    let sqlite_results = run_db(
        "sqlite",
        &sqlite,
        &Backlog::Sqlite(sqlite.clone()),
        &server,
        raw,
    )
    .await?;
    let contended = contended_latency(&sqlite, &server).await?;
    let mem = memory(&server, "sqlite").await?;
    results.insert(
        "sqlite".into(),
        merge(merge(sqlite_results, contended), mem),
    );

    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let (pg, schema) = pg_pool(&url, "outbox_bench").await?;
            eventodb_kit::migrate(&pg).await?;
            let pg_results = run_db(
                "postgres",
                &pg,
                &Backlog::Postgres(pg.clone()),
                &server,
                raw,
            )
            .await?;
            let mem = memory(&server, "postgres").await?;
            results.insert("postgres".into(), merge(pg_results, mem));
            drop_schema(&url, &schema).await;
        }
        Err(_) => {
            println!("postgres: skipped (DATABASE_URL is not set)");
            results.insert("postgres".into(), Value::Null);
        }
    }
    println!("{}", Value::Object(results));
    Ok(())
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The raw client's best run: events/s, tasks in flight, CPU of this process per event
/// (client and embedded server).
#[derive(Clone, Copy)]
struct Raw {
    rate: f64,
    concurrency: usize,
    cpu_us_per_event: f64,
}

/// The raw client's best rate writing `total` events over `streams` streams.
async fn raw_best(server: &TestServer, total: usize, streams: usize) -> Result<Raw, BoxError> {
    let client = Kit::builder(server.url())
        .token(server.default_token())
        .database(sqlx::SqlitePool::connect_lazy("sqlite::memory:")?)
        .build()?
        .client()
        .clone();
    let mut best = Raw {
        rate: 0.0,
        concurrency: 0,
        cpu_us_per_event: 0.0,
    };
    for concurrency in [8usize, 32, 128] {
        let run = raw_run(
            &client,
            concurrency,
            total,
            streams,
            &format!("raw{concurrency}"),
        )
        .await?;
        println!(
            "raw client: concurrency {concurrency}: {:.0} events/s, {:.0} µs CPU per event",
            run.rate, run.cpu_us_per_event
        );
        if run.rate > best.rate {
            best = run;
        }
    }
    Ok(best)
}

/// The raw client writing `total` events over `streams` streams named `{prefix}-N`, with
/// `concurrency` writes in flight.
async fn raw_run(
    client: &Client,
    concurrency: usize,
    total: usize,
    streams: usize,
    prefix: &str,
) -> Result<Raw, BoxError> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let next = Arc::clone(&next);
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    break;
                }
                client
                    .stream_write(
                        &format!("{prefix}-{}", n % streams),
                        &NewMessage::new("Counted", event_data(n)),
                        &WriteOptions::new().id(uuid::Uuid::now_v7()),
                    )
                    .await
                    .expect("raw write");
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(Raw {
        rate: total as f64 / started.elapsed().as_secs_f64(),
        concurrency,
        cpu_us_per_event: (cpu_seconds() - cpu) / total as f64 * 1e6,
    })
}

/// Rounds of "raw client, then outbox drain" per database: the ratio is taken within each
/// round (both measured within seconds of each other) and the median round is reported, so
/// that a machine whose speed drifts during the run does not skew it. Five, not three: on a
/// noisy day the rounds of one run ranged from 0.50 to 0.83, and the median of three moved
/// with a single round.
const ROUNDS: usize = 5;

/// The median of `values` (sorted here).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn run_db<DB: Backend>(
    name: &str,
    pool: &Pool<DB>,
    backlog: &Backlog,
    server: &TestServer,
    raw: Raw,
) -> Result<Value, BoxError> {
    let kit = Kit::builder(server.url())
        .token(server.default_token())
        .database(pool.clone())
        .build()?;
    let defaults = SenderOptions::default();
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        let paired = raw_run(
            kit.client(),
            raw.concurrency,
            scale(20_000),
            100,
            &format!("{name}raw{round}"),
        )
        .await?;
        let drained = drain(
            &kit,
            &format!("{name}many{round}"),
            scale(20_000),
            100,
            &defaults,
        )
        .await?;
        println!(
            "{name}: round {round}: raw client {:.0} events/s, then the outbox, default sender, 20k over 100 streams: {:.0} events/s (ratio {:.2})",
            paired.rate,
            drained.rate,
            drained.rate / paired.rate
        );
        rounds.push((paired, drained));
    }
    // CPU per event of the raw client against that of the drain (both this process, with
    // PostgreSQL's processes added for the drain): the ratio the drain could reach if both
    // kept every core busy.
    let cpu_ratio = median(
        &mut rounds
            .iter()
            .map(|(paired, drained)| {
                paired.cpu_us_per_event / (drained.cpu_us_per_event + drained.postgres_us_per_event)
            })
            .collect::<Vec<_>>(),
    );
    // Every round's ratio, in round order: the spread says how far to trust the median.
    let round_ratios: Vec<f64> = rounds
        .iter()
        .map(|(paired, drained)| ((drained.rate / paired.rate) * 100.0).round() / 100.0)
        .collect();
    let paired_ratio = median(
        &mut rounds
            .iter()
            .map(|(paired, drained)| drained.rate / paired.rate)
            .collect::<Vec<_>>(),
    );
    let paired_raw = median(
        &mut rounds
            .iter()
            .map(|(paired, _)| paired.rate)
            .collect::<Vec<_>>(),
    );
    rounds.sort_by(|a, b| a.1.rate.total_cmp(&b.1.rate));
    let many = rounds.swap_remove(ROUNDS / 2).1;
    println!(
        "{name}: 20k over 100 streams, default sender: median {:.0} events/s; median ratio {:.2} to the raw client in the same round; {:.2} to the raw client's best at the start; CPU per event, raw client to drain: {:.2}",
        many.rate,
        paired_ratio,
        many.rate / raw.rate,
        cpu_ratio
    );
    // The same drain with as many sends in flight as the raw client's best run had: the
    // embedded server shares the CPU, so the best number in flight depends on the machine.
    let matched_options = SenderOptions::default().concurrency(raw.concurrency);
    let matched = drain(
        &kit,
        &format!("{name}matched"),
        scale(20_000),
        100,
        &matched_options,
    )
    .await?;
    println!(
        "{name}: 20k over 100 streams, concurrency {}: {:.0} events/s (ratio {:.2} to raw)",
        raw.concurrency,
        matched.rate,
        matched.rate / paired_raw
    );
    let one = drain(&kit, &format!("{name}one"), scale(5_000), 1, &defaults).await?;
    println!("{name}: 5k on one stream: {:.0} events/s", one.rate);
    let (p50, p99) = latency(&kit, &format!("{name}lat"), 300).await?;
    println!("{name}: commit to sent: p50 {p50:.2} ms, p99 {p99:.2} ms (poll interval 1 s)");
    // Last: the rows it reads and deletes leave dead index entries behind, which slowed the
    // latency measurement's claims when it ran first (PostgreSQL without autovacuum: p50
    // 9 to 12 ms instead of 3).
    let floor = read_and_send_rounds(&kit, backlog, name, raw.concurrency).await?;
    let ratio = |rate: f64| (rate / raw.rate * 100.0).round() / 100.0;
    let mut figures = json!({
        "many_streams_events_per_sec": many.rate.round(),
        "many_streams_ratio_to_raw": (paired_ratio * 100.0).round() / 100.0,
        "many_streams_ratio_to_raw_rounds": round_ratios,
        "many_streams_ratio_to_raw_best_at_start": ratio(many.rate),
        "many_streams_read_and_send_ratio_to_raw": floor.ratio,
        "many_streams_read_and_send_ratio_to_raw_rounds": floor.rounds,
        "many_streams_read_and_send_database_cpu_us_per_event": floor.database_cpu_us_per_event,
        "many_streams_read_and_send_cpu_us_per_event": floor.cpu_us_per_event,
        "many_streams_paired_raw_events_per_sec": paired_raw.round(),
        "many_streams_cpu_ratio_to_raw": (cpu_ratio * 100.0).round() / 100.0,
        "many_streams_cpu_us_per_event": many.cpu_us_per_event.round(),
        "many_streams_cores_busy": (many.cores_used * 100.0).round() / 100.0,
        "many_streams_matched_concurrency_events_per_sec": matched.rate.round(),
        "many_streams_matched_concurrency_ratio_to_raw": ((matched.rate / paired_raw) * 100.0).round() / 100.0,
        "one_stream_events_per_sec": one.rate.round(),
        "commit_to_sent_p50_ms": (p50 * 100.0).round() / 100.0,
        "commit_to_sent_p99_ms": (p99 * 100.0).round() / 100.0,
    });
    if name == "sqlite" {
        figures["many_streams_sqlite_threads_cpu_us_per_event"] =
            json!(many.sqlite_us_per_event.round());
    } else {
        figures["many_streams_postgres_processes_cpu_us_per_event"] =
            json!(many.postgres_us_per_event.round());
    }
    Ok(figures)
}

/// A timed drain: events/s and where the CPU went.
struct Drained {
    rate: f64,
    /// CPU (user + system) of this whole process per event: client, embedded server, sender,
    /// and SQLite's threads (PostgreSQL's own processes are not counted).
    cpu_us_per_event: f64,
    /// Of that, SQLite's connection threads.
    sqlite_us_per_event: f64,
    /// CPU of the PostgreSQL server's processes per event (not part of `cpu_us_per_event`).
    postgres_us_per_event: f64,
    /// Cores kept busy on average (the machine has `available_parallelism`).
    cores_used: f64,
}

/// Fills the outbox with `total` events over `streams` streams (sender stopped), then times
/// a sender with `options` draining them.
async fn drain<DB: Backend>(
    kit: &Kit<DB>,
    prefix: &str,
    total: usize,
    streams: usize,
    options: &SenderOptions,
) -> Result<Drained, BoxError> {
    let last_per_stream = fill(kit, prefix, total, streams).await?;
    let started = Instant::now();
    let cpu = cpu_seconds();
    let sqlite = sqlite_thread_seconds();
    let postgres = postgres_seconds();
    let sender = kit.outbox().spawn_sender(options.clone()).await?;
    // Each stream is sent in order, so it is done when its last row is: waiting on those rows
    // (point lookups when sends are recorded) costs the database far less than counting the
    // outbox again and again while it drains.
    for id in last_per_stream {
        kit.outbox().wait_sent(id, Duration::from_secs(600)).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let sqlite = sqlite_thread_seconds() - sqlite;
    let postgres = postgres_seconds() - postgres;
    sender.shutdown().await?;
    let drained = Drained {
        rate: total as f64 / elapsed,
        cpu_us_per_event: cpu / total as f64 * 1e6,
        sqlite_us_per_event: sqlite / total as f64 * 1e6,
        postgres_us_per_event: if prefix.starts_with("postgres") {
            postgres / total as f64 * 1e6
        } else {
            0.0
        },
        cores_used: cpu / elapsed,
    };
    let sqlite_part = if drained.sqlite_us_per_event > 0.0 {
        format!(" (SQLite threads {:.0})", drained.sqlite_us_per_event)
    } else if drained.postgres_us_per_event > 0.0 {
        format!(
            " (and PostgreSQL's processes {:.0} more)",
            drained.postgres_us_per_event
        )
    } else {
        String::new()
    };
    println!(
        "  {prefix}: {total} events in {elapsed:.2} s; CPU of this process {:.0} µs per event{sqlite_part}, {:.2} cores busy",
        drained.cpu_us_per_event, drained.cores_used
    );
    Ok(drained)
}

/// What [`read_and_send`] reached in [`ROUNDS`] rounds, each against the raw client run just
/// before it.
struct Floor {
    /// The median round's ratio to the raw client.
    ratio: f64,
    /// Every round's ratio, in round order.
    rounds: Vec<f64>,
    /// Median CPU of the database (SQLite's threads or PostgreSQL's processes) per event.
    database_cpu_us_per_event: f64,
    /// Median CPU of this process per event (SQLite's threads included), against the drain's
    /// `many_streams_cpu_us_per_event`: what the sender's own work adds in this process.
    cpu_us_per_event: f64,
}

/// Rounds of "raw client, then [`read_and_send`]": the most any outbox design could reach
/// here, since every one must at least read the backlog back from the database.
async fn read_and_send_rounds<DB: Backend>(
    kit: &Kit<DB>,
    backlog: &Backlog,
    name: &str,
    concurrency: usize,
) -> Result<Floor, BoxError> {
    let mut ratios = Vec::new();
    let mut database_cpu = Vec::new();
    let mut process_cpu = Vec::new();
    for round in 1..=ROUNDS {
        let paired = raw_run(
            kit.client(),
            concurrency,
            scale(20_000),
            100,
            &format!("{name}floorraw{round}"),
        )
        .await?;
        let floor = read_and_send(
            kit,
            backlog,
            &format!("{name}floor{round}"),
            scale(20_000),
            100,
            concurrency,
        )
        .await?;
        println!(
            "{name}: round {round}: raw client {:.0} events/s, then reading the rows back and sending them, nothing recorded: {:.0} events/s (ratio {:.2})",
            paired.rate,
            floor.rate,
            floor.rate / paired.rate
        );
        ratios.push(floor.rate / paired.rate);
        database_cpu.push(floor.sqlite_us_per_event + floor.postgres_us_per_event);
        process_cpu.push(floor.cpu_us_per_event);
    }
    let rounds = ratios
        .iter()
        .map(|ratio| (ratio * 100.0).round() / 100.0)
        .collect();
    Ok(Floor {
        ratio: (median(&mut ratios) * 100.0).round() / 100.0,
        rounds,
        database_cpu_us_per_event: median(&mut database_cpu).round(),
        cpu_us_per_event: median(&mut process_cpu).round(),
    })
}

/// A database's outbox table, read as directly as it can be: for [`read_and_send`].
#[derive(Clone)]
enum Backlog {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A row as [`read_and_send`] sends it: (seq, id, type, data).
type BacklogRow = (i64, String, String, sqlx::types::Json<Value>);

impl Backlog {
    /// Deletes the outbox rows of the streams named `{prefix}-N`.
    async fn forget(&self, namespace: &str, prefix: &str) -> Result<(), BoxError> {
        let pattern = format!("{prefix}-%");
        match self {
            Backlog::Sqlite(pool) => {
                sqlx::query(
                    "DELETE FROM eventodb_kit_outbox WHERE namespace = ?1 AND stream LIKE ?2",
                )
                .bind(namespace)
                .bind(pattern)
                .execute(pool)
                .await?;
            }
            Backlog::Postgres(pool) => {
                sqlx::query(
                    "DELETE FROM eventodb_kit_outbox WHERE namespace = $1 AND stream LIKE $2",
                )
                .bind(namespace)
                .bind(pattern)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Up to `limit` rows of `stream` after `after_seq`, in order, through the index the
    /// sender's claim reads them by.
    async fn rows(
        &self,
        namespace: &str,
        stream: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<BacklogRow>, BoxError> {
        Ok(match self {
            Backlog::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT seq, id, message_type, data FROM eventodb_kit_outbox
                     WHERE namespace = ?1 AND stream = ?2 AND status IN ('pending', 'failed')
                       AND seq > ?3
                     ORDER BY seq LIMIT ?4",
                )
                .bind(namespace)
                .bind(stream)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Backlog::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT seq, id::text, message_type, data FROM eventodb_kit_outbox
                     WHERE namespace = $1 AND stream = $2 AND status IN ('pending', 'failed')
                       AND seq > $3
                     ORDER BY seq LIMIT $4",
                )
                .bind(namespace)
                .bind(stream)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        })
    }
}

/// The least any outbox has to do to send a backlog: fills the outbox as [`drain`] does,
/// then reads each row back once (a stream's rows in order, 200 at a time, `concurrency`
/// streams at once) and writes it with the raw client, recording nothing. Not an outbox (a
/// crash would send everything again): a bound on what one could reach on this machine, the
/// database sharing its cores with the client and the embedded server.
async fn read_and_send<DB: Backend>(
    kit: &Kit<DB>,
    backlog: &Backlog,
    prefix: &str,
    total: usize,
    streams: usize,
    concurrency: usize,
) -> Result<Drained, BoxError> {
    fill(kit, prefix, total, streams).await?;
    let queue: std::collections::VecDeque<(String, i64)> =
        (0..streams).map(|n| (format!("{prefix}-{n}"), 0)).collect();
    let queue = Arc::new(std::sync::Mutex::new(queue));
    let started = Instant::now();
    let cpu = cpu_seconds();
    let sqlite = sqlite_thread_seconds();
    let postgres = postgres_seconds();
    let namespace = kit.namespace().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let queue = Arc::clone(&queue);
        let client = kit.client().clone();
        let backlog = backlog.clone();
        let namespace = namespace.clone();
        tasks.spawn(async move {
            loop {
                // A stream goes back to the end of the queue after each batch, as a sender
                // moves on to other streams between one stream's batches.
                let next = queue.lock().map_err(|_| "queue poisoned")?.pop_front();
                let Some((stream, after)) = next else {
                    return Ok::<(), BoxError>(());
                };
                let rows = backlog.rows(&namespace, &stream, after, 200).await?;
                let Some(last) = rows.last().map(|row| row.0) else {
                    continue;
                };
                for (_, id, message_type, data) in rows {
                    client
                        .stream_write(
                            &stream,
                            &NewMessage::new(message_type, data.0),
                            &WriteOptions::new().id(id.parse()?),
                        )
                        .await?;
                }
                queue
                    .lock()
                    .map_err(|_| "queue poisoned")?
                    .push_back((stream, last));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let drained = Drained {
        rate: total as f64 / elapsed,
        cpu_us_per_event: (cpu_seconds() - cpu) / total as f64 * 1e6,
        sqlite_us_per_event: (sqlite_thread_seconds() - sqlite) / total as f64 * 1e6,
        postgres_us_per_event: match backlog {
            Backlog::Postgres(_) => (postgres_seconds() - postgres) / total as f64 * 1e6,
            Backlog::Sqlite(_) => 0.0,
        },
        cores_used: (cpu_seconds() - cpu) / elapsed,
    };
    // Left pending, the rows would be sent again by the next drain's sender.
    backlog.forget(&namespace, prefix).await?;
    Ok(drained)
}

/// Writes `total` events over `streams` streams in transactions of 1,000; returns the id of
/// each stream's last event.
async fn fill<DB: Backend>(
    kit: &Kit<DB>,
    prefix: &str,
    total: usize,
    streams: usize,
) -> Result<Vec<uuid::Uuid>, BoxError> {
    let mut last = std::collections::HashMap::new();
    let mut n = 0;
    while n < total {
        let mut tx = kit.pool().begin().await?;
        let batch: Vec<OutboxMessage> = (n..(n + 1000).min(total))
            .map(|i| {
                OutboxMessage::new(
                    format!("{prefix}-{}", i % streams),
                    RawMessage::new("Counted", event_data(i)),
                )
            })
            .collect();
        let first = n;
        n += batch.len();
        let written = kit.outbox().write_batch(&mut *tx, batch).await?;
        tx.commit().await?;
        for (offset, row) in written.iter().enumerate() {
            last.insert((first + offset) % streams, row.id);
        }
    }
    Ok(last.into_values().collect())
}

/// Commit → sent latency of single-event transactions, sender running with defaults.
async fn latency<DB: Backend>(
    kit: &Kit<DB>,
    prefix: &str,
    count: usize,
) -> Result<(f64, f64), BoxError> {
    let sender = kit.outbox().spawn_sender(SenderOptions::default()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let mut tx = kit.pool().begin().await?;
        let written = kit
            .outbox()
            .write(
                &mut *tx,
                format!("{prefix}-{}", i % 10),
                RawMessage::new("Counted", json!({ "n": i })),
            )
            .await?;
        tx.commit().await?;
        let committed = Instant::now();
        kit.outbox()
            .wait_sent(written.id, Duration::from_secs(10))
            .await?;
        samples.push(committed.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sender.shutdown().await?;
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Commit → sent latency on SQLite while the application commits other transactions on the
/// same database as fast as it can (two tasks): the sender competes with them for SQLite's
/// write lock. The uncontended figures of the same run are the baseline.
async fn contended_latency(
    pool: &sqlx::SqlitePool,
    server: &TestServer,
) -> Result<Value, BoxError> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let kit = Kit::builder(server.url())
        .token(server.default_token())
        .database(pool.clone())
        .build()?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_app_writes (n INTEGER)")
        .execute(pool)
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let (pool, stop, commits) = (pool.clone(), Arc::clone(&stop), Arc::clone(&commits));
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut tx = pool.begin().await?;
                sqlx::query("INSERT INTO bench_app_writes (n) VALUES (1)")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), sqlx::Error>(())
        }));
    }
    let started = Instant::now();
    let measured = latency(&kit, "sqlitecontended", 300).await;
    stop.store(true, Ordering::Relaxed);
    let app_rate = commits.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    for writer in writers {
        writer.await??;
    }
    let (p50, p99) = measured?;
    println!(
        "sqlite: commit to sent while the application commits {app_rate:.0} other transactions/s: p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    Ok(json!({
        "contended_commit_to_sent_p50_ms": (p50 * 100.0).round() / 100.0,
        "contended_commit_to_sent_p99_ms": (p99 * 100.0).round() / 100.0,
        "contended_app_commits_per_sec": app_rate.round(),
    }))
}

/// Peak memory of a child process draining 20,000 and 200,000 pending rows.
async fn memory(server: &TestServer, db: &str) -> Result<Value, BoxError> {
    let mut out = serde_json::Map::new();
    for rows in [scale(20_000), scale(200_000)] {
        let exe = std::env::current_exe()?;
        let args = [
            "--memory-child".to_owned(),
            db.to_owned(),
            rows.to_string(),
            server.url(),
            server.default_token().to_owned(),
        ];
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(exe).args(args).output()
        })
        .await??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "memory child failed: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let line = stdout.lines().last().unwrap_or_default();
        let report: Value = serde_json::from_str(line)?;
        let before = report["rss_before_mib"].as_f64().unwrap_or(0.0);
        let peak = report["peak_rss_mib"].as_f64().unwrap_or(0.0);
        let growth = ((peak - before).max(0.0) * 10.0).round() / 10.0;
        println!(
            "{db}: {rows} rows pending: RSS {before} MiB after filling, peak {peak} MiB while draining (+{growth} MiB)"
        );
        out.insert(format!("drain_peak_rss_mib_{rows}_pending"), json!(peak));
        out.insert(
            format!("drain_rss_growth_mib_{rows}_pending"),
            json!(growth),
        );
    }
    Ok(Value::Object(out))
}

/// Child: fill `rows`, reset the peak-RSS mark, drain with a default sender, print the peak.
async fn memory_child(args: &[String]) -> Result<(), BoxError> {
    let [db, rows, url, token, ..] = args else {
        return Err("usage: --memory-child <sqlite|postgres> <rows> <url> <token>".into());
    };
    let rows: usize = rows.parse()?;
    match db.as_str() {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let pool = sqlite_pool(&dir.path().join("mem.db")).await?;
            eventodb_kit::migrate(&pool).await?;
            child_drain(&pool, rows, url, token).await
        }
        _ => {
            let database_url = std::env::var("DATABASE_URL")?;
            let (pool, schema) = pg_pool(&database_url, "outbox_bench").await?;
            eventodb_kit::migrate(&pool).await?;
            let result = child_drain(&pool, rows, url, token).await;
            drop_schema(&database_url, &schema).await;
            result
        }
    }
}

async fn child_drain<DB: Backend>(
    pool: &Pool<DB>,
    rows: usize,
    url: &str,
    token: &str,
) -> Result<(), BoxError> {
    let kit = Kit::builder(url)
        .token(token)
        .database(pool.clone())
        .build()?;
    let prefix = format!("mem{}", uuid::Uuid::new_v4().simple());
    fill(&kit, &prefix, rows, 100).await?;
    let before = rss_kib("VmRSS");
    // Reset the high-water mark so it measures the drain only (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    // Memory depends on the rows pending, not on how many are sent: drain 20,000 (all of a
    // 20,000 backlog, a tenth of a 200,000 one) and compare the peaks.
    let target = rows.min(20_000) as u64;
    let sender = kit.outbox().spawn_sender(SenderOptions::default()).await?;
    loop {
        if kit.outbox().status().await?.sent >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sender.shutdown().await?;
    let peak = rss_kib("VmHWM");
    println!(
        "{}",
        json!({
            "rows": rows,
            "rss_before_mib": (before as f64 / 1024.0 * 10.0).round() / 10.0,
            "peak_rss_mib": (peak as f64 / 1024.0 * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

/// CPU seconds (user + system) this process has used so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces: the fields start after its closing paren.
    stat_cpu_seconds(stat.rsplit_once(')').map_or("", |(_, rest)| rest))
}

/// CPU seconds used so far by every PostgreSQL server process on this machine (Linux
/// `/proc`; the benches' PostgreSQL is local).
fn postgres_seconds() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if head.ends_with("(postgres") {
            total += stat_cpu_seconds(rest);
        }
    }
    total
}

/// CPU seconds used so far by SQLite's connection threads (sqlx names them
/// `sqlx-sqlite-worker-N`), from `/proc/self/task`.
fn sqlite_thread_seconds() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains("(sqlx-sqlite") {
            continue;
        }
        total += stat_cpu_seconds(rest);
    }
    total
}

/// utime + stime in seconds from the fields of a `stat` line after the command's `)`:
/// they are fields 14 and 15 of the line, 12 and 13 after the paren (ticks of 1/100 s).
fn stat_cpu_seconds(after_command: &str) -> f64 {
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
