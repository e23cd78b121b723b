//! The README's Rust snippets, compiled. The blocks of its "Outbox" and "Consumers" sections
//! are written out below, with what they assume declared around them (the functions are
//! compiled, not run: they need PostgreSQL tables of an application), and
//! `the_readme_shows_what_compiles_here` checks that every line of those blocks appears here,
//! in the same order; so are the consumer impl blocks of "Typed events".

#![allow(dead_code)]

use std::time::Duration;

#[rustfmt::skip]
use eventodb_kit::consumer::{BoxFuture, Consumer, ConsumerOptions, Context, FailurePolicy, Handled, HandlerError};
#[rustfmt::skip]
use eventodb_kit::client::CategoryMessage;
use eventodb_kit::outbox::{RawMessage, SenderOptions};
use eventodb_kit::{Event, Kit, consumer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The event the Outbox section publishes.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: String,
    email: String,
}

#[rustfmt::skip]
async fn outbox_section(
    url: String,
    eventodb_url: String,
    token: String,
    signed_up: UserCreated,
) -> Result<(), BoxError> {
    let pool = PgPool::connect(&url).await?;                 // or a SqlitePool
    eventodb_kit::migrate(&pool).await?;                     // own version table, never _sqlx_migrations
    let kit = Kit::builder(eventodb_url).token(token).database(pool.clone()).build()?;

    let mut tx = kit.begin().await?;                                      // or pool.begin(): see SQLite below
    sqlx::query("insert into users ...").execute(&mut *tx).await?;
    let written = kit.outbox().publish(&mut tx, &signed_up).await?;       // a UserCreated: stream from its template
    kit.outbox()
        .write(&mut tx, "account-7", RawMessage::new("Deposited", json!({"amount": 5})))
        .expected_version(3)
        .idempotency_key("deposit-7-2026-11-26")                         // unique per namespace
        .await?;
    tx.commit().await?;

    let workers = kit.workers().outbox_sender(SenderOptions::default()).spawn().await?;
    let sent = kit.outbox().wait_sent(written.id, Duration::from_secs(5)).await?; // where EventoDB stored it
    let status = kit.outbox().status().await?;                            // pending, failed, sent, oldest age
    println!("{status:?}");
    consumers_section(kit, sent.global_position, 0).await?;
    workers.shutdown().await?;
    Ok(())
}

struct Balances;

#[rustfmt::skip]
impl Consumer<sqlx::Postgres> for Balances {
    fn category(&self) -> &str { "account" }
    fn handle<'a>(&'a self, message: &'a CategoryMessage, ctx: &'a mut Context<'_, sqlx::Postgres>)
        -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            match message.message_type.as_str() {
                "Deposited" => {
                    sqlx::query("update balances set amount = amount + ($1::jsonb->>'amount')::bigint where id = $2")
                        .bind(&message.data).bind(&message.stream_name)
                        .execute(ctx.transaction()?).await?;   // committed with the position
                    Ok(Handled::Done)
                }
                _ => Ok(Handled::Unknown),                      // ignored (or a failure with strict_types)
            }
        })
    }
}

/// What the typed consumers of "Typed events" assume: a mailer, and the application's own
/// database code.
struct Mailer;

impl Mailer {
    async fn send_welcome(&self, email: &str) -> Result<(), std::io::Error> {
        println!("welcome, {email}");
        Ok(())
    }
}

struct Welcome {
    mailer: Mailer,
}

struct Sales<DB>(std::marker::PhantomData<fn() -> DB>);

