//! Shared by the observability tests: a consumer that records what it saw, a fresh SQLite
//! database, and one publish through the outbox to that consumer.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventodb_kit::Kit;
use eventodb_kit::client::CategoryMessage;
use eventodb_kit::consumer::{
    BoxFuture, Consumer, ConsumerOptions, Context, Handled, HandlerError,
};
use eventodb_kit::outbox::{RawMessage, SenderOptions};
use eventodb_kit::trace_context::{self, TraceContext};
use eventodb_kit_testkit::TestServer;
use serde_json::{Value, json};
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub(crate) const LONG: Duration = Duration::from_secs(20);

/// A `MakeWriter` collecting everything a fmt subscriber writes.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// A fmt subscriber of events at `level` and above, without colours, writing here.
    pub(crate) fn subscriber(
        &self,
        level: tracing::Level,
    ) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// What was written so far, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// What the handler saw: the message metadata and the current trace context.
#[derive(Clone, Default)]
pub(crate) struct Seen(pub(crate) Arc<Mutex<Vec<Sighting>>>);

/// The metadata of a handled message and the trace context its handler ran in.
pub(crate) type Sighting = (Option<Value>, Option<TraceContext>);

struct Probe {
    category: String,
    seen: Seen,
}

impl Consumer<Sqlite> for Probe {
    fn category(&self) -> &str {
        &self.category
    }

    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        _ctx: &'a mut Context<'_, Sqlite>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            tracing::info!("probe handled");
            self.seen
                .0
                .lock()
                .unwrap()
                .push((message.metadata.clone(), trace_context::current()));
            Ok(Handled::Done)
        })
    }
}

pub(crate) async fn sqlite() -> (SqlitePool, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::from_str("sqlite://observe.db")
        .expect("options")
        .filename(dir.path().join("observe.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("sqlite pool");
    eventodb_kit::migrate(&pool).await.expect("migrate");
    (pool, dir)
}

pub(crate) async fn kit(server: &TestServer, pool: &SqlitePool) -> Kit<Sqlite> {
    Kit::builder(server.url())
        .token(server.default_token())
        .database(pool.clone())
        .build()
        .expect("kit")
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes one message through the outbox (in the current span / scope) and runs the sender
/// and a `Probe` consumer until it was handled.
pub(crate) async fn publish_and_consume(
    kit: &Kit<Sqlite>,
    pool: &SqlitePool,
    category: &str,
) -> Seen {
    let seen = Seen::default();
    let workers = kit
        .workers()
        .outbox_sender(SenderOptions::default())
        .consumer(
            Probe {
                category: category.into(),
                seen: seen.clone(),
            },
            ConsumerOptions::new("probe"),
        )
        .spawn()
        .await
        .expect("spawn");
    let mut tx = pool.begin().await.unwrap();
    kit.outbox()
        .write(
            &mut *tx,
            format!("{category}-1"),
            RawMessage::new("Happened", json!({ "n": 1 })),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    eventually("handled", || !seen.0.lock().unwrap().is_empty()).await;
    workers.shutdown().await.unwrap();
    seen
}
