//! The quick start: a small shop. Each checkout writes a customer row, an order row and two
//! events (`UserCreated`, `OrderPlaced`, generated from the workspace's `schemas/`) in one
//! database transaction through the outbox. The outbox sender delivers them to EventoDB,
//! where two typed consumers handle them: `welcome` (a 3-member consumer group on `user`)
//! and `sales` (a transactional consumer on `order` that keeps a projection table).
//!
//! ```sh
//! cargo run -p eventodb-kit-quickstart            # SQLite + the embedded EventoDB
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//! EVENTODB_URL=http://127.0.0.1:8080 EVENTODB_TOKEN=ns_... \
//! cargo run -p eventodb-kit-quickstart            # PostgreSQL + a real EventoDB
//! ```
//!
//! `QUICKSTART_CHECKOUTS` sets the number of checkouts (default 1000, two events each).

mod consumers;
mod db;
mod progress;
mod track;

/// The events generated from `schemas/` by `build.rs`.
mod events {
    #![allow(missing_docs, unreachable_pub, dead_code)]
    eventodb_kit::include_events!();
}

use std::error::Error as StdError;
use std::marker::PhantomData;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use eventodb_kit::Kit;
use eventodb_kit::consumer::ConsumerOptions;
use eventodb_kit::outbox::SenderOptions;
use eventodb_kit_testkit::TestServer;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Pool, Postgres, Sqlite};
use uuid::Uuid;

use crate::consumers::{Sales, Welcome};
use crate::db::AppDb;
use crate::events::{
    Currency, InvoicePayment, Money, OrderLine, OrderPlaced, Payment, UserCreated, UserCreatedPlan,
};
use crate::progress::{Counters, Progress};
use crate::track::{Track, percentile};

/// Any error, with the context already in its message.
type BoxError = Box<dyn StdError + Send + Sync>;

/// Members of the `welcome` consumer group.
const GROUP_SIZE: usize = 3;
/// How long the consumers may take to catch up after the last commit.
const CATCH_UP: Duration = Duration::from_secs(45);
/// How long the summary waits for the sender to record its last sends.
const RECORD_WAIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nerror: {}", Chain(&*error));
            ExitCode::FAILURE
        }
    }
}

/// An error followed by its causes, `error: cause: cause` (eventodb-kit's errors leave their
/// causes to `source()`, as the Rust API guidelines ask, so `{error}` alone shows only the first).
struct Chain<'e>(&'e (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

/// Where EventoDB is: a real server from the environment, or the embedded one.
struct EventoDb {
    url: String,
    token: String,
    embedded: Option<TestServer>,
}

async fn run() -> Result<(), BoxError> {
    let checkouts: usize = match std::env::var("QUICKSTART_CHECKOUTS") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("QUICKSTART_CHECKOUTS={value:?} is not a number"))?,
        Err(_) => 1000,
    };
    let eventodb = match std::env::var("EVENTODB_URL") {
        Ok(url) => {
            let token = std::env::var("EVENTODB_TOKEN").map_err(
                |_| "EVENTODB_URL is set but EVENTODB_TOKEN is not: give the token of a namespace",
            )?;
            EventoDb {
                url,
                token,
                embedded: None,
            }
        }
        Err(_) => {
            let server = TestServer::start()
                .await
                .map_err(|e| format!("cannot start the embedded EventoDB: {e}"))?;
            EventoDb {
                url: server.url(),
                token: server.default_token().to_owned(),
                embedded: Some(server),
            }
        }
    };
    let result = match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
            // One direct connection first: its error says why (refused, unknown host,
            // bad password), where the pool would only report a timeout.
            let connect = PgConnection::connect(&url);
            match tokio::time::timeout(Duration::from_secs(10), connect).await {
                Ok(Ok(conn)) => drop(conn),
                Ok(Err(e)) => {
                    return Err(
                        format!("cannot connect to PostgreSQL at {}: {e}", redact(&url)).into(),
                    );
                }
                Err(_) => {
                    return Err(format!(
                        "cannot connect to PostgreSQL at {}: no answer within 10 s",
                        redact(&url)
                    )
                    .into());
                }
            }
            let mut options = PgConnectOptions::from_str(&url)
                .map_err(|e| format!("bad DATABASE_URL {}: {e}", redact(&url)))?;
            // The embedded EventoDB starts empty each run: keep this run's tables in a schema
            // of its own, so the outbox and the consumers never meet a previous run's state.
            let schema = eventodb
                .embedded
                .is_some()
                .then(|| format!("quickstart_{}", Uuid::new_v4().simple()));
            if let Some(schema) = &schema {
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool_of(&options).await?)
                    .await
                    .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
                options = options.options([("search_path", schema.as_str())]);
            }
            let pool = pool_of(&options)
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL at {}: {e}", redact(&url)))?;
            let label = match &schema {
                Some(schema) => format!("PostgreSQL at {} (schema {schema})", redact(&url)),
                None => format!("PostgreSQL at {}", redact(&url)),
            };
            let result = shop::<Postgres>(pool.clone(), &label, &eventodb, checkouts).await;
            pool.close().await;
            if let Some(schema) = &schema
                && let Ok(admin) = pool_of(&options).await
            {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await;
            }
            result
        }
        Ok(url) if url.starts_with("sqlite:") => {
            let options = SqliteConnectOptions::from_str(&url)
                .map_err(|e| format!("bad DATABASE_URL {url:?}: {e}"))?;
            let pool = sqlite_pool(options)
                .await
                .map_err(|e| format!("cannot open SQLite database {url:?}: {e}"))?;
            shop::<Sqlite>(pool, &url, &eventodb, checkouts).await
        }
        Ok(url) => Err(format!(
            "DATABASE_URL={:?} is neither a postgres:// nor a sqlite: URL",
            redact(&url)
        )
        .into()),
        Err(_) => {
            let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
            let path = dir.path().join("quickstart.db");
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = sqlite_pool(options)
                .await
                .map_err(|e| format!("cannot open SQLite database {}: {e}", path.display()))?;
            let label = format!("SQLite at {}", path.display());
            let result = shop::<Sqlite>(pool.clone(), &label, &eventodb, checkouts).await;
            pool.close().await;
            result
        }
    };
    if let Some(server) = eventodb.embedded {
        server.shutdown().await;
    }
    result
}

