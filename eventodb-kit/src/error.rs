//! The crate's one error type.
//!
//! Every fallible call of eventodb-kit returns [`Error`]. The variants say *where* a failure
//! came from (the server, the network, a reply we could not read, an argument we refused
//! before sending); the helper methods ([`Error::is_transient`], [`Error::outcome_unknown`],
//! [`Error::is_duplicate_id`], [`Error::is_version_conflict`]) say what a caller should do
//! about it.
//!
//! As the Rust API guidelines ask, an error's message leaves its cause to
//! [`source()`](std::error::Error::source): `{error}` shows "database error", and the
//! database's own message is the next link of the chain. Print the whole chain to see it:
//! `anyhow`'s `{:#}`, `eyre`, `tracing` (an error recorded as a field), or a loop over
//! `source()`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` as a `tracing` field value that keeps its causes. The messages of this crate's
/// errors leave the cause to `source()` (so that reports do not repeat it), and `%error`
/// records the message alone: a lost connection logged "database error" and nothing more.
/// Recorded as an error, subscribers print the chain (`tracing_subscriber::fmt` adds
/// `error.sources=[…]`).
pub(crate) fn log_field<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> &'e (dyn std::error::Error + 'static) {
    error
}

/// `error`'s message followed by its causes, one line: for text an operator reads with no
/// log at hand (an outbox row's `last_error`, a consumer's `stop_error`).
pub(crate) fn with_causes(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `error` as [`Error::NotMigrated`] when the database says one of the kit's tables or columns
/// does not exist (PostgreSQL `42P01`, `42703`; SQLite "no such table", "no such column"),
/// else as [`Error::Database`].
pub(crate) fn database_or_not_migrated(source: sqlx::Error) -> Error {
    let missing = match &source {
        sqlx::Error::Database(error) => {
            matches!(error.code().as_deref(), Some("42P01" | "42703"))
                || error.message().contains("no such table: eventodb_kit_")
                || error.message().contains("no such column")
        }
        _ => false,
    };
    if missing {
        Error::NotMigrated { source }
    } else {
        Error::Database { source }
    }
}

/// The same for an error of ours: a [`Error::Database`] that says a table or column is
/// missing becomes [`Error::NotMigrated`].
pub(crate) fn or_not_migrated(error: Error) -> Error {
    match error {
        Error::Database { source } => database_or_not_migrated(source),
        other => other,
    }
}

/// Whether a database operation failed in a way that waiting can mend: the connection refused,
/// reset or timed out, the server starting up or shutting down (`57P01` to `57P03`), a
/// connection exception (class `08`), or too many connections (`53300`). Not: authentication,
/// a missing database or role, TLS or configuration errors, or anything a statement did.
pub(crate) fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

/// Whether a statement failed in a way that running it again cannot mend: what it wrote
/// breaks a constraint, or its data cannot be stored. PostgreSQL: data exceptions (class
/// `22`, e.g. `22P05` for a NUL in JSON), integrity constraints (`23`), syntax rules (`42`,
/// but not `42501`, a missing privilege, which a `GRANT` mends). SQLite:
/// `SQLITE_CONSTRAINT` (19, a deferred foreign key included), `SQLITE_TOOBIG` (18),
/// `SQLITE_MISMATCH` (20) and `SQLITE_RANGE` (25), with any extended code. Not a read-only
/// transaction (`25006`): a failover or a full disk makes one for a while.
pub(crate) fn database_refuses_for_good(error: &sqlx::Error) -> bool {
    let Some(code) = error.as_database_error().and_then(|error| error.code()) else {
        return false;
    };
    // A PostgreSQL SQLSTATE has five characters; SQLite's extended result codes are
    // numbers below 4096, so at most four digits.
    if code.len() == 5 {
        ["22", "23", "42"]
            .iter()
            .any(|class| code.starts_with(class))
            && code != "42501"
    } else {
        code.parse::<u32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 18 | 19 | 20 | 25))
    }
}

