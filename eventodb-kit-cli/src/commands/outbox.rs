//! `outbox status | retry | discard | purge`.

use std::collections::BTreeMap;
use std::time::Duration;

use eventodb_kit::outbox::{OutboxRow, RowStatus};
use eventodb_kit::{Backend, Outbox};
use serde::Serialize;
use uuid::Uuid;

use super::{kit_error, with_pool};
use crate::args::OutboxCommand;
use crate::connect::Connected;
use crate::error::CliError;
use crate::output::{Rendered, Report, Table, age, or_dash};

pub(super) async fn run(
    connected: &Connected,
    command: &OutboxCommand,
) -> Result<Rendered, CliError> {
    with_pool!(connected, |pool| {
        let outbox = Outbox::new(pool.clone(), connected.client.clone());
        dispatch(connected, &outbox, command).await
    })
}

async fn dispatch<DB: Backend>(
    connected: &Connected,
    outbox: &Outbox<DB>,
    command: &OutboxCommand,
) -> Result<Rendered, CliError> {
    let error = kit_error(connected);
    match command {
        OutboxCommand::Status => Ok(Rendered::new(&status(outbox).await.map_err(error)?)),
        OutboxCommand::Retry {
            target,
            all: _,
            without_expected_version,
        } => retry(outbox, target.as_deref(), *without_expected_version, &error).await,
        OutboxCommand::Discard { id } => {
            let discarded = outbox.discard(*id).await.map_err(|failure| {
                if failure.is_transient() && !connected.has_eventodb {
                    // The lookup that tells whether the row's last send landed.
                    CliError::InvalidEventodbUrl(format!(
                        "cannot discard {id}: its last send may have reached EventoDB, and it must be looked up there first: pass --eventodb-url or set EVENTODB_URL"
                    ))
                } else if failure.is_transient() {
                    CliError::Unreachable {
                        target: connected.client.base_url().to_owned(),
                        reason: format!(
                            "cannot discard {id}: its last send may have reached EventoDB, and EventoDB could not be read to check ({failure}); try again when it answers"
                        ),
                    }
                } else {
                    error(failure)
                }
            })?;
            if discarded {
                Ok(Rendered::new(&Changed {
                    action: "discarded",
                    ids: vec![*id],
                }))
            } else {
                Err(not_unsent(outbox, *id, "discard", &error).await?)
            }
        }
        OutboxCommand::Purge {
            older_than,
            batch,
            unverified,
        } => {
            let deleted = if *unverified {
                outbox.purge_unverified_too(*older_than, *batch).await
            } else {
                outbox.purge(*older_than, *batch).await
            }
            .map_err(error)?;
            Ok(Rendered::new(&Purged {
                deleted,
                older_than_seconds: older_than.as_secs(),
            }))
        }
    }
}

/// `outbox status`.
#[derive(Debug, Serialize)]
struct Status {
    namespace: String,
    pending: u64,
    failed: u64,
    sent: u64,
    unverified: u64,
    lost: u64,
    oldest_pending_age_seconds: Option<f64>,
    /// Why rows wait: the last error of a row put off for a retry.
    retry_error: Option<String>,
    /// Streams held back by a failed row, with that row.
    parked_streams: Vec<ParkedStream>,
}

#[derive(Debug, Serialize)]
struct ParkedStream {
    stream: String,
    failed_rows: usize,
    id: Uuid,
    message_type: String,
    attempts: i64,
    error: Option<String>,
    expected_version: Option<i64>,
}

async fn status<DB: Backend>(outbox: &Outbox<DB>) -> eventodb_kit::Result<Status> {
    let counts = outbox.status().await?;
    let failed = outbox.failed(i64::MAX).await?;
    let mut streams: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
    for row in failed {
        streams.entry(row.stream.clone()).or_default().push(row);
    }
    let parked_streams = streams
        .into_iter()
        .filter_map(|(stream, rows)| {
            let failed_rows = rows.len();
            rows.into_iter().next().map(|head| ParkedStream {
                stream,
                failed_rows,
                id: head.id,
                message_type: head.message_type,
                attempts: head.attempts,
                error: head.last_error,
                expected_version: head.expected_version,
            })
        })
        .collect();
    Ok(Status {
        namespace: outbox.namespace().to_owned(),
        pending: counts.pending,
        failed: counts.failed,
        sent: counts.sent,
        unverified: counts.unverified,
        lost: counts.lost,
        oldest_pending_age_seconds: counts.oldest_pending_age.map(|age| age.as_secs_f64()),
        retry_error: counts.retry_error,
        parked_streams,
    })
}

