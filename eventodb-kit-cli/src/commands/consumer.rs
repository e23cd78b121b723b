//! `consumer list | reset | parked | release`.

use eventodb_kit::client::{GetCategoryOptions, MessageId};
use eventodb_kit::consumer::{ConsumerAdmin, ConsumerName, ConsumerPosition, MemberState};
use eventodb_kit::{Backend, Client};
use serde::Serialize;
use serde_json::Value;

use super::{kit_error, with_pool};
use crate::args::ConsumerCommand;
use crate::connect::Connected;
use crate::error::CliError;
use crate::output::{Rendered, Report, Table, or_dash};

mod lag;

pub(super) async fn run(
    connected: &Connected,
    command: &ConsumerCommand,
) -> Result<Rendered, CliError> {
    with_pool!(connected, |pool| {
        let admin = ConsumerAdmin::new(pool.clone(), connected.namespace());
        dispatch(connected, &admin, command).await
    })
}

/// Refuses a reset to `to` when no event of the namespace is at or past it: the consumer
/// would skip every event still to come up to `to` (a typo, or a position of another
/// namespace).
async fn refuse_past_the_end(connected: &Connected, to: i64) -> Result<(), CliError> {
    if to == 0 {
        return Ok(());
    }
    let at_or_after = connected
        .client
        .category_get("", &GetCategoryOptions::new().position(to).batch_size(1))
        .await
        .map_err(kit_error(connected))?;
    if at_or_after.is_empty() {
        return Err(CliError::Refused(format!(
            "no event of namespace {:?} is at global position {to} or past it: the consumer \
             would skip the events still to come up to {to}; check the position, or pass \
             --force",
            connected.namespace()
        )));
    }
    Ok(())
}

/// Without EventoDB nothing tells a typo (`--to 1000000`) from a real position: a move
/// forward, which skips events, needs `--force` then. A move back only replays.
fn refuse_unchecked_skip(
    consumer: &ConsumerName,
    before: &[ConsumerPosition],
    to: i64,
) -> Result<(), CliError> {
    match before.iter().map(|row| row.global_position).min() {
        Some(lowest) if to > lowest => Err(CliError::Refused(format!(
            "consumer {:?} of category {:?} is at global position {lowest}: moving it to {to} \
             skips the events in between, and without an EventoDB URL the position cannot \
             be checked against the namespace's events; give the URL, or pass --force",
            consumer.consumer, consumer.category
        ))),
        _ => Ok(()),
    }
}