/// Everything that can go wrong in eventodb-kit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a JSON error (`{"error":{"code",..}}`), other than a version
    /// conflict (see [`Error::VersionConflict`]).
    #[error("server error {code} (HTTP {status}): {message}")]
    Server {
        /// The error code, e.g. [`ErrorCode::InvalidRequest`].
        code: ErrorCode,
        /// The HTTP status of the reply.
        status: u16,
        /// The server's message, verbatim.
        message: String,
        /// The optional `details` object of the reply.
        details: Option<Value>,
    },
    /// `stream.write` with `expectedVersion` found the stream at another version
    /// (`STREAM_VERSION_CONFLICT`, HTTP 409).
    ///
    /// `expected` and `actual` are only known when the server sent them in `details` (the
    /// SQLite backend does; PostgreSQL and Pebble do not).
    #[error("version conflict: {message}")]
    VersionConflict {
        /// The server's message, verbatim.
        message: String,
        /// The version the write expected, when the server said.
        expected: Option<i64>,
        /// The version the stream was at, when the server said.
        actual: Option<i64>,
    },
    /// The server answered with an error status and a body that is not a JSON error, e.g.
    /// `400 Error when parsing request` (body over 100 MiB), `431 Too big request header`,
    /// `408 Request timeout`, a plain-text `/subscribe` validation error or a proxy's 502.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        /// The URL that was called (never contains the token).
        url: String,
        /// The HTTP status of the reply.
        status: u16,
        /// The body of the reply (lossy UTF-8, cut after 1 KiB).
        body: String,
    },
    /// The request could not be sent or the reply could not be received: connection
    /// refused or reset, DNS failure, reply cut short.
    #[error("transport error talking to {url}")]
    Transport {
        /// The URL that was called (never contains the token).
        url: String,
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// No complete reply arrived within the configured timeout.
    #[error("no reply from {url} within {after:?}")]
    Timeout {
        /// The URL that was called (never contains the token).
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The server answered 200 but the body was not what the protocol promises.
    #[error("could not decode the reply: expected {expected}; body: {body}")]
    Decode {
        /// What we expected, and why it did not fit.
        expected: String,
        /// The start of the body (lossy UTF-8, cut after 1 KiB).
        body: String,
    },
    /// A token string does not have the form `ns_<base64url namespace>_<64 hex>`. The
    /// message is the server's wording; it never contains the token.
    #[error("{0}")]
    InvalidToken(String),
    /// An argument was rejected before anything was sent or stored.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A background task of this crate failed unexpectedly (a bug; please report it).
    #[error("internal error: {0}")]
    Internal(String),
    /// A database statement of the outbox, the consumers or the migrations failed.
    #[error("database error")]
    Database {
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },
    /// A table or column of eventodb-kit is missing: the database was never migrated, or by
    /// an older version. Run [`migrate`](crate::migrate()) at start (or apply
    /// [`migrations`](crate::migrations) with your own migration tool).
    #[error(
        "the eventodb-kit tables are missing or out of date: run eventodb_kit::migrate(&pool) first"
    )]
    NotMigrated {
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration step failed; nothing of the run was applied (it runs in one transaction).
    #[error("migration {version} failed: {message}")]
    Migration {
        /// The version of the failing step.
        version: i64,
        /// The database's message.
        message: String,
    },
    /// An idempotency key was reused with different content (stream, type, data, metadata,
    /// expected version or id): the first write stands.
    #[error(
        "idempotency key {key:?} already names outbox message {existing_id} with other content"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The id of the message that holds the key.
        existing_id: uuid::Uuid,
    },
    /// The idempotency key's row was neither inserted nor visible (a transaction isolation
    /// stricter than read committed hid the winner): retry the transaction.
    #[error("idempotency key {key:?} is held by a row this transaction cannot see; retry")]
    OutboxIdempotencyRace {
        /// The key.
        key: String,
    },
    /// A custom message id is already used by another outbox row of the namespace (ids are
    /// unique per namespace, as in EventoDB).
    #[error("message id {id} is already in the outbox")]
    OutboxDuplicateId {
        /// The id.
        id: String,
    },
    /// An operator asked to discard an outbox row that a sender is sending right now (its
    /// stream is leased over the row), or whose last write, of unknown outcome, may still
    /// land in EventoDB: discarding it could not stop the send. Try again once the send is
    /// recorded (the row is then `sent`) or its lookup is due, or park the stream first.
    #[error("outbox row {id} is being sent now; it cannot be discarded while it is")]
    OutboxRowInFlight {
        /// The row's message id.
        id: String,
    },
    /// An operator asked to discard an outbox row whose earlier attempt did reach EventoDB
    /// (its id was found in the stream): the event cannot be taken back. The sender records
    /// the row as sent when it next takes it up (a parked row once it is retried).
    #[error(
        "outbox row {id} is already in EventoDB (stream {stream}, position {position}): it cannot be discarded"
    )]
    OutboxRowAlreadySent {
        /// The row's message id.
        id: String,
        /// Its stream.
        stream: String,
        /// Where EventoDB holds it in the stream.
        position: i64,
    },
    /// An operator reset the consumer's position
    /// ([`ConsumerAdmin::reset_position`](crate::consumer::ConsumerAdmin::reset_position))
    /// while it ran; seen when the consumer saved its own, which was rolled back. The
    /// consumer handles it itself: it starts again from the new position.
    #[error("consumer {consumer}: its position was reset while it ran")]
    ConsumerPositionReset {
        /// The consumer's name.
        consumer: String,
    },
    /// EventoDB no longer holds the event a consumer read last, at its position: it lost
    /// events it had acknowledged (a crashed Pebble-backed server loses every write since it
    /// opened), or it is another store. Events written since may take global positions up to
    /// the consumer's, which it would skip without a word: it stops instead. Reset its
    /// position ([`ConsumerAdmin::reset_position`](crate::consumer::ConsumerAdmin::reset_position))
    /// to where it should read again, and start it.
    #[error(
        "consumer {consumer}: EventoDB no longer holds the event at global position {position} of category {category:?} that it read last (EventoDB lost events, or is another store); stopped rather than skip events written at positions up to it: reset its position to resume"
    )]
    ConsumerPositionLost {
        /// The consumer's name.
        consumer: String,
        /// The category it reads.
        category: String,
        /// Its position: the global position of the event it read last.
        position: i64,
    },
    /// [`Outbox::wait_sent`](crate::outbox::Outbox::wait_sent) waited for a row that is
    /// parked: a permanent failure holds it (and its stream) until an operator retries or
    /// discards it.
    #[error("outbox row {id} failed and is parked until it is retried or discarded: {error}")]
    OutboxRowFailed {
        /// The row's message id.
        id: String,
        /// The error its last attempt got.
        error: String,
    },
    /// [`Outbox::wait_sent`](crate::outbox::Outbox::wait_sent) gave up: the row was not sent
    /// within the timeout.
    #[error(
        "outbox row {id} was not sent within {after:?} ({})",
        match held_by {
            Some(failed) => format!("its stream is held back behind failed row {failed}: retry or discard that one"),
            None => format!(
                "still pending after {attempts} attempts{}; is an outbox sender running?",
                last_error.as_deref().map(|error| format!(", the last one failed: {error}")).unwrap_or_default()
            ),
        }
    )]
    OutboxWaitTimeout {
        /// The row's message id.
        id: String,
        /// How often it was tried.
        attempts: i64,
        /// The error of its last attempt, if it failed.
        last_error: Option<String>,
        /// A failed row of the same stream, which holds this one back.
        held_by: Option<uuid::Uuid>,
        /// The timeout.
        after: Duration,
    },
    /// An event failed its own validation before it was written.
    #[error(transparent)]
    InvalidEvent(#[from] crate::event::ValidationError),
    /// A background worker stopped with an error or a panic.
    #[error("worker {worker} died: {message}")]
    WorkerDied {
        /// Which worker, e.g. `outbox sender`.
        worker: String,
        /// What happened.
        message: String,
    },
    /// [`Sender::drain`](crate::outbox::Sender::drain) gave up: rows were still pending at
    /// the deadline (the sender was shut down; they stay for the next one).
    #[error(
        "the outbox still held {pending} pending rows after {after:?}{}{}",
        retry_error.as_deref().map(|error| format!("; the last failed attempt: {error}")).unwrap_or_default(),
        if *failed > 0 { format!("; {failed} failed rows hold their streams back until they are retried or discarded") } else { String::new() }
    )]
    OutboxDrainTimeout {
        /// Rows still pending (those held back behind a failed row of their stream too).
        pending: u64,
        /// Rows parked by a permanent failure: each holds back the later rows of its stream.
        failed: u64,
        /// Why some were waiting for a retry (EventoDB down, a timeout), if any were.
        retry_error: Option<String>,
        /// The deadline.
        after: Duration,
    },
    /// Shutting down did not finish within the deadline.
    #[error("shutdown did not finish within {after:?}")]
    ShutdownTimeout {
        /// The deadline.
        after: Duration,
    },
    /// A consumer stopped at an event its handler kept failing on (failure policy
    /// [`FailurePolicy::Stop`](crate::consumer::FailurePolicy::Stop)). Its position stays
    /// before the event: a restarted consumer tries it again.
    #[error(
        "consumer {consumer:?} stopped at event {event_id} of {stream} (global position {global_position}): {message}"
    )]
    ConsumerStopped {
        /// The consumer name.
        consumer: String,
        /// The category it reads.
        category: String,
        /// The event's id.
        event_id: crate::client::MessageId,
        /// The event's stream.
        stream: String,
        /// The event's global position.
        global_position: i64,
        /// The handler's last error.
        message: String,
    },
    /// A consumer did not reach a global position in time
    /// ([`ConsumerHandle::wait_for`](crate::consumer::ConsumerHandle::wait_for)).
    #[error(
        "consumer {consumer:?} did not reach global position {global_position} within {after:?} (it is at {position})"
    )]
    WaitTimeout {
        /// The consumer name.
        consumer: String,
        /// The position waited for.
        global_position: i64,
        /// The consumer's position when the wait ended.
        position: i64,
        /// The timeout.
        after: Duration,
    },
    /// The consumer is not running (it stopped, or the workers were shut down).
    #[error("consumer {consumer:?} is not running")]
    ConsumerNotRunning {
        /// The consumer name.
        consumer: String,
    },
}