async fn pool_of(options: &PgConnectOptions) -> sqlx::Result<Pool<Postgres>> {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
}

async fn sqlite_pool(options: SqliteConnectOptions) -> sqlx::Result<Pool<Sqlite>> {
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(
            options
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Runs the shop on one database: checkouts, sender, consumers, summary.
async fn shop<DB: AppDb>(
    pool: Pool<DB>,
    database: &str,
    eventodb: &EventoDb,
    checkouts: usize,
) -> Result<(), BoxError> {
    eventodb_kit::migrate(&pool)
        .await
        .map_err(|e| format!("cannot create the eventodb-kit tables: {}", Chain(&e)))?;
    DB::create_tables(&pool)
        .await
        .map_err(|e| format!("cannot create the shop's tables: {e}"))?;
    let kit = Kit::builder(&eventodb.url)
        .token(&eventodb.token)
        .database(pool.clone())
        .build()
        .map_err(|e| {
            format!(
                "bad EventoDB settings (EVENTODB_URL / EVENTODB_TOKEN): {}",
                Chain(&e)
            )
        })?;
    let version = kit
        .client()
        .sys_version()
        .await
        .map_err(|e| format!("cannot reach EventoDB at {}: {}", eventodb.url, Chain(&e)))?;
    let kind = if eventodb.embedded.is_some() {
        "embedded EventoDB"
    } else {
        "EventoDB"
    };
    println!("database: {database}");
    println!(
        "eventodb: {kind} {version} at {} (namespace {})",
        eventodb.url,
        kit.namespace()
    );
    println!(
        "running {checkouts} checkouts ({} events), the outbox sender, consumers `welcome` \
         (group of {GROUP_SIZE}) and `sales` (transactional)",
        checkouts * 2
    );

    let users = Arc::new(Track::default());
    let orders = Arc::new(Track::default());
    let members: Vec<Arc<AtomicU64>> = (0..GROUP_SIZE).map(|_| Arc::default()).collect();
    let mut workers = kit.workers().outbox_sender(SenderOptions::default());
    for (member, handled) in members.iter().enumerate() {
        workers = workers.consumer(
            Welcome {
                track: users.clone(),
                handled: handled.clone(),
            },
            ConsumerOptions::new("quickstart-welcome").group(member as i64, GROUP_SIZE as i64),
        );
    }
    let mut workers = workers
        .consumer(
            Sales::<DB> {
                track: orders.clone(),
                db: PhantomData,
            },
            ConsumerOptions::new("quickstart-sales"),
        )
        .spawn()
        .await
        .map_err(|e| format!("cannot start the workers: {}", Chain(&e)))?;

    let counters = Counters {
        total: checkouts as u64 * 2,
        written: Arc::default(),
        users: users.clone(),
        orders: orders.clone(),
        members: members.clone(),
    };
    let progress = Progress::start(kit.clone(), counters.clone());
    let started = Instant::now();
    let run_id = Uuid::new_v4().simple().to_string();

    let checkout = async {
        for i in 0..checkouts {
            checkout(&kit, &run_id, i, &users, &orders).await?;
            counters
                .written
                .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        }
        let written_in = started.elapsed();
        // Wait for both consumers, unless one of them stops on an error.
        let deadline = Instant::now() + CATCH_UP;
        while users.count() < checkouts as u64 || orders.count() < checkouts as u64 {
            if Instant::now() > deadline {
                return Err::<Duration, BoxError>(
                    format!(
                        "the consumers did not catch up within {CATCH_UP:?} \
                         (welcome {}/{checkouts}, sales {}/{checkouts})",
                        users.count(),
                        orders.count()
                    )
                    .into(),
                );
            }
            tokio::select! {
                failure = workers.next_failure() => {
                    let message = failure.map_or_else(
                        || "every consumer stopped".to_owned(),
                        |e| format!("a consumer stopped: {}", Chain(&e)),
                    );
                    return Err(message.into());
                }
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        Ok(written_in)
    }
    .await;
    let elapsed = started.elapsed();
    progress.finish().await;
    let written_in = checkout?;

    // The consumers read the events from EventoDB, so they can be done before the sender has
    // recorded its last sends in the outbox (on SQLite its record statement may wait for the
    // write lock): give it a moment, and say how long it took.
    let caught_up = Instant::now();
    let mut status = kit.outbox().status().await?;
    while status.pending > 0 && caught_up.elapsed() < RECORD_WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = kit.outbox().status().await?;
    }
    let record_lag = caught_up.elapsed();
    workers
        .shutdown()
        .await
        .map_err(|e| format!("shutdown failed: {}", Chain(&e)))?;
    let totals = DB::totals(&pool, &run_id).await?;

    let written = counters.total;
    println!();
    println!("summary");
    println!(
        "  events written   {written} in {checkouts} transactions ({:.1} s, {:.0} events/s)",
        written_in.as_secs_f64(),
        written as f64 / written_in.as_secs_f64()
    );
    let recorded = if status.pending == 0 {
        format!(
            "the last recorded {:.1} s after the consumers caught up",
            record_lag.as_secs_f64()
        )
    } else {
        format!(
            "still not all recorded {:.1} s after the consumers caught up",
            record_lag.as_secs_f64()
        )
    };
    println!(
        "  events sent      {} (outbox: {} pending, {} failed; {recorded})",
        written.saturating_sub(status.pending + status.failed),
        status.pending,
        status.failed,
    );
    let per_member: Vec<String> = members
        .iter()
        .map(|m| m.load(std::sync::atomic::Ordering::Relaxed).to_string())
        .collect();
    println!(
        "  welcome          {} UserCreated handled (members: {})",
        users.count(),
        per_member.join(" + ")
    );
    println!(
        "  sales            {} OrderPlaced handled; {} of {} orders recorded, revenue {} of {} (cents)",
        orders.count(),
        totals.sales,
        totals.orders,
        totals.sales_revenue,
        totals.revenue
    );
    let mut all = users.latencies();
    all.extend(orders.latencies());
    all.sort_unstable();
    println!("  latency, commit -> handled:");
    for (name, values) in [
        ("welcome", users.latencies()),
        ("sales", orders.latencies()),
        ("all", all),
    ] {
        let show = |p| percentile(&values, p).map_or("-".into(), |d| format!("{:.1} ms", ms(d)));
        println!(
            "    {name:<8} p50 {:>9}  p90 {:>9}  p99 {:>9}",
            show(50.0),
            show(90.0),
            show(99.0)
        );
    }
    println!("  total time       {:.1} s", elapsed.as_secs_f64());
    if totals.sales != totals.orders || totals.sales_revenue != totals.revenue {
        return Err("the sales projection does not match the orders".into());
    }
    println!("shut down cleanly");
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One checkout: a customer and an order, rows and events in one transaction.
async fn checkout<DB: AppDb>(
    kit: &Kit<DB>,
    run_id: &str,
    i: usize,
    users: &Track,
    orders: &Track,
) -> Result<(), BoxError> {
    let now = chrono::Utc::now();
    let user_id = Uuid::new_v4();
    let email = format!("customer{i}@example.com");
    let quantity = (i % 3 + 1) as u64;
    let unit_price = 1250 + (i % 7) as u64 * 100;
    let total = quantity * unit_price;
    let user = UserCreated {
        user_id,
        email: email.clone(),
        plan: if i % 5 == 0 {
            UserCreatedPlan::Pro
        } else {
            UserCreatedPlan::Free
        },
        marketing_opt_in: i % 2 == 0,
        display_name: None,
        referrer: None,
        address: None,
        birth_date: None,
        created_at: now,
    };
    let order = OrderPlaced {
        order_id: Uuid::new_v4(),
        customer_id: user_id,
        lines: vec![OrderLine {
            sku: format!("TEA-{:04}", i % 10_000),
            quantity,
            unit_price: Money {
                amount_minor: unit_price,
                currency: Currency::Eur,
            },
            discount_percent: None,
        }],
        total: Money {
            amount_minor: total,
            currency: Currency::Eur,
        },
        payment: Payment::Invoice(InvoicePayment {
            due_days: 30,
            po_number: None,
        }),
        shipping_address: None,
        coupon_codes: None,
        attributes: None,
        gift: None,
        placed_at: now,
    };

    // On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): see `Kit::begin`.
    let mut tx = kit.begin().await?;
    DB::insert_customer(&mut tx, run_id, user_id, &email).await?;
    kit.outbox().publish(&mut tx, &user).await?;
    DB::insert_order(&mut tx, run_id, order.order_id, user_id, total as i64).await?;
    kit.outbox().publish(&mut tx, &order).await?;
    users.committing(user_id);
    orders.committing(order.order_id);
    tx.commit().await?;
    Ok(())
}
