//! What can go wrong, worded for an operator (never a token, never a password, never a raw
//! sqlx dump).

/// An operational error: the command ran and failed (exit code 1).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// No database URL was given.
    #[error("no database: pass --database-url or set DATABASE_URL (postgres://... or sqlite:PATH)")]
    NoDatabase,
    /// The database URL does not parse or names an unsupported database.
    #[error("invalid database URL: {0}")]
    InvalidDatabaseUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot connect to {target}: {reason}")]
    Unreachable {
        /// The database, without credentials.
        target: String,
        /// Why.
        reason: String,
    },
    /// The tables of eventodb-kit are not there.
    #[error("eventodb-kit's tables are missing in {target}: run `eventodb-kit migrate` first")]
    MissingTables {
        /// The database, without credentials.
        target: String,
    },
    /// The token does not parse (the message never contains the token).
    #[error("malformed EventoDB token (--token / EVENTODB_TOKEN): {0}")]
    InvalidToken(String),
    /// The EventoDB URL is not usable.
    #[error("invalid EventoDB URL: {0}")]
    InvalidEventodbUrl(String),
    /// The thing the command names does not exist (or is not in the needed state).
    #[error("{0}")]
    NotFound(String),
    /// The command's arguments fit more than one thing.
    #[error("{0}")]
    Ambiguous(String),
    /// The thing exists, but is not in a state the command applies to (a sent row to
    /// retry): a script can tell "done already" from a typo.
    #[error("{0}")]
    WrongState(String),
    /// The command would destroy data the operator did not say to give up, or undo what
    /// cannot be undone (discard an event EventoDB already holds).
    #[error("{0}")]
    Refused(String),
    /// A database statement failed.
    #[error("database error: {0}")]
    Database(String),
    /// Anything else eventodb-kit reported.
    #[error("{0}")]
    Kit(String),
}

impl CliError {
    /// The same error, of the same kind, with `note` added to its message.
    pub(crate) fn noting(self, note: &str) -> Self {
        match self {
            CliError::NotFound(m) => CliError::NotFound(format!("{m}; {note}")),
            CliError::Ambiguous(m) => CliError::Ambiguous(format!("{m}; {note}")),
            CliError::WrongState(m) => CliError::WrongState(format!("{m}; {note}")),
            CliError::Refused(m) => CliError::Refused(format!("{m}; {note}")),
            CliError::Database(m) => CliError::Database(format!("{m}; {note}")),
            CliError::Kit(m) => CliError::Kit(format!("{m}; {note}")),
            CliError::InvalidToken(m) => CliError::InvalidToken(format!("{m}; {note}")),
            CliError::InvalidDatabaseUrl(m) => CliError::InvalidDatabaseUrl(format!("{m}; {note}")),
            CliError::InvalidEventodbUrl(m) => CliError::InvalidEventodbUrl(format!("{m}; {note}")),
            CliError::Unreachable { target, reason } => CliError::Unreachable {
                target,
                reason: format!("{reason}; {note}"),
            },
            other @ (CliError::NoDatabase | CliError::MissingTables { .. }) => other,
        }
    }

    /// A short machine-readable kind, for `--json`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CliError::NoDatabase => "no_database",
            CliError::InvalidDatabaseUrl(_) => "invalid_database_url",
            CliError::Unreachable { .. } => "unreachable",
            CliError::MissingTables { .. } => "missing_tables",
            CliError::InvalidToken(_) => "invalid_token",
            CliError::InvalidEventodbUrl(_) => "invalid_eventodb_url",
            CliError::NotFound(_) => "not_found",
            CliError::Ambiguous(_) => "ambiguous",
            CliError::WrongState(_) => "wrong_state",
            CliError::Refused(_) => "refused",
            CliError::Database(_) => "database",
            CliError::Kit(_) => "error",
        }
    }

    /// Words an error of eventodb-kit, recognising missing tables and lost connections.
    pub(crate) fn from_kit(error: eventodb_kit::Error, target: &str) -> Self {
        match error {
            eventodb_kit::Error::Database { source }
            | eventodb_kit::Error::NotMigrated { source } => Self::from_sqlx(&source, target),
            eventodb_kit::Error::OutboxRowAlreadySent { .. } => {
                CliError::Refused(error.to_string())
            }
            // Not a failure of the tool: the row is in a state the command cannot apply to
            // now, which a script can wait out.
            eventodb_kit::Error::OutboxRowInFlight { .. } => {
                CliError::WrongState(error.to_string())
            }
            eventodb_kit::Error::Migration { version, message } => {
                CliError::Database(format!("migration {version} failed: {message}"))
            }
            other => CliError::Kit(other.to_string()),
        }
    }

    /// Words a sqlx error.
    pub(crate) fn from_sqlx(error: &sqlx::Error, target: &str) -> Self {
        match error {
            sqlx::Error::Database(db) => {
                let message = db.message();
                // PostgreSQL: undefined_table; SQLite: "no such table".
                if db.code().as_deref() == Some("42P01") || message.contains("no such table") {
                    CliError::MissingTables {
                        target: target.to_owned(),
                    }
                } else {
                    CliError::Database(message.to_owned())
                }
            }
            sqlx::Error::Io(io) => CliError::Unreachable {
                target: target.to_owned(),
                reason: io.to_string(),
            },
            sqlx::Error::Tls(tls) => CliError::Unreachable {
                target: target.to_owned(),
                reason: format!("TLS: {tls}"),
            },
            sqlx::Error::PoolTimedOut => CliError::Unreachable {
                target: target.to_owned(),
                reason: "timed out".to_owned(),
            },
            sqlx::Error::Configuration(config) => CliError::InvalidDatabaseUrl(config.to_string()),
            other => CliError::Database(other.to_string()),
        }
    }
}