/// Messages of `BACKEND_ERROR`s that will fail again however often they are retried.
const PERMANENT_BACKEND_MESSAGES: &[&str] = &[
    "invalid UUID",
    "invalid input syntax for type uuid",
    "UNIQUE constraint failed",
    "duplicate key value violates unique constraint",
    "not found",
    "LIMIT must not be negative",
    "unsupported Unicode escape sequence",
];

impl Error {
    /// Whether retrying the same request later may succeed: connection refused or reset,
    /// timeouts, `408`, `429` and 5xx replies, except the `BACKEND_ERROR`s known to be
    /// permanent (invalid or duplicate id, unknown namespace, negative `LIMIT`, NUL in JSON).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Server { status, .. } => *status >= 500 && !self.is_permanent_backend_error(),
            Error::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }

    /// A `BACKEND_ERROR` known to be permanent: the backend refused the statement, so it
    /// changed nothing.
    fn is_permanent_backend_error(&self) -> bool {
        matches!(
            self,
            Error::Server { code: ErrorCode::BackendError, message, .. }
                if PERMANENT_BACKEND_MESSAGES.iter().any(|needle| message.contains(needle))
        )
    }

    /// Whether the request may have been applied although it failed: a timeout, a
    /// connection lost after the request may have been sent, a 5xx reply, or a 200 reply
    /// that could not be read ([`Error::Decode`]: for an RPC call, the server applied it). A refused
    /// connection, and a `BACKEND_ERROR` known to be permanent (an invalid or duplicate
    /// id, an unknown namespace), are a known "not applied". Before retrying a write after
    /// such an error, look for its message id in the stream: Pebble stores a duplicate id
    /// again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Decode { .. } => true,
            Error::Transport { source, .. } => !source.is_connect(),
            Error::Server { status, .. } => *status >= 500 && !self.is_permanent_backend_error(),
            Error::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether this is the `BACKEND_ERROR` a `stream.write` gets for a message id that is
    /// already stored (SQLite: `UNIQUE constraint failed: messages.id`, PostgreSQL:
    /// `duplicate key value violates unique constraint "messages_id"`). For an outbox, this
    /// means "already written".
    pub fn is_duplicate_id(&self) -> bool {
        match self {
            Error::Server {
                code: ErrorCode::BackendError,
                message,
                details,
                ..
            } => {
                let names_index = |s: &str| s.contains("messages.id") || s.contains("messages_id");
                names_index(message)
                    || details
                        .as_ref()
                        .is_some_and(|d| names_index(&d.to_string()))
            }
            _ => false,
        }
    }

    /// Whether this is a `STREAM_VERSION_CONFLICT`.
    pub fn is_version_conflict(&self) -> bool {
        matches!(self, Error::VersionConflict { .. })
    }

    /// The server's error code, for [`Error::Server`] and [`Error::VersionConflict`].
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(code),
            Error::VersionConflict { .. } => Some(&ErrorCode::StreamVersionConflict),
            _ => None,
        }
    }

    /// The HTTP status of the reply, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Server { status, .. } | Error::Http { status, .. } => Some(*status),
            Error::VersionConflict { .. } => Some(409),
            _ => None,
        }
    }

    /// Whether the server refused the credentials (`AUTH_REQUIRED`, `AUTH_INVALID_TOKEN`,
    /// `AUTH_UNAUTHORIZED`).
    pub fn is_auth(&self) -> bool {
        matches!(
            self.code(),
            Some(
                ErrorCode::AuthRequired | ErrorCode::AuthInvalidToken | ErrorCode::AuthUnauthorized
            )
        )
    }
}

