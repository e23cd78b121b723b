//! Database set-up shared by the benches: a SQLite file pool as an application would
//! configure it, and PostgreSQL pools in a schema of their own (dropped afterwards).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The benches' error type.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A pool of 8 connections on a SQLite file in WAL mode with `synchronous = NORMAL`.
pub(crate) async fn sqlite_pool(path: &std::path::Path) -> Result<sqlx::SqlitePool, BoxError> {
    let options = SqliteConnectOptions::from_str("sqlite://bench.db")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30));
    Ok(SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?)
}

/// A pool of 16 connections whose `search_path` is a new schema named `{prefix}_{uuid}`;
/// returns the schema's name for [`drop_schema`].
pub(crate) async fn pg_pool(url: &str, prefix: &str) -> Result<(sqlx::PgPool, String), BoxError> {
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(url).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let options = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await?;
    Ok((pool, schema))
}

/// Drops a schema made by [`pg_pool`] (best effort: a bench's figures matter more).
pub(crate) async fn drop_schema(url: &str, schema: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}
