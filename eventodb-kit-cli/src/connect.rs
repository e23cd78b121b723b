//! Opening the database (the backend follows the URL's scheme) and the EventoDB client.

use std::str::FromStr;
use std::time::Duration;

use eventodb_kit::Client;
use eventodb_kit::client::Token;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, SqlitePool};

use crate::args::Connection;
use crate::error::CliError;

/// How long to wait for the database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// EventoDB URL used when none is given (the outbox API needs a client). Port 9 (discard):
/// a lookup a command needs anyway (a discard's) then fails instead of asking whatever
/// server runs on EventoDB's default port, which may not hold the namespace's events.
const NO_EVENTODB: &str = "http://127.0.0.1:9";

/// An open database of one of the supported kinds.
pub(crate) enum Database {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// Everything a command needs: the database, a client, and how to name the database in
/// messages (without credentials).
pub(crate) struct Connected {
    /// The database.
    pub(crate) database: Database,
    /// The EventoDB client (its URL is a placeholder when none was given).
    pub(crate) client: Client,
    /// Whether an EventoDB URL was given.
    pub(crate) has_eventodb: bool,
    /// The database, for messages.
    pub(crate) target: String,
}

impl Connected {
    /// The namespace the token names (`default` without a token).
    pub(crate) fn namespace(&self) -> &str {
        self.client.namespace().unwrap_or("default")
    }
}

/// Checks the token and the EventoDB URL, then opens the database. `create` makes a missing
/// SQLite file (for `migrate`).
pub(crate) async fn connect(connection: &Connection, create: bool) -> Result<Connected, CliError> {
    let client = client(connection)?;
    let url = connection
        .database_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
        .ok_or(CliError::NoDatabase)?;
    let (database, target) = open(url, create).await?;
    Ok(Connected {
        database,
        client,
        has_eventodb: connection
            .eventodb_url
            .as_deref()
            .is_some_and(|url| !url.is_empty()),
        target,
    })
}

fn client(connection: &Connection) -> Result<Client, CliError> {
    let url = connection
        .eventodb_url
        .as_deref()
        .filter(|url| !url.is_empty())
        .unwrap_or(NO_EVENTODB);
    let mut builder = Client::builder(url)
        .connect_timeout(CONNECT_TIMEOUT)
        .request_timeout(Duration::from_secs(15));
    if let Some(token) = connection.token.as_deref().filter(|t| !t.is_empty()) {
        let token = Token::parse(token).map_err(|error| match error {
            eventodb_kit::Error::InvalidToken(message) => CliError::InvalidToken(message),
            other => CliError::InvalidToken(other.to_string()),
        })?;
        builder = builder.token(token);
    }
    builder
        .build()
        .map_err(|error| CliError::InvalidEventodbUrl(error.to_string()))
}

/// The backend a URL names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Postgres,
    Sqlite,
}

pub(crate) fn kind(url: &str) -> Result<Kind, CliError> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some("postgres" | "postgresql") => Ok(Kind::Postgres),
        Some("sqlite") => Ok(Kind::Sqlite),
        Some(other) if !other.is_empty() && !other.contains('/') => {
            Err(CliError::InvalidDatabaseUrl(format!(
                "unsupported scheme `{other}:`; use postgres://... or sqlite:PATH"
            )))
        }
        _ => Err(CliError::InvalidDatabaseUrl(
            "expected postgres://... or sqlite:PATH".to_owned(),
        )),
    }
}

async fn open(url: &str, create: bool) -> Result<(Database, String), CliError> {
    match kind(url)? {
        Kind::Postgres => {
            let options = PgConnectOptions::from_str(url)
                .map_err(|error| CliError::InvalidDatabaseUrl(describe_parse_error(&error)))?;
            let server = format!(
                "PostgreSQL database {:?} at {}:{}",
                options.get_database().unwrap_or("postgres"),
                options.get_host(),
                options.get_port()
            );
            // One direct attempt first: the pool would retry until its timeout and then
            // only say "timed out", hiding "connection refused" or "password failed".
            let mut first =
                tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
                    .await
                    .map_err(|_| CliError::Unreachable {
                        target: server.clone(),
                        reason: format!("no answer within {CONNECT_TIMEOUT:?}"),
                    })?
                    .map_err(|error| unreachable_or(&error, &server))?;
            // The schema the tables are looked for (and made) in: an operator who forgot
            // `search_path` in the URL must see it before running `migrate` there.
            let schema: Result<Option<String>, _> = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&mut first)
                .await;
            let target = match schema {
                Ok(Some(schema)) => format!("{server}, schema {schema:?}"),
                Ok(None) => format!("{server}, where no schema of the search_path exists"),
                // Not known: the commands report what went wrong themselves.
                Err(_) => server,
            };
            let _ = first.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|error| unreachable_or(&error, &target))?;
            Ok((Database::Postgres(pool), target))
        }
        Kind::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|error| CliError::InvalidDatabaseUrl(describe_parse_error(&error)))?
                .create_if_missing(create)
                .busy_timeout(CONNECT_TIMEOUT);
            let target = format!("SQLite database {}", options.get_filename().display());
            let in_memory = options.get_filename().as_os_str().is_empty()
                || options.get_filename().as_os_str() == ":memory:";
            if !create && !in_memory && !options.get_filename().exists() {
                return Err(CliError::Unreachable {
                    target,
                    reason: "the file does not exist (`eventodb-kit migrate` creates it)"
                        .to_owned(),
                });
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|error| unreachable_or(&error, &target))?;
            Ok((Database::Sqlite(pool), target))
        }
    }
}

/// A connection failure: unreachable, unless the server answered with something specific
/// (bad password, unknown database).
fn unreachable_or(error: &sqlx::Error, target: &str) -> CliError {
    let reason = match error {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out".to_owned(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Configuration(config) => config.to_string(),
        other => other.to_string(),
    };
    CliError::Unreachable {
        target: target.to_owned(),
        reason,
    }
}

/// A URL parse error without the URL (it may hold a password).
fn describe_parse_error(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Configuration(source) => source.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(kind("postgres://u@h/db").unwrap(), Kind::Postgres);
        assert_eq!(kind("postgresql://u@h/db").unwrap(), Kind::Postgres);
        assert_eq!(kind("sqlite:app.db").unwrap(), Kind::Sqlite);
        assert_eq!(kind("sqlite:///tmp/app.db").unwrap(), Kind::Sqlite);
        assert_eq!(kind("sqlite::memory:").unwrap(), Kind::Sqlite);
    }

    #[test]
    fn other_schemes_are_refused_with_a_hint() {
        let error = kind("mysql://root@h/db").unwrap_err().to_string();
        assert!(error.contains("`mysql:`"), "{error}");
        assert!(error.contains("postgres://"), "{error}");
        assert!(kind("/var/lib/app.db").is_err());
        assert!(kind("").is_err());
    }
}