impl Report for Status {
    fn render(&self) -> String {
        let mut out = format!(
            "namespace {}\npending {}  failed {}  sent {}  unverified {}  lost {}\noldest pending: {}\n",
            self.namespace,
            self.pending,
            self.failed,
            self.sent,
            self.unverified,
            self.lost,
            self.oldest_pending_age_seconds
                .map_or_else(|| "none".to_owned(), age),
        );
        if let Some(error) = &self.retry_error {
            out.push_str(&format!(
                "retrying: {}\n",
                error.lines().next().unwrap_or_default()
            ));
        }
        if self.parked_streams.is_empty() {
            out.push_str("no parked streams\n");
        } else {
            out.push_str(
                "\nparked streams (`outbox retry <id|stream> [--without-expected-version]` or `outbox discard <id>`):\n",
            );
            let mut table = Table::new(&["STREAM", "FAILED ROW", "TYPE", "ATTEMPTS", "ERROR"]);
            for parked in &self.parked_streams {
                table.row(vec![
                    parked.stream.clone(),
                    parked.id.to_string(),
                    parked.message_type.clone(),
                    parked.attempts.to_string(),
                    or_dash(parked.error.as_deref()),
                ]);
            }
            out.push_str(&table.render());
        }
        out
    }
}

/// Rows changed by `retry` or `discard`.
#[derive(Debug, Serialize)]
struct Changed {
    action: &'static str,
    ids: Vec<Uuid>,
}

impl Report for Changed {
    fn render(&self) -> String {
        if self.ids.is_empty() {
            return "no failed row: nothing to retry\n".to_owned();
        }
        self.ids
            .iter()
            .map(|id| format!("{} {id}\n", self.action))
            .collect()
    }
}

/// `outbox purge`.
#[derive(Debug, Serialize)]
struct Purged {
    deleted: u64,
    older_than_seconds: u64,
}

impl Report for Purged {
    fn render(&self) -> String {
        format!(
            "deleted {} rows older than {}\n",
            self.deleted,
            age(Duration::from_secs(self.older_than_seconds).as_secs_f64())
        )
    }
}

async fn retry<DB: Backend>(
    outbox: &Outbox<DB>,
    target: Option<&str>,
    without_expected_version: bool,
    error: &impl Fn(eventodb_kit::Error) -> CliError,
) -> Result<Rendered, CliError> {
    let one = async |id: Uuid| {
        if without_expected_version {
            outbox.retry_without_expected_version(id).await
        } else {
            outbox.retry(id).await
        }
    };
    let action = if without_expected_version {
        "retried without expected version"
    } else {
        "retried"
    };
    if let Some(Ok(id)) = target.map(Uuid::parse_str) {
        if one(id).await.map_err(error)? {
            return Ok(Rendered::new(&Changed {
                action,
                ids: vec![id],
            }));
        }
        return Err(not_failed(outbox, id, error).await?);
    }
    let ids: Vec<Uuid> = outbox
        .failed(i64::MAX)
        .await
        .map_err(error)?
        .into_iter()
        // No target: `--all`.
        .filter(|row| target.is_none_or(|stream| row.stream == stream))
        .map(|row| row.id)
        .collect();
    let mut retried = Vec::new();
    for id in ids {
        match one(id).await {
            Ok(true) => retried.push(id),
            Ok(false) => {}
            Err(failed) if retried.is_empty() => return Err(error(failed)),
            // The rows retried so far stay retried: say which, or the operator would retry
            // them again or think nothing changed.
            Err(failed) => {
                let ids: Vec<String> = retried.iter().map(Uuid::to_string).collect();
                return Err(error(failed).noting(&format!(
                    "the {} rows retried before it stay retried: {}",
                    ids.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    // `--all` with nothing to retry is done, not a failure (a periodic script runs it); a
    // stream with no failed row is more likely a typo.
    if let (true, Some(stream)) = (retried.is_empty(), target) {
        return Err(CliError::NotFound(format!(
            "stream {stream:?} has no failed outbox row (see `eventodb-kit outbox status`)"
        )));
    }
    Ok(Rendered::new(&Changed {
        action,
        ids: retried,
    }))
}

async fn not_failed<DB: Backend>(
    outbox: &Outbox<DB>,
    id: Uuid,
    error: &impl Fn(eventodb_kit::Error) -> CliError,
) -> Result<CliError, CliError> {
    Ok(match outbox.row(id).await.map_err(error)? {
        None => CliError::NotFound(format!("no outbox row has id {id}")),
        Some(row) => CliError::WrongState(format!(
            "outbox row {id} is {}, not failed: only failed rows are retried",
            status_word(row.status)
        )),
    })
}

async fn not_unsent<DB: Backend>(
    outbox: &Outbox<DB>,
    id: Uuid,
    verb: &str,
    error: &impl Fn(eventodb_kit::Error) -> CliError,
) -> Result<CliError, CliError> {
    Ok(match outbox.row(id).await.map_err(error)? {
        None => CliError::NotFound(format!("no outbox row has id {id}")),
        Some(row) => CliError::WrongState(format!(
            "outbox row {id} is {}: only pending or failed rows can be {verb}ed",
            status_word(row.status)
        )),
    })
}

fn status_word(status: RowStatus) -> &'static str {
    match status {
        RowStatus::Pending => "pending",
        RowStatus::Sent => "sent",
        RowStatus::Failed => "failed",
        RowStatus::Discarded => "discarded",
        _ => "in another state",
    }
}
