//! Every command against PostgreSQL (`DATABASE_URL`; a fresh schema per test, passed to the
//! binary through the URL's `options=-c search_path=...`). Skipped, with a printed reason,
//! when `DATABASE_URL` is unset (a failure when `EVENTODB_KIT_REQUIRE_POSTGRES` is set).

mod scenarios;
mod support;

scenarios!(support::postgres;
    migrate_applies_and_reverts: false,
    outbox_commands: true,
    consumer_commands: true,
    a_reset_reaches_a_running_consumer: true,
);
