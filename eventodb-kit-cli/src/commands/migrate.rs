//! `migrate` and `migrate --down`.

use eventodb_kit::Backend;
use serde::Serialize;
use sqlx::Pool;

use super::{kit_error, with_pool};
use crate::args::MigrateArgs;
use crate::connect::Connected;
use crate::error::CliError;
use crate::output::{Rendered, Report};

/// What `migrate` did.
#[derive(Debug, Serialize)]
struct MigrateReport {
    /// `up` or `down`.
    direction: &'static str,
    /// Versions applied (up, oldest first) or reverted (down, newest first).
    versions: Vec<i64>,
    /// The newest version this CLI knows.
    latest: i64,
    /// The target of `--down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<i64>,
}

impl Report for MigrateReport {
    fn render(&self) -> String {
        let list = |versions: &[i64]| {
            versions
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.direction, self.versions.is_empty()) {
            ("up", true) => format!("up to date (version {})\n", self.latest),
            ("up", false) => format!(
                "applied {} (now at version {})\n",
                list(&self.versions),
                self.latest
            ),
            (_, true) => format!(
                "nothing to revert above version {}\n",
                self.target.unwrap_or(0)
            ),
            (_, false) => format!(
                "reverted {} (now at version {})\n",
                list(&self.versions),
                self.target.unwrap_or(0)
            ),
        }
    }
}

pub(super) async fn run(connected: &Connected, args: &MigrateArgs) -> Result<Rendered, CliError> {
    if let Some(target) = args.down
        && !args.force
    {
        refuse_to_lose_data(connected, target).await?;
    }
    let report = with_pool!(connected, |pool| migrate(pool, args.down).await)
        .map_err(kit_error(connected))?;
    Ok(Rendered::new(&report))
}

async fn migrate<DB: Backend>(
    pool: &Pool<DB>,
    down: Option<i64>,
) -> eventodb_kit::Result<MigrateReport> {
    let latest = eventodb_kit::migrations::<DB>()
        .iter()
        .map(|step| step.version)
        .max()
        .unwrap_or(0);
    Ok(match down {
        None => MigrateReport {
            direction: "up",
            versions: eventodb_kit::migrate(pool).await?,
            latest,
            target: None,
        },
        Some(target) => MigrateReport {
            direction: "down",
            versions: eventodb_kit::migrate_down(pool, target).await?,
            latest,
            target: Some(target),
        },
    })
}

/// Refuses a `--down` that would delete what the operator did not say to give up: unsent
/// outbox rows (every step down changes the sender's tables, and the first one drops them),
/// and consumer positions (below version 2). Counted over every namespace: the tables are
/// shared. A table already gone holds nothing.
async fn refuse_to_lose_data(connected: &Connected, target: i64) -> Result<(), CliError> {
    let count = |sql: &'static str| async move {
        let counted = with_pool!(connected, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await);
        match counted {
            Ok(count) => Ok(count),
            // Only a missing table counts as empty: any other error may hide rows.
            Err(error) => match CliError::from_sqlx(&error, &connected.target) {
                CliError::MissingTables { .. } => Ok(0),
                other => Err(other),
            },
        }
    };
    let unsent =
        count("SELECT count(*) FROM eventodb_kit_outbox WHERE status IN ('pending', 'failed')")
            .await?;
    let positions = if target < 2 {
        count("SELECT count(*) FROM eventodb_kit_consumer_positions").await?
    } else {
        0
    };
    let mut at_risk = Vec::new();
    if unsent > 0 {
        at_risk.push(format!(
            "{unsent} unsent outbox rows (pending or failed: never delivered to EventoDB)"
        ));
    }
    if positions > 0 {
        at_risk.push(format!("{positions} consumer positions"));
    }
    if at_risk.is_empty() {
        return Ok(());
    }
    Err(CliError::Refused(format!(
        "reverting to version {target} would lose {}: let the sender drain first (`eventodb-kit outbox status`), or pass --force",
        at_risk.join(" and ")
    )))
}