/// An EventoDB error code (protocol section 1.4). Codes this version does not know are kept
/// verbatim in [`ErrorCode::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `INVALID_REQUEST` (400, 405 for non-POST): the envelope or an argument is invalid.
    InvalidRequest,
    /// `METHOD_NOT_FOUND` (404): unknown RPC method.
    MethodNotFound,
    /// `AUTH_REQUIRED` (401): no token, or not a `Bearer` header.
    AuthRequired,
    /// `AUTH_INVALID_TOKEN` (401): the token does not parse.
    AuthInvalidToken,
    /// `AUTH_UNAUTHORIZED` (403): unknown namespace or wrong token.
    AuthUnauthorized,
    /// `NAMESPACE_NOT_FOUND` (404): `ns.delete` / `ns.info` of a missing namespace.
    NamespaceNotFound,
    /// `STREAM_NOT_FOUND` (404): mapped by the server but never emitted.
    StreamNotFound,
    /// `STREAM_VERSION_CONFLICT` (409); surfaced as [`Error::VersionConflict`].
    StreamVersionConflict,
    /// `NAMESPACE_EXISTS` (409): `ns.create` of an existing namespace.
    NamespaceExists,
    /// `BACKEND_ERROR` (500): any store error, including duplicate and invalid ids.
    BackendError,
    /// `INTERNAL_ERROR` (500).
    InternalError,
    /// `NOT_FOUND` (404): unknown URL path.
    NotFound,
    /// A code this version does not know, verbatim.
    Unknown(String),
}

