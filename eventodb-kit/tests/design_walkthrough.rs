//! The experience of `DESIGN.md` sections 1 to 4, written as there (adapted to the final
//! names) and run end to end: events generated from the workspace's schemas plus a
//! hand-written one, publishing through the outbox inside the caller's transaction, a typed
//! consumer per event type with a transactional handler, and one call that runs the sender
//! and the consumers (one of them a group of three).
//!
//! SQLite and the embedded EventoDB by default; with `EVENTODB_URL` (and `EVENTODB_TOKEN`,
//! or a server in test mode) a fresh namespace on that server, deleted at the end, as the
//! events' categories are fixed by their schemas.

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventodb_kit::client::{Client, GetStreamOptions, NsCreateOptions, Token};
use eventodb_kit::consumer::{ConsumerOptions, Context, HandlerError};
use eventodb_kit::outbox::{RawMessage, SenderOptions};
use eventodb_kit::{Event, Kit, consumer};
use eventodb_kit_testkit::TestServer;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use uuid::Uuid;

// 1. Events come from schemas: the codegen's output for `schemas/` (what
// `eventodb_kit::include_events!()` brings into an application, kept by the codegen's
// golden test), and a hand-written event with the same derive.
mod events {
    #![allow(dead_code, missing_docs, unreachable_pub)]
    include!("../../eventodb-kit-codegen/tests/golden/workspace.rs");
}

use events::{UserCreated, UserCreatedPlan, UserDeleted};

/// A hand-written event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(category = "account", stream = "account-{account_id}")]
struct Deposited {
    account_id: u64,
    amount: i64,
}

const LONG: Duration = Duration::from_secs(30);

/// Where the walkthrough's EventoDB is.
struct EventoDb {
    url: String,
    token: Token,
    _server: Option<TestServer>,
    /// On a real server: the namespace made for this run, and a client that may delete it.
    created: Option<(String, Client)>,
}

impl EventoDb {
    async fn start() -> EventoDb {
        let Ok(url) = std::env::var("EVENTODB_URL") else {
            let server = TestServer::start().await.expect("test server");
            return EventoDb {
                url: server.url(),
                token: Token::parse(server.default_token()).expect("token"),
                _server: Some(server),
                created: None,
            };
        };
        let token = match std::env::var("EVENTODB_TOKEN") {
            Ok(token) => Token::parse(&token).expect("EVENTODB_TOKEN"),
            // A server in test mode takes the `default` namespace's well-known token.
            Err(_) => Token::from_parts("default", &"0".repeat(64)).expect("token"),
        };
        let admin = Client::builder(url.clone())
            .token(token)
            .build()
            .expect("client");
        let namespace = format!("walkthrough{}", &Uuid::new_v4().simple().to_string()[..12]);
        let created = admin
            .ns_create(&namespace, &NsCreateOptions::new())
            .await
            .expect("ns.create");
        EventoDb {
            url,
            token: created.token,
            _server: None,
            created: Some((namespace, admin)),
        }
    }

    async fn finish(self) {
        if let Some((namespace, admin)) = self.created {
            let _ = admin.ns_delete(&namespace).await;
        }
    }
}

/// Sends mail; here, remembers it.
#[derive(Clone, Default)]
struct Mailer {
    sent: Arc<Mutex<Vec<String>>>,
}

/// Why a mail was not sent (a real mailer's error; `?` turns it into a `HandlerError`).
#[derive(Debug)]
struct MailError;

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the mail server refused the message")
    }
}

impl std::error::Error for MailError {}

