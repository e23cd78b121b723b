//! `cargo bench --bench consumer`: how fast a consumer with a no-op handler goes through
//! 50,000 events (processed records and positions saved) against the raw client's
//! `category.get` rate in the same run; the latency from an outbox commit to the handler
//! call with live wake-ups on and the fallback poll at 1 s; and the requests per second to
//! EventoDB (and to PostgreSQL) while idle. SQLite always; PostgreSQL when `DATABASE_URL` is
//! set. Ends with one JSON line.
//!
//! `CONSUMER_BENCH_QUICK=1` divides the event count by 10.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventodb_kit::client::{GetCategoryOptions, NewMessage, WriteOptions};
use eventodb_kit::consumer::{ConsumerOptions, Handled, HandlerError, consumer_fn};
use eventodb_kit::outbox::{RawMessage, SenderOptions};
use eventodb_kit::{Backend, Kit};
use eventodb_kit_testkit::TestServer;
use serde_json::{Value, json};
use support::{BoxError, drop_schema, pg_pool, sqlite_pool};

const BATCH: i64 = 1000;
const LATENCY_SAMPLES: usize = 400;
const IDLE: Duration = Duration::from_secs(10);
/// How late an idle PostgreSQL backend may report its table accesses (10 s, and a margin).
const STATS_FLUSH: Duration = Duration::from_secs(11);

fn events() -> usize {
    if std::env::var_os("CONSUMER_BENCH_QUICK").is_some() {
        5_000
    } else {
        50_000
    }
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), BoxError> {
    // The server runs on its own runtime so that its work is not counted against ours.
    let server = TestServer::builder().start_dedicated().await?;
    let kit_client = eventodb_kit::Client::builder(server.url())
        .token(eventodb_kit::client::Token::parse(server.default_token())?)
        .build()?;
    let total = events();
    let last = fill(&kit_client, total).await?;
    let raw = raw_rate(&kit_client, last).await?;
    println!("raw category.get: {raw:.0} events/s (batch {BATCH}, {total} events)");
    let mut results = serde_json::Map::new();
    results.insert("events".into(), json!(total));
    results.insert("raw_category_get_events_per_sec".into(), json!(raw.round()));

    let dir = tempfile::tempdir()?;
    let sqlite = sqlite_pool(&dir.path().join("bench.db")).await?;
    eventodb_kit::migrate(&sqlite).await?;
    let kit = Kit::from_parts(kit_client.clone(), sqlite.clone());
    let db = run_db("sqlite", &kit, &server, last, None).await?;
    results.insert("sqlite".into(), db);

    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let (pg, schema) = pg_pool(&url, "consumer_bench").await?;
            eventodb_kit::migrate(&pg).await?;
            let kit = Kit::from_parts(kit_client.clone(), pg.clone());
            let db = run_db("postgres", &kit, &server, last, Some((&pg, &schema))).await?;
            results.insert("postgres".into(), db);
            pg.close().await;
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

/// Writes `total` events to category `bench` (100 streams, 32 writers); returns the last
/// global position.
async fn fill(client: &eventodb_kit::Client, total: usize) -> Result<i64, BoxError> {
    let started = Instant::now();
    let writers = 32;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for i in (w..total).step_by(writers) {
                let at = client
                    .stream_write(
                        &format!("bench-{}", i % 100),
                        &NewMessage::new("Ticked", json!({ "i": i })),
                        &WriteOptions::new(),
                    )
                    .await?;
                last = last.max(at.global_position);
            }
            Ok::<i64, eventodb_kit::Error>(last)
        }));
    }
    let mut last = 0;
    for task in tasks {
        last = last.max(task.await??);
    }
    println!("wrote {total} events in {:.1?}", started.elapsed());
    Ok(last)
}

