//! The tables of eventodb-kit (outbox, consumer positions, processed and parked events),
//! versioned in their own table `eventodb_kit_migrations` (never sqlx's
//! `_sqlx_migrations`, which the application may own).
//!
//! [`migrate`] applies what is missing, under a lock (several processes may start at once),
//! in one transaction. The SQL also ships in the crate's `migrations/{postgres,sqlite}/`
//! folder and through [`migrations`], for applications that run it from their own migration
//! tool instead (do one or the other, not both).
//!
//! # Examples
//! ```no_run
//! # async fn run() -> eventodb_kit::Result<()> {
//! let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/app").await.unwrap();
//! eventodb_kit::migrate(&pool).await?;
//! for step in eventodb_kit::migrations::<sqlx::Postgres>() {
//!     println!("{:04}_{}.up.sql: {} bytes", step.version, step.name, step.up.len());
//! }
//! # Ok(()) }
//! ```

use sqlx::Pool;

use crate::error::Result;
use crate::outbox::{Backend, Migration};

/// Applies every migration the database lacks; returns the versions applied (empty when up
/// to date). Safe to call at every start, from several processes at once.
///
/// # Errors
/// [`Error::Migration`](crate::Error::Migration) naming the failing step (nothing of the
/// run is kept), [`Error::Database`](crate::Error::Database).
pub async fn migrate<DB: Backend>(pool: &Pool<DB>) -> Result<Vec<i64>> {
    let applied = DB::migrate_up(pool).await?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "eventodb-kit migrations applied");
    }
    Ok(applied)
}

/// Reverts the migrations above `target` (`0` removes every table of eventodb-kit, with
/// their data); returns the versions reverted, newest first.
///
/// # Errors
/// As for [`migrate`].
pub async fn migrate_down<DB: Backend>(pool: &Pool<DB>, target: i64) -> Result<Vec<i64>> {
    let reverted = DB::migrate_down(pool, target).await?;
    if !reverted.is_empty() {
        tracing::info!(versions = ?reverted, "eventodb-kit migrations reverted");
    }
    Ok(reverted)
}

/// The migrations of a database, oldest first, to copy into an application's own migrations.
pub fn migrations<DB: Backend>() -> &'static [Migration] {
    DB::MIGRATIONS
}
