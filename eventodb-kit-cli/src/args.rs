//! The command line, as clap parses it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Operate eventodb-kit: apply its migrations, inspect and repair the outbox, inspect and
/// move consumers.
#[derive(Debug, Parser)]
#[command(name = "eventodb-kit", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Where to connect.
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// Print one JSON document instead of a table (errors too, as `{"error": ...}`).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Connection settings (flags win over the environment).
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The database holding eventodb-kit's tables: `postgres://...` or `sqlite:PATH`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// The EventoDB server (for consumer lag, and for `outbox discard` of a row that may have
    /// landed).
    #[arg(long, env = "EVENTODB_URL", global = true)]
    pub(crate) eventodb_url: Option<String>,
    /// The namespace token (`ns_...`); it picks the namespace (`default` without one).
    #[arg(long, env = "EVENTODB_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply eventodb-kit's migrations (or revert them with --down).
    Migrate(MigrateArgs),
    /// Inspect and repair the outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Inspect and move consumers.
    #[command(subcommand)]
    Consumer(ConsumerCommand),
}

/// `migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Revert the migrations above this version (0 removes every eventodb-kit table and its
    /// data).
    #[arg(
        long,
        value_name = "VERSION",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(0..)
    )]
    pub(crate) down: Option<i64>,
    /// Revert even though the outbox holds unsent (pending or failed) rows, or consumers have
    /// positions, that the reverted migrations delete.
    #[arg(long, requires = "down")]
    pub(crate) force: bool,
}

/// `outbox ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OutboxCommand {
    /// Pending, failed and sent rows, parked streams, the oldest pending row's age.
    Status,
    /// Send a failed row again: by message id, every failed row of a stream, or every failed
    /// row (--all, e.g. after a wrong token parked them all).
    Retry {
        /// A message id, or a stream name.
        #[arg(required_unless_present = "all")]
        target: Option<String>,
        /// Every failed row of the namespace.
        #[arg(long, conflicts_with_all = ["target", "without_expected_version"])]
        all: bool,
        /// Drop the row's expected version (override a version conflict).
        #[arg(long)]
        without_expected_version: bool,
    },
    /// Give up on an unsent row: it is never sent, and its stream flows again.
    Discard {
        /// The message id.
        id: uuid::Uuid,
    },
    /// Delete verified sent rows and discarded rows older than a retention.
    Purge {
        /// Keep rows younger than this (`30s`, `15m`, `12h`, `7d`).
        #[arg(long, value_name = "AGE", default_value = "7d", value_parser = parse_age)]
        older_than: Duration,
        /// Rows deleted per statement.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..))]
        batch: i64,
        /// Also sent rows never read back from EventoDB (for senders run without
        /// verification, whose rows are never verified).
        #[arg(long)]
        unverified: bool,
    },
}

/// `consumer ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConsumerCommand {
    /// Every consumer: category, group members, positions, lag (when EventoDB is reachable).
    List {
        /// Only consumers of this category.
        #[arg(long)]
        category: Option<String>,
    },
    /// Move a consumer (every member) to a global position; the events after it are
    /// handled again. A running consumer starts again from it: within its poll interval
    /// when idle, at its next save when busy.
    Reset {
        /// The consumer name.
        name: String,
        /// The last global position to treat as handled (0: from the start).
        #[arg(
            long,
            value_name = "POSITION",
            allow_negative_numbers = true,
            value_parser = clap::value_parser!(i64).range(0..)
        )]
        to: i64,
        /// The category, when consumers of several categories have this name.
        #[arg(long)]
        category: Option<String>,
        /// Reset even to a position that skips events unchecked: past the namespace's last
        /// event (checked when an EventoDB URL is given: the consumer would skip the events
        /// still to come up to it), or, without an EventoDB URL, any move forward.
        #[arg(long)]
        force: bool,
    },
    /// Events the consumers parked (and the streams they hold back), or with --skipped the
    /// events the `Skip` failure policy gave up on (kept as records).
    Parked {
        /// Only this consumer.
        name: Option<String>,
        /// Only consumers of this category.
        #[arg(long)]
        category: Option<String>,
        /// The skipped events instead.
        #[arg(long)]
        skipped: bool,
    },
    /// Release a parked stream: its parked events are handled again, in order.
    Release {
        /// The stream.
        stream: String,
        /// Only for this consumer (default: every consumer holding the stream back).
        #[arg(long)]
        consumer: Option<String>,
    },
}

/// Parses an age: a number and a unit (`s`, `m`, `h`, `d`), or a bare number of seconds.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an age like 30s, 15m, 12h or 7d"))?;
    let seconds_per_unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use s, m, h, d or w"
            ));
        }
    };
    amount
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
    }

    #[test]
    fn bad_ages_are_refused() {
        assert!(parse_age("").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("7y").unwrap_err().contains("unknown unit"));
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