/// The raw client's rate reading the category from the start in batches of [`BATCH`].
async fn raw_rate(client: &eventodb_kit::Client, last: i64) -> Result<f64, BoxError> {
    let started = Instant::now();
    let mut position = 1;
    let mut read = 0usize;
    loop {
        let batch = client
            .category_get(
                "bench",
                &GetCategoryOptions::new()
                    .position(position)
                    .batch_size(BATCH),
            )
            .await?;
        let Some(end) = batch.last() else { break };
        position = end.global_position + 1;
        read += batch.len();
        if end.global_position >= last {
            break;
        }
    }
    Ok(read as f64 / started.elapsed().as_secs_f64())
}

async fn run_db<DB: Backend>(
    name: &str,
    kit: &Kit<DB>,
    server: &TestServer,
    last: i64,
    postgres: Option<(&sqlx::PgPool, &str)>,
) -> Result<Value, BoxError> {
    // The raw rate again, right before the consumer's pass: on a shared machine the load
    // drifts between passes, and the ratio should compare like with like.
    let raw = raw_rate(kit.client(), last).await?;
    println!("{name}: raw category.get {raw:.0} events/s just before");
    // Throughput: a no-op handler through every event.
    let started = Instant::now();
    let workers = kit
        .workers()
        .without_live_wakeups()
        .consumer(
            consumer_fn("bench", |_message| async {
                Ok::<_, HandlerError>(Handled::Done)
            }),
            ConsumerOptions::new(format!("bench-{name}"))
                .batch_size(BATCH)
                .position_update_interval(BATCH as usize),
        )
        .spawn()
        .await?;
    workers.consumers()[0]
        .wait_for(last, Duration::from_secs(600))
        .await?;
    let elapsed = started.elapsed();
    workers.shutdown().await?;
    let handled = events() as f64;
    let rate = handled / elapsed.as_secs_f64();
    println!(
        "{name}: consumer {rate:.0} events/s ({:.2} of raw category.get)",
        rate / raw
    );

    // Latency: outbox commit to handler call, live wake-ups on, fallback poll at 1 s.
    let sent_at: Arc<Mutex<HashMap<uuid::Uuid, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let handler = {
        let sent_at = Arc::clone(&sent_at);
        let latencies = Arc::clone(&latencies);
        consumer_fn("latency", move |message| {
            let sent_at = Arc::clone(&sent_at);
            let latencies = Arc::clone(&latencies);
            async move {
                let started = message
                    .id
                    .as_uuid()
                    .and_then(|id| sent_at.lock().unwrap().get(&id).copied());
                if let Some(started) = started {
                    latencies.lock().unwrap().push(started.elapsed());
                }
                Ok::<_, HandlerError>(Handled::Done)
            }
        })
    };
    let workers = kit
        .workers()
        .outbox_sender(SenderOptions::default().poll_interval(Duration::from_secs(1)))
        .consumer(
            handler,
            ConsumerOptions::new(format!("latency-{name}")).poll_interval(Duration::from_secs(1)),
        )
        .spawn()
        .await?;
    let connected = Instant::now();
    while workers.live_connections() == 0 && connected.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..LATENCY_SAMPLES {
        let mut tx = kit.pool().begin().await?;
        let written = kit
            .outbox()
            .write(
                &mut *tx,
                format!("latency-{}", i % 10),
                RawMessage::new("Pinged", json!({ "i": i })),
            )
            .await?;
        sent_at.lock().unwrap().insert(written.id, Instant::now());
        tx.commit().await?;
        let expected = i + 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while latencies.lock().unwrap().len() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let samples = std::mem::take(&mut *latencies.lock().unwrap());
    let (p50, p99) = percentiles(&samples);
    println!(
        "{name}: outbox commit -> handler p50 {p50:.2} ms, p99 {p99:.2} ms ({} of {LATENCY_SAMPLES} samples)",
        samples.len()
    );
    // The consumer's share: a direct EventoDB write -> handler (poke, read, call).
    for i in 0..LATENCY_SAMPLES {
        let id = uuid::Uuid::now_v7();
        sent_at.lock().unwrap().insert(id, Instant::now());
        kit.client()
            .stream_write(
                &format!("latency-{}", i % 10),
                &NewMessage::new("Pinged", json!({ "i": i })),
                &WriteOptions::new().id(id),
            )
            .await?;
        let expected = i + 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while latencies.lock().unwrap().len() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let direct = std::mem::take(&mut *latencies.lock().unwrap());
    let (direct_p50, direct_p99) = percentiles(&direct);
    println!(
        "{name}: eventodb write -> handler p50 {direct_p50:.2} ms, p99 {direct_p99:.2} ms ({} samples)",
        direct.len()
    );

    // Idle: requests to EventoDB (and PostgreSQL table accesses) per second. An idle
    // PostgreSQL backend flushes its statistics up to 10 s late: settle that long first,
    // or the last saves of the latency run count as idle accesses.
    let settle = if postgres.is_some() {
        STATS_FLUSH
    } else {
        Duration::from_secs(2)
    };
    tokio::time::sleep(settle).await;
    let scans_before = match postgres {
        Some((pool, schema)) => Some(table_accesses(pool, schema).await?),
        None => None,
    };
    server.reset_stats();
    tokio::time::sleep(IDLE).await;
    let stats = server.stats();
    let eventodb_idle = stats.total() as f64 / IDLE.as_secs_f64();
    let by_method: serde_json::Map<String, Value> = stats
        .iter()
        .map(|(label, count)| (label.to_owned(), json!(count)))
        .collect();
    // Which tables were read while idle, so the figure says whose polling it is.
    let db_idle_by_table = match (postgres, scans_before) {
        (Some((pool, schema)), Some(before)) => {
            tokio::time::sleep(STATS_FLUSH).await;
            let after = table_accesses(pool, schema).await?;
            let by_table: serde_json::Map<String, Value> = after
                .iter()
                .map(|(table, n)| (table, n - before.get(table).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .map(|(table, n)| (table.clone(), json!(n)))
                .collect();
            Some(by_table)
        }
        _ => None,
    };
    let db_idle = db_idle_by_table.as_ref().map(|by_table| {
        by_table.values().filter_map(Value::as_i64).sum::<i64>() as f64 / IDLE.as_secs_f64()
    });
    println!(
        "{name}: idle {eventodb_idle:.2} EventoDB requests/s {by_method:?}{}",
        db_idle.map_or(String::new(), |r| format!(
            ", {r:.2} PostgreSQL table accesses/s {db_idle_by_table:?}"
        ))
    );
    workers.shutdown().await?;

    Ok(json!({
        "raw_category_get_events_per_sec": raw.round(),
        "consumer_events_per_sec": rate.round(),
        "ratio_to_raw_category_get": (rate / raw * 100.0).round() / 100.0,
        "latency_p50_ms": (p50 * 100.0).round() / 100.0,
        "latency_p99_ms": (p99 * 100.0).round() / 100.0,
        "latency_samples": samples.len(),
        "write_to_handler_p50_ms": (direct_p50 * 100.0).round() / 100.0,
        "write_to_handler_p99_ms": (direct_p99 * 100.0).round() / 100.0,
        "idle_eventodb_requests_per_sec": (eventodb_idle * 100.0).round() / 100.0,
        "idle_eventodb_requests_by_method": Value::Object(by_method),
        "idle_postgres_table_accesses_per_sec": db_idle.map(|r| (r * 100.0).round() / 100.0),
        "idle_postgres_table_accesses_by_table": db_idle_by_table.map(Value::Object),
    }))
}

/// p50 and p99 in milliseconds.
fn percentiles(samples: &[Duration]) -> (f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let pct = |p: f64| -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[at].as_secs_f64() * 1000.0
    };
    (pct(0.50), pct(0.99))
}

/// Sequential and index scans of each table in `schema` so far.
async fn table_accesses(
    pool: &sqlx::PgPool,
    schema: &str,
) -> Result<HashMap<String, i64>, BoxError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::bigint
         FROM pg_stat_user_tables WHERE schemaname = $1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
