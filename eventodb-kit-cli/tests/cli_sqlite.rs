//! Every command against a temp-file SQLite database.

mod scenarios;
mod support;

async fn fresh(migrated: bool) -> Option<support::TestDb<sqlx::Sqlite>> {
    Some(support::sqlite(migrated).await)
}

scenarios!(fresh;
    migrate_applies_and_reverts: false,
    outbox_commands: true,
    consumer_commands: true,
    a_reset_reaches_a_running_consumer: true,
);