async fn dispatch<DB: Backend>(
    connected: &Connected,
    admin: &ConsumerAdmin<DB>,
    command: &ConsumerCommand,
) -> Result<Rendered, CliError> {
    let error = kit_error(connected);
    match command {
        ConsumerCommand::List { category } => {
            let eventodb = connected.has_eventodb.then_some(&connected.client);
            let report = list(connected.namespace(), admin, category.as_deref(), eventodb)
                .await
                .map_err(error)?;
            Ok(Rendered::new(&report))
        }
        ConsumerCommand::Reset {
            name,
            to,
            category,
            force,
        } => {
            let consumer = find(admin, name, category.as_deref(), &error).await?;
            let before = admin
                .positions(&consumer.category, &consumer.consumer)
                .await
                .map_err(&error)?;
            if !force {
                if connected.has_eventodb {
                    refuse_past_the_end(connected, *to).await?;
                } else {
                    refuse_unchecked_skip(&consumer, &before, *to)?;
                }
            }
            let changed = admin
                .reset_position(&consumer.category, &consumer.consumer, *to)
                .await
                .map_err(&error)?;
            if changed == 0 {
                return Err(CliError::NotFound(format!(
                    "consumer {:?} of category {:?} has no saved position to reset",
                    consumer.consumer, consumer.category
                )));
            }
            Ok(Rendered::new(&Reset {
                category: consumer.category,
                consumer: consumer.consumer,
                position: *to,
                members: before
                    .into_iter()
                    .map(|row| ResetMember {
                        member: row.member,
                        size: row.size,
                        previous: row.global_position,
                    })
                    .collect(),
            }))
        }
        ConsumerCommand::Parked {
            name,
            category,
            skipped,
        } => {
            // A typo must not read as "nothing parked" (a name in several categories lists
            // them all).
            if let Some(name) = name {
                match find(admin, name, category.as_deref(), &error).await {
                    Ok(_) | Err(CliError::Ambiguous(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            let report = parked(admin, name.as_deref(), category.as_deref(), *skipped)
                .await
                .map_err(error)?;
            Ok(Rendered::new(&report))
        }
        ConsumerCommand::Release { stream, consumer } => {
            release(admin, stream, consumer.as_deref(), &error).await
        }
    }
}

/// The one consumer named `name` (in `category`, when given).
async fn find<DB: Backend>(
    admin: &ConsumerAdmin<DB>,
    name: &str,
    category: Option<&str>,
    error: &impl Fn(eventodb_kit::Error) -> CliError,
) -> Result<ConsumerName, CliError> {
    let mut found: Vec<ConsumerName> = admin
        .consumers()
        .await
        .map_err(error)?
        .into_iter()
        .filter(|known| known.consumer == name)
        .filter(|known| category.is_none_or(|category| known.category == category))
        .collect();
    match found.len() {
        0 => Err(CliError::NotFound(match category {
            None => format!("no consumer named {name:?} (see `eventodb-kit consumer list`)"),
            Some(category) => format!(
                "no consumer named {name:?} reads category {category:?} (see `eventodb-kit consumer list`)"
            ),
        })),
        1 => Ok(found.remove(0)),
        _ => Err(CliError::Ambiguous(format!(
            "consumers named {name:?} read several categories ({}): pass --category",
            found
                .iter()
                .map(|known| known.category.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `consumer list`.
#[derive(Debug, Serialize)]
struct List {
    namespace: String,
    /// Whether lag could be read (`null`: no EventoDB URL given).
    eventodb: Option<lag::Reachability>,
    consumers: Vec<ListedConsumer>,
}

#[derive(Debug, Serialize)]
struct ListedConsumer {
    category: String,
    consumer: String,
    members: Vec<Member>,
    parked_streams: usize,
}

#[derive(Debug, Serialize)]
struct Member {
    member: i64,
    size: i64,
    position: i64,
    /// Events of the member's share after its position (`null` when unknown).
    lag: Option<u64>,
    /// The count stopped at its cap: the lag is at least `lag`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lag_capped: bool,
    /// `running`, `silent` (not stopped, yet not seen for several poll intervals: its
    /// process died or hangs), `stopped` (shut down), `failed` (ended by an error or its
    /// failure policy) or `unknown` (never recorded).
    state: &'static str,
    /// Seconds since a member that did not stop last said it was alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen_secs: Option<f64>,
    /// Seconds since a member stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_secs_ago: Option<f64>,
    /// What ended a failed member, with its causes.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Member {
    /// The STATE cell of the table.
    fn state_cell(&self) -> String {
        let ago =
            |secs: Option<f64>| secs.map_or_else(String::new, |secs| format!(" {secs:.0}s ago"));
        match self.state {
            "silent" => format!("silent: last seen{}", ago(self.last_seen_secs)),
            "stopped" => format!("stopped{}", ago(self.stopped_secs_ago)),
            "failed" => format!(
                "failed{}: {}",
                ago(self.stopped_secs_ago),
                self.error.as_deref().unwrap_or("?")
            ),
            state => state.to_owned(),
        }
    }
}

/// The JSON fields of a member's state: (state, last seen, stopped ago, error).
fn state_fields(state: &MemberState) -> (&'static str, Option<f64>, Option<f64>, Option<String>) {
    match state {
        MemberState::Running { last_seen } => {
            ("running", Some(last_seen.as_secs_f64()), None, None)
        }
        MemberState::Silent { last_seen } => ("silent", Some(last_seen.as_secs_f64()), None, None),
        MemberState::Stopped { ago, error: None } => {
            ("stopped", None, Some(ago.as_secs_f64()), None)
        }
        MemberState::Stopped { ago, error } => {
            ("failed", None, Some(ago.as_secs_f64()), error.clone())
        }
        _ => ("unknown", None, None, None),
    }
}

async fn list<DB: Backend>(
    namespace: &str,
    admin: &ConsumerAdmin<DB>,
    category: Option<&str>,
    eventodb: Option<&Client>,
) -> eventodb_kit::Result<List> {
    let mut counter = eventodb.map(lag::Counter::new);
    let mut consumers = Vec::new();
    for known in admin.consumers().await? {
        if category.is_some_and(|category| known.category != category) {
            continue;
        }
        let mut members = Vec::new();
        for row in admin.positions(&known.category, &known.consumer).await? {
            let lag = match counter.as_mut() {
                Some(counter) => {
                    counter
                        .count(&known.category, row.member, row.size, row.global_position)
                        .await
                }
                None => None,
            };
            let (state, last_seen_secs, stopped_secs_ago, error) = state_fields(&row.state);
            members.push(Member {
                member: row.member,
                size: row.size,
                position: row.global_position,
                lag: lag.map(|lag| lag.events),
                lag_capped: lag.is_some_and(|lag| lag.capped),
                state,
                last_seen_secs,
                stopped_secs_ago,
                error,
            });
        }
        let parked_streams = admin
            .parked_streams(&known.category, &known.consumer)
            .await?
            .len();
        consumers.push(ListedConsumer {
            category: known.category,
            consumer: known.consumer,
            members,
            parked_streams,
        });
    }
    Ok(List {
        namespace: namespace.to_owned(),
        eventodb: match counter {
            Some(counter) => Some(counter.into_reachability().await),
            None => None,
        },
        consumers,
    })
}

impl Report for List {
    fn render(&self) -> String {
        let mut table = Table::new(&[
            "CATEGORY", "CONSUMER", "MEMBER", "POSITION", "LAG", "PARKED", "STATE",
        ]);
        for consumer in &self.consumers {
            let parked = consumer.parked_streams.to_string();
            if consumer.members.is_empty() {
                table.row(vec![
                    consumer.category.clone(),
                    consumer.consumer.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    parked.clone(),
                    "-".into(),
                ]);
            }
            for member in &consumer.members {
                let lag = match (member.lag, member.lag_capped) {
                    (Some(lag), true) => format!(">={lag}"),
                    (lag, _) => or_dash(lag),
                };
                table.row(vec![
                    consumer.category.clone(),
                    consumer.consumer.clone(),
                    format!("{}/{}", member.member, member.size),
                    member.position.to_string(),
                    lag,
                    parked.clone(),
                    member.state_cell(),
                ]);
            }
        }
        let mut out = if table.is_empty() {
            format!("no consumers in namespace {}\n", self.namespace)
        } else {
            table.render()
        };
        match &self.eventodb {
            None => out.push_str("(lag unknown: no --eventodb-url / EVENTODB_URL)\n"),
            Some(state) if !state.reachable => out.push_str(&format!(
                "(lag unknown: EventoDB could not be read: {})\n",
                state.error.as_deref().unwrap_or("?")
            )),
            Some(_) => {}
        }
        out
    }
}

/// `consumer reset`.
#[derive(Debug, Serialize)]
struct Reset {
    category: String,
    consumer: String,
    position: i64,
    members: Vec<ResetMember>,
}

#[derive(Debug, Serialize)]
struct ResetMember {
    member: i64,
    size: i64,
    previous: i64,
}

impl Report for Reset {
    fn render(&self) -> String {
        let mut out = String::new();
        for member in &self.members {
            out.push_str(&format!(
                "{} ({}) member {}/{}: {} -> {}\n",
                self.consumer,
                self.category,
                member.member,
                member.size,
                member.previous,
                self.position
            ));
        }
        out
    }
}

/// `consumer parked` (`--skipped`: the skipped events, and no streams).
#[derive(Debug, Serialize)]
struct Parked {
    events: Vec<ParkedEntry>,
    streams: Vec<HeldStream>,
    #[serde(skip)]
    skipped: bool,
}

#[derive(Debug, Serialize)]
struct ParkedEntry {
    category: String,
    consumer: String,
    stream: String,
    id: MessageId,
    message_type: String,
    position: i64,
    global_position: i64,
    attempts: i64,
    error: String,
    data: Value,
    metadata: Option<Value>,
}

#[derive(Debug, Serialize)]
struct HeldStream {
    category: String,
    consumer: String,
    stream: String,
}

async fn parked<DB: Backend>(
    admin: &ConsumerAdmin<DB>,
    name: Option<&str>,
    category: Option<&str>,
    skipped: bool,
) -> eventodb_kit::Result<Parked> {
    let mut report = Parked {
        events: Vec::new(),
        streams: Vec::new(),
        skipped,
    };
    for known in admin.consumers().await? {
        if name.is_some_and(|name| known.consumer != name)
            || category.is_some_and(|category| known.category != category)
        {
            continue;
        }
        let events = if skipped {
            admin.skipped(&known.category, &known.consumer).await?
        } else {
            admin.parked(&known.category, &known.consumer).await?
        };
        for event in events {
            report.events.push(ParkedEntry {
                category: known.category.clone(),
                consumer: known.consumer.clone(),
                stream: event.stream,
                id: event.id,
                message_type: event.message_type,
                position: event.position,
                global_position: event.global_position,
                attempts: event.attempts,
                error: event.error,
                data: event.data,
                metadata: event.metadata,
            });
        }
        if skipped {
            continue;
        }
        for stream in admin
            .parked_streams(&known.category, &known.consumer)
            .await?
        {
            report.streams.push(HeldStream {
                category: known.category.clone(),
                consumer: known.consumer.clone(),
                stream,
            });
        }
    }
    Ok(report)
}

impl Report for Parked {
    fn render(&self) -> String {
        if self.events.is_empty() && self.streams.is_empty() {
            let what = if self.skipped { "skipped" } else { "parked" };
            return format!("no {what} events\n");
        }
        let mut table = Table::new(&[
            "CONSUMER", "STREAM", "GLOBAL", "TYPE", "ID", "ATTEMPTS", "ERROR",
        ]);
        for event in &self.events {
            table.row(vec![
                format!("{} ({})", event.consumer, event.category),
                event.stream.clone(),
                event.global_position.to_string(),
                event.message_type.clone(),
                event.id.to_string(),
                event.attempts.to_string(),
                event.error.lines().next().unwrap_or("").to_owned(),
            ]);
        }
        let mut out = table.render();
        if self.skipped {
            return out;
        }
        out.push_str(&format!(
            "{} stream(s) held back: {}\n",
            self.streams.len(),
            self.streams
                .iter()
                .map(|held| format!("{} by {}", held.stream, held.consumer))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out
    }
}

/// `consumer release`.
#[derive(Debug, Serialize)]
struct Released {
    stream: String,
    consumers: Vec<ReleasedBy>,
}

/// A consumer, as printed.
#[derive(Debug, Serialize)]
struct ReleasedBy {
    category: String,
    consumer: String,
}

impl Report for Released {
    fn render(&self) -> String {
        self.consumers
            .iter()
            .map(|released| {
                format!(
                    "released {} for {} ({})\n",
                    self.stream, released.consumer, released.category
                )
            })
            .collect()
    }
}

async fn release<DB: Backend>(
    admin: &ConsumerAdmin<DB>,
    stream: &str,
    consumer: Option<&str>,
    error: &impl Fn(eventodb_kit::Error) -> CliError,
) -> Result<Rendered, CliError> {
    // Only consumers of the stream's category can hold it back.
    let category = stream
        .split_once('-')
        .map_or(stream, |(category, _)| category);
    let mut released = Vec::new();
    for known in admin.consumers().await.map_err(error)? {
        if known.category != category || consumer.is_some_and(|name| known.consumer != name) {
            continue;
        }
        if admin
            .release_stream(&known.category, &known.consumer, stream)
            .await
            .map_err(error)?
        {
            released.push(ReleasedBy {
                category: known.category,
                consumer: known.consumer,
            });
        }
    }
    if released.is_empty() {
        return Err(CliError::NotFound(match consumer {
            None => format!(
                "stream {stream:?} is not held back by any consumer (see `eventodb-kit consumer parked`)"
            ),
            Some(name) => format!(
                "stream {stream:?} is not held back by consumer {name:?} (see `eventodb-kit consumer parked`)"
            ),
        }));
    }
    Ok(Rendered::new(&Released {
        stream: stream.to_owned(),
        consumers: released,
    }))
}