impl Mailer {
    fn send_welcome(&self, email: &str) -> impl Future<Output = Result<(), MailError>> + Send {
        self.sent.lock().unwrap().push(email.to_owned());
        std::future::ready(Ok(()))
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

// 3. Consumers are impl blocks of per-event handlers.
struct Welcome {
    mailer: Mailer,
}

#[consumer(category = "user", transactional)]
impl Welcome {
    async fn created(
        &self,
        event: UserCreated,
        _ctx: &mut Context<'_, Sqlite>,
    ) -> Result<(), HandlerError> {
        self.mailer.send_welcome(&event.email).await?;
        Ok(())
    }

    async fn deleted(
        &self,
        event: UserDeleted,
        ctx: &mut Context<'_, Sqlite>,
    ) -> Result<(), HandlerError> {
        sqlx::query("delete from profiles where id = $1")
            .bind(event.user_id.to_string())
            .execute(ctx.transaction()?)
            .await?; // committed with the position: exactly-once effect
        Ok(())
    }
}

/// Sums deposits per account; its three group members share the totals.
struct Projector {
    totals: Arc<Mutex<BTreeMap<u64, i64>>>,
}

impl Projector {
    fn new(totals: &Arc<Mutex<BTreeMap<u64, i64>>>) -> Self {
        Projector {
            totals: totals.clone(),
        }
    }
}

#[consumer(category = "account")]
impl Projector {
    async fn deposited(&self, event: Deposited) -> Result<(), HandlerError> {
        *self
            .totals
            .lock()
            .unwrap()
            .entry(event.account_id)
            .or_default() += event.amount;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn design_sections_one_to_four() {
    // 1. The generated struct: type, category, stream template and the schema's rules.
    assert_eq!(UserCreated::TYPE, "UserCreated");
    assert_eq!(UserCreated::CATEGORY, "user");
    assert_eq!(UserCreated::STREAM_TEMPLATE, "user-{user_id}");
    let invalid = UserCreated::decode(&json!({
        "user_id": Uuid::new_v4(), "email": "nope", "created_at": "2026-11-26T12:00:00Z"
    }))
    .expect_err("`format: email` is checked");
    assert!(invalid.to_string().contains("/email"), "{invalid}");

    let eventodb = EventoDb::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (eventodb_url, token) = (eventodb.url.clone(), eventodb.token.clone());

    // 2. Publishing goes through the outbox, inside the caller's transaction.
    let options = SqliteConnectOptions::from_str("sqlite://app.db")
        .expect("options")
        .filename(dir.path().join("app.db"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .expect("pool");
    eventodb_kit::migrate(&pool).await.expect("migrate");
    let kit = Kit::builder(eventodb_url)
        .token(token.expose_secret())
        .database(pool.clone())
        .build()
        .expect("kit");
    for table in [
        "create table users (id text primary key, email text not null)",
        "create table profiles (id text primary key, plan text not null)",
    ] {
        sqlx::query(table).execute(&pool).await.expect("app table");
    }

    let user = UserCreated {
        address: None,
        birth_date: None,
        created_at: chrono::Utc::now(),
        display_name: Some("Ada".into()),
        email: "ada@example.com".into(),
        marketing_opt_in: true,
        plan: UserCreatedPlan::Pro,
        referrer: None,
        user_id: Uuid::new_v4(),
    };
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("insert into users (id, email) values ($1, $2)")
        .bind(user.user_id.to_string())
        .bind(&user.email)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("insert into profiles (id, plan) values ($1, 'pro')")
        .bind(user.user_id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    kit.outbox().publish(&mut tx, &user).await.unwrap(); // stream from the template
    for _ in 0..4 {
        let deposit = Deposited {
            account_id: 7,
            amount: 10,
        };
        kit.outbox().publish(&mut tx, &deposit).await.unwrap();
    }
    let raw = kit
        .outbox()
        .write(
            &mut tx,
            "account-7",
            RawMessage::new("Deposited", json!({ "account_id": 7, "amount": 5 })),
        )
        .expected_version(3)
        .idempotency_key("deposit-7-2026-11-26")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Rolled back: nothing is ever sent.
    let mut tx = pool.begin().await.unwrap();
    let ghost = UserCreated {
        email: "ghost@example.com".into(),
        user_id: Uuid::new_v4(),
        ..user.clone()
    };
    kit.outbox().publish(&mut tx, &ghost).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    let deleted = UserDeleted {
        deleted_at: chrono::Utc::now(),
        erase_data: Some(true),
        reason: None,
        user_id: user.user_id,
    };
    let last = kit.outbox().publish(&mut tx, &deleted).await.unwrap();
    tx.commit().await.unwrap();

    // 4. One call runs the background work.
    let mailer = Mailer::default();
    let totals = Arc::new(Mutex::new(BTreeMap::new()));
    let mut workers = kit
        .workers()
        .outbox_sender(SenderOptions::default())
        .consumer(
            Welcome {
                mailer: mailer.clone(),
            },
            ConsumerOptions::new("welcome"),
        );
    for member in 0..3 {
        workers = workers.consumer(
            Projector::new(&totals),
            ConsumerOptions::new("projector").group(member, 3),
        );
    }
    let workers = workers.spawn().await.expect("spawn");

    // The sender keeps commit order within a stream, not across streams: wait for the last
    // event of each stream, then for every consumer to pass the later of the two.
    let mut sent = 0;
    for written in [raw, last] {
        let position = kit
            .outbox()
            .wait_sent(written.id, LONG)
            .await
            .expect("the outbox sent the stream's last event");
        sent = sent.max(position.global_position);
    }
    for handle in workers.consumers() {
        handle
            .wait_for(sent, LONG)
            .await
            .unwrap_or_else(|error| panic!("{} caught up: {error}", handle.name()));
    }
    workers.shutdown().await.expect("shutdown"); // finishes in-flight work, saves positions

    assert_eq!(mailer.sent(), ["ada@example.com"], "one welcome, no ghost");
    let profiles: i64 = sqlx::query_scalar("select count(*) from profiles")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(profiles, 0, "the deleted user's profile is gone");
    assert_eq!(
        *totals.lock().unwrap(),
        BTreeMap::from([(7, 45)]),
        "the group saw every deposit once"
    );

    // What EventoDB holds: each committed event once, in commit order per stream.
    let client = kit.client();
    let user_stream = client
        .stream_get(&user.stream_name(), &GetStreamOptions::new())
        .await
        .unwrap();
    let types: Vec<&str> = user_stream
        .iter()
        .map(|message| message.message_type.as_str())
        .collect();
    assert_eq!(types, ["UserCreated", "UserDeleted"]);
    assert!(
        client
            .stream_get(&ghost.stream_name(), &GetStreamOptions::new())
            .await
            .unwrap()
            .is_empty(),
        "the rolled-back event was never sent"
    );
    assert_eq!(
        client.stream_version("account-7").await.unwrap(),
        Some(4),
        "four published deposits and the raw one written at version 3"
    );

    pool.close().await;
    eventodb.finish().await;
}