trait AppDb: eventodb_kit::Backend {
    fn record_sale(
        conn: &mut <Self as sqlx::Database>::Connection,
        order_id: String,
        amount_minor: u64,
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The order event the sales consumer handles.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(category = "order", stream = "order-{order_id}")]
struct OrderPlaced {
    order_id: String,
    total: Total,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Total {
    amount_minor: u64,
}

#[rustfmt::skip]
#[consumer(category = "user")]
impl Welcome {
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        self.mailer.send_welcome(&event.email).await?;
        Ok(())
    }
}

#[rustfmt::skip]
#[consumer(category = "order", transactional)]
impl<DB: AppDb> Sales<DB> {
    async fn placed(&self, event: OrderPlaced, ctx: &mut Context<'_, DB>) -> Result<(), HandlerError> {
        DB::record_sale(ctx.transaction()?, event.order_id, event.total.amount_minor).await?;
        Ok(())   // committed with the consumer's position: exactly-once effect
    }
}

/// `sent` stands for the section's `sent.global_position` (from the outbox section).
#[rustfmt::skip]
async fn consumers_section(kit: Kit<sqlx::Postgres>, global_position: i64, member: i64) -> Result<(), BoxError> {
    let sent = eventodb_kit::client::WritePosition { position: 0, global_position };
    let workers = kit.workers()
        .outbox_sender(SenderOptions::default())
        .consumer(Balances, ConsumerOptions::new("balances")
            .transactional(true)                                    // exactly-once effects
            .group(member, 3)                                       // the server splits the streams
            .failure_policy(FailurePolicy::ParkStream))             // or Stop (typed error) / Skip (recorded)
        .spawn()
        .await?;
    workers.consumer("balances").unwrap().wait_for(sent.global_position, Duration::from_secs(5)).await?;
    workers.shutdown().await?;                                      // finishes the message in hand, saves positions
    Ok(())
}

/// The ```rust blocks of the README section headed `## {section}`, as their lines.
fn blocks(readme: &str, section: &str) -> Vec<Vec<String>> {
    let heading = format!("## {section}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {section:?}"));
    let body = &readme[start + heading.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in body.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => block.push(line.to_owned()),
            (None, _) => {}
        }
    }
    assert!(!blocks.is_empty(), "section {section:?} has no rust block");
    blocks
}

/// Every non-empty line of `block`, trimmed, is a line of `source`, in order.
fn assert_in_order(block: &[String], source: &str, what: &str) {
    let mut lines = source.lines().map(str::trim);
    for wanted in block
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
    {
        assert!(
            lines.any(|line| line == wanted),
            "the README's line {wanted:?} is not in {what} (or not in this order)"
        );
    }
}

#[test]
fn the_readme_shows_what_compiles_here() {
    let readme = include_str!("../../README.md");
    let here = include_str!("readme.rs");
    for section in ["Outbox", "Consumers"] {
        for block in blocks(readme, section) {
            assert_in_order(&block, here, "eventodb-kit/tests/readme.rs");
        }
    }
    // The first block is a build script and a file of the application.
    for block in &blocks(readme, "Typed events")[1..] {
        assert_in_order(block, here, "eventodb-kit/tests/readme.rs");
    }
}

#[test]
fn a_changed_readme_line_is_caught() {
    let block = vec!["let kit = Kit::builder(url).build()?;".to_owned()];
    let caught = std::panic::catch_unwind(|| {
        assert_in_order(&block, include_str!("readme.rs"), "this file");
    });
    assert!(caught.is_err());
}

/// The re-exported crates are the ones the kit's API takes: a pool named through
/// `eventodb_kit::sqlx` builds a kit, and ids and times through the others fit its types.
#[tokio::test]
async fn the_reexported_crates_fit_the_api() {
    let pool = eventodb_kit::sqlx::SqlitePool::connect_lazy("sqlite::memory:").unwrap();
    let kit = Kit::builder("http://127.0.0.1:9")
        .database(pool)
        .build()
        .unwrap();
    let id: eventodb_kit::uuid::Uuid = eventodb_kit::uuid::Uuid::now_v7();
    let at: eventodb_kit::chrono::DateTime<eventodb_kit::chrono::Utc> =
        eventodb_kit::chrono::Utc::now();
    let message = RawMessage::new("Stamped", eventodb_kit::serde_json::json!({ "at": at }));
    let mut conn = kit.pool().acquire().await.unwrap();
    let write = kit.outbox().write_batch(
        &mut conn,
        vec![eventodb_kit::outbox::OutboxMessage::new("stamp-1", message).id(id)],
    );
    // No tables here: the write is refused, and says why.
    assert!(matches!(
        write.await,
        Err(eventodb_kit::Error::NotMigrated { .. })
    ));
}
