//! The soak's PostgreSQL schema: a fresh schema per run (the shared helper of the kit's
//! tests), the kit's tables and the app's own.

use crate::pg_schema::{self, PgSchema};

/// Connects to `DATABASE_URL` and makes a fresh schema with the kit's tables and the app
/// tables: `None` with a printed reason when it is unset (a panic when
/// `EVENTODB_KIT_REQUIRE_POSTGRES` is set, as in CI).
pub(crate) async fn fresh() -> Option<PgSchema> {
    // Writers, two senders (claims, sends recorded, lease renewals), four consumers and
    // the checks all hold connections at once.
    let db = pg_schema::fresh("soak", 32).await?;
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
            .execute(&db.pool)
            .await
            .expect("app table");
    }
    Some(db)
}