impl ErrorCode {
    /// The code as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::MethodNotFound => "METHOD_NOT_FOUND",
            ErrorCode::AuthRequired => "AUTH_REQUIRED",
            ErrorCode::AuthInvalidToken => "AUTH_INVALID_TOKEN",
            ErrorCode::AuthUnauthorized => "AUTH_UNAUTHORIZED",
            ErrorCode::NamespaceNotFound => "NAMESPACE_NOT_FOUND",
            ErrorCode::StreamNotFound => "STREAM_NOT_FOUND",
            ErrorCode::StreamVersionConflict => "STREAM_VERSION_CONFLICT",
            ErrorCode::NamespaceExists => "NAMESPACE_EXISTS",
            ErrorCode::BackendError => "BACKEND_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unknown(code) => code,
        }
    }

    /// Parses a code as the server spells it; unknown codes become [`ErrorCode::Unknown`].
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "INVALID_REQUEST" => ErrorCode::InvalidRequest,
            "METHOD_NOT_FOUND" => ErrorCode::MethodNotFound,
            "AUTH_REQUIRED" => ErrorCode::AuthRequired,
            "AUTH_INVALID_TOKEN" => ErrorCode::AuthInvalidToken,
            "AUTH_UNAUTHORIZED" => ErrorCode::AuthUnauthorized,
            "NAMESPACE_NOT_FOUND" => ErrorCode::NamespaceNotFound,
            "STREAM_NOT_FOUND" => ErrorCode::StreamNotFound,
            "STREAM_VERSION_CONFLICT" => ErrorCode::StreamVersionConflict,
            "NAMESPACE_EXISTS" => ErrorCode::NamespaceExists,
            "BACKEND_ERROR" => ErrorCode::BackendError,
            "INTERNAL_ERROR" => ErrorCode::InternalError,
            "NOT_FOUND" => ErrorCode::NotFound,
            other => ErrorCode::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        ErrorCode::parse(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Connection trouble is waited out; errors a retry cannot mend are not.
    #[test]
    fn database_unreachable_tells_waiting_from_giving_up() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(database_unreachable(&refused));
        assert!(database_unreachable(&sqlx::Error::PoolTimedOut));
        assert!(!database_unreachable(&sqlx::Error::RowNotFound));
        assert!(!database_unreachable(&sqlx::Error::PoolClosed));
        assert!(!database_unreachable(&sqlx::Error::Configuration(
            "bad url".into()
        )));
    }

    fn server(code: &str, status: u16, message: &str) -> Error {
        Error::Server {
            code: ErrorCode::parse(code),
            status,
            message: message.into(),
            details: None,
        }
    }

    /// What `tracing_subscriber::fmt` writes for a warning with `error = log_field(..)`.
    fn logged(error: &Error) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(error = log_field(error), "could not save the position");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_logged_error_keeps_its_cause() {
        let lost = Error::Database {
            source: sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            )),
        };
        let line = logged(&lost);
        assert!(line.contains("error=database error"), "{line}");
        assert!(line.contains("connection reset by peer"), "{line}");
    }

    #[test]
    fn every_code_round_trips_and_unknown_is_kept() {
        for code in [
            "INVALID_REQUEST",
            "METHOD_NOT_FOUND",
            "AUTH_REQUIRED",
            "AUTH_INVALID_TOKEN",
            "AUTH_UNAUTHORIZED",
            "NAMESPACE_NOT_FOUND",
            "STREAM_NOT_FOUND",
            "STREAM_VERSION_CONFLICT",
            "NAMESPACE_EXISTS",
            "BACKEND_ERROR",
            "INTERNAL_ERROR",
            "NOT_FOUND",
        ] {
            let parsed = ErrorCode::parse(code);
            assert!(!matches!(parsed, ErrorCode::Unknown(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
        assert_eq!(
            ErrorCode::parse("AUTH_INVALID"),
            ErrorCode::Unknown("AUTH_INVALID".into())
        );
        assert_eq!(ErrorCode::parse("AUTH_INVALID").to_string(), "AUTH_INVALID");
    }

    #[test]
    fn duplicate_id_is_recognised_on_sqlite_and_postgres_wording() {
        let sqlite = server(
            "BACKEND_ERROR",
            500,
            "Failed to write message: UNIQUE constraint failed: messages.id",
        );
        let pg = server(
            "BACKEND_ERROR",
            500,
            "Failed to write message: ERROR: duplicate key value violates unique constraint \"messages_id\" (SQLSTATE 23505)",
        );
        assert!(sqlite.is_duplicate_id() && pg.is_duplicate_id());
        assert!(!sqlite.is_transient() && !pg.is_transient());
        assert!(!server("BACKEND_ERROR", 500, "disk full").is_duplicate_id());
        assert!(!server("INVALID_REQUEST", 400, "messages.id").is_duplicate_id());
    }

    #[test]
    fn transient_and_outcome_unknown() {
        let flaky = server("BACKEND_ERROR", 500, "database is locked");
        assert!(flaky.is_transient() && flaky.outcome_unknown());
        let permanent = server(
            "BACKEND_ERROR",
            500,
            "Failed to get messages: namespace x not found",
        );
        assert!(!permanent.is_transient() && !permanent.outcome_unknown());
        let bad = server(
            "INVALID_REQUEST",
            400,
            "streamName must be a non-empty string",
        );
        assert!(!bad.is_transient() && !bad.outcome_unknown());
        let timeout = Error::Timeout {
            url: "http://x/rpc".into(),
            after: Duration::from_millis(100),
        };
        assert!(timeout.is_transient() && timeout.outcome_unknown());
        let http = Error::Http {
            url: "http://x/rpc".into(),
            status: 502,
            body: "bad gateway".into(),
        };
        assert!(http.is_transient() && http.outcome_unknown());
        let too_big = Error::Http {
            url: "http://x/rpc".into(),
            status: 431,
            body: "Too big request header".into(),
        };
        assert!(!too_big.is_transient() && !too_big.outcome_unknown());
        // A 200 the client could not read was applied: retrying it may write twice.
        let garbled = Error::Decode {
            expected: "stream.write result: {globalPosition, position}".into(),
            body: "{\"status\":\"ok\"}".into(),
        };
        assert!(!garbled.is_transient() && garbled.outcome_unknown());
    }

    #[test]
    fn version_conflict_helpers() {
        let err = Error::VersionConflict {
            message: "Expected version 5, stream is at version 1".into(),
            expected: Some(5),
            actual: Some(1),
        };
        assert!(err.is_version_conflict());
        assert_eq!(err.code(), Some(&ErrorCode::StreamVersionConflict));
        assert_eq!(err.status(), Some(409));
        assert!(!err.is_transient() && !err.outcome_unknown());
        let with_details = Error::Server {
            code: ErrorCode::AuthRequired,
            status: 401,
            message: "Authorization header required".into(),
            details: Some(json!({})),
        };
        assert!(with_details.is_auth());
    }
}
