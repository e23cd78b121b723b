//! Test support: fresh databases (a temp SQLite file; a fresh PostgreSQL schema when
//! `DATABASE_URL` is set) and running the built `eventodb-kit` binary.

#![allow(dead_code, unreachable_pub)]

#[path = "../../../eventodb-kit/tests/pg_schema/mod.rs"]
mod pg_schema;

use std::future::Future;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Pool, Postgres, Sqlite};

/// A fresh database: its pool (for setting rows up through the library) and the URL the
/// binary connects with.
pub struct TestDb<DB: sqlx::Database> {
    pub pool: Pool<DB>,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres(pg_schema::Schema),
}

/// A temp-file SQLite database; migrated when `migrated`.
pub async fn sqlite(migrated: bool) -> TestDb<Sqlite> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kit.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("open sqlite");
    if migrated {
        eventodb_kit::migrate(&pool).await.expect("migrate");
    }
    TestDb {
        pool,
        url: format!("sqlite:{}", path.display()),
        cleanup: Cleanup::Sqlite(dir),
    }
}

/// A fresh schema in `DATABASE_URL`'s database; `None` (with a printed reason) when
/// `DATABASE_URL` is unset, a panic when it is unset and `EVENTODB_KIT_REQUIRE_POSTGRES` is set.
pub async fn postgres(migrated: bool) -> Option<TestDb<Postgres>> {
    let schema = pg_schema::Schema::create("cli").await?;
    // The binary gets the schema through the URL, as an operator would pass it.
    let url = schema.url();
    let pool = schema.pool(6).await;
    if migrated {
        eventodb_kit::migrate(&pool).await.expect("migrate");
    }
    Some(TestDb {
        pool,
        url,
        cleanup: Cleanup::Postgres(schema),
    })
}

impl<DB: sqlx::Database> TestDb<DB> {
    /// Drops the schema (PostgreSQL) or the temp dir (SQLite).
    pub async fn cleanup(self) {
        self.pool.close().await;
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres(schema) => schema.drop_all().await,
        }
    }
}

/// What a run of the binary printed, and its exit code.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The one JSON document on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}): {self:?}"))
    }

    /// Asserts exit 0 and returns the JSON document.
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self.json()
    }

    /// Asserts exit 1 with an error of `kind`; returns the message.
    pub fn failed(&self, kind: &str) -> String {
        assert_eq!(self.code, 1, "expected an operational error: {self:?}");
        let document = self.json();
        assert_eq!(document["error"]["kind"], kind, "{self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        document["error"]["message"].as_str().unwrap().to_owned()
    }
}

/// Runs `eventodb-kit` with `args`, a clean environment for its variables, and `env`.
pub async fn cli(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventodb-kit"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("EVENTODB_URL")
        .env_remove("EVENTODB_TOKEN")
        .env_remove("RUST_LOG")
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let shown = format!("{args:?}");
    // Off the async runtime: the binary may call a TestServer that runs on it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run eventodb-kit");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    // `EVENTODB_KIT_CLI_SHOW=1 cargo test -- --nocapture` prints every run.
    if std::env::var_os("EVENTODB_KIT_CLI_SHOW").is_some() {
        eprintln!(
            "$ eventodb-kit {shown}\n{}{}[exit {}]",
            run.stdout, run.stderr, run.code
        );
    }
    run
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
