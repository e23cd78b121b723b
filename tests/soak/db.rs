//! The soak's PostgreSQL schema: a fresh schema per run, the kit's tables and the app's own.

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A fresh schema with the kit's tables and the app tables, dropped by [`TestDb::cleanup`].
pub(crate) struct TestDb {
    pub(crate) pool: PgPool,
    url: String,
    schema: String,
}

/// Connects to `DATABASE_URL`: `None` with a printed reason when it is unset (a panic when
/// `EVENTODB_KIT_REQUIRE_POSTGRES` is set, as in CI).
pub(crate) async fn fresh() -> Option<TestDb> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var_os("EVENTODB_KIT_REQUIRE_POSTGRES").is_none(),
            "EVENTODB_KIT_REQUIRE_POSTGRES is set but DATABASE_URL is not"
        );
        eprintln!(
            "skipped soak: DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        return None;
    };
    let schema = format!("soak_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&url)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create schema");
    admin.close().await;
    let options = PgConnectOptions::from_str(&url)
        .expect("DATABASE_URL")
        .options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect_with(options)
        .await
        .expect("pool");
    eventodb_kit::migrate(&pool).await.expect("migrate");
    // The app's tables. `soak_streams` is the aggregate row a writer locks before it writes to
    // a stream: it serializes the writers of one stream (so commit order is seq order) and
    // carries the stream's version for the expectedVersion chains. `soak_effects` gets one
    // plain row per handled event, deliberately without a unique constraint: a duplicate
    // effect shows up in the count instead of failing a handler.
    for statement in [
        "CREATE TABLE soak_streams (stream TEXT PRIMARY KEY, version BIGINT NOT NULL)",
        "CREATE TABLE soak_effects (n BIGSERIAL PRIMARY KEY, event_id UUID NOT NULL,
            stream TEXT NOT NULL, member INT NOT NULL)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect("app table");
    }
    Some(TestDb { pool, url, schema })
}

impl TestDb {
    /// Closes the pool and drops the schema.
    pub(crate) async fn cleanup(self) {
        self.pool.close().await;
        if let Ok(admin) = PgPool::connect(&self.url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}
