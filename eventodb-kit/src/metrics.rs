//! Metrics through the [`metrics`](https://docs.rs/metrics) facade: the kit records, the
//! application installs whichever exporter it likes (Prometheus, StatsD, OpenTelemetry, ...).
//! Nothing is recorded anywhere until a recorder is installed, and then it costs an atomic
//! operation per update.
//!
//! Every name starts with `eventodb_kit_`. Labels: `namespace` on every metric; `category`,
//! `consumer` and `member` (the group member, `0` for a plain consumer) on consumer metrics;
//! `kind` on [`OUTBOX_SEND_FAILURES`].
//!
//! | name | type | what |
//! |---|---|---|
//! | [`OUTBOX_PENDING`] | gauge | rows waiting to be sent (refreshed by the sender's housekeeping) |
//! | [`OUTBOX_FAILED`] | gauge | rows parked by a permanent failure |
//! | [`OUTBOX_OLDEST_PENDING_SECONDS`] | gauge | age of the oldest pending row |
//! | [`OUTBOX_SENT`] | counter | rows sent (the exporter's rate gives sent/s) |
//! | [`OUTBOX_SEND_FAILURES`] | counter | failed sends, `kind` = `transient` or `permanent` |
//! | [`CONSUMER_POSITION`] | gauge | global position the consumer has dealt with |
//! | [`CONSUMER_LAG`] | gauge | newest global position seen minus the consumer's position |
//! | [`CONSUMER_HANDLED`] | counter | events handled (the exporter's rate gives handled/s) |
//! | [`CONSUMER_FAILURES`] | counter | events that failed for good (the failure policy applied) |
//! | [`CONSUMER_PARKED`] | gauge | streams parked by this consumer |
//! | [`CONSUMER_RUNNING`] | gauge | 1 while the consumer runs, 0 once it stopped (a failure, a shutdown) |
//!
//! # What to alert on
//!
//! - `eventodb_kit_consumer_running == 0` while the application is up: a consumer stopped
//!   (failure policy `Stop`: its error is in `RunningWorkers::next_failure` and the logs). Its
//!   lag no longer moves, so a lag alert alone would not fire.
//! - `eventodb_kit_consumer_parked > 0`: streams wait for an operator (`consumer parked`,
//!   `consumer release`).
//! - `eventodb_kit_outbox_failed > 0`: rows parked by a permanent failure, holding back their
//!   streams (`outbox status`, `outbox retry`, `outbox discard`).
//! - `eventodb_kit_outbox_oldest_pending_seconds` above what the application tolerates:
//!   EventoDB unreachable, or the sender not running.
//! - a burst of `rate(eventodb_kit_outbox_send_failures_total{kind="transient"})`: EventoDB
//!   failing; the sender retries, nothing is lost.
//!
//! # Examples
//!
//! ```
//! // With metrics-exporter-prometheus, for instance:
//! // PrometheusBuilder::new().install()?;
//! // ... then run the kit's workers; the names above appear in the scrape.
//! assert!(eventodb_kit::metrics::OUTBOX_SENT.starts_with("eventodb_kit_"));
//! ```

use ::metrics::{Counter, Gauge, counter, gauge};

use crate::outbox::backend::OutboxStatus;

/// Gauge: outbox rows waiting to be sent (including those waiting for a retry).
pub const OUTBOX_PENDING: &str = "eventodb_kit_outbox_pending";
/// Gauge: outbox rows parked by a permanent failure.
pub const OUTBOX_FAILED: &str = "eventodb_kit_outbox_failed";
/// Gauge: age of the oldest pending outbox row, in seconds (0 when none is pending).
pub const OUTBOX_OLDEST_PENDING_SECONDS: &str = "eventodb_kit_outbox_oldest_pending_seconds";
/// Counter: outbox rows sent to EventoDB.
pub const OUTBOX_SENT: &str = "eventodb_kit_outbox_sent_total";
/// Counter: failed sends, label `kind` (`transient`: retried; `permanent`: the row is parked).
pub const OUTBOX_SEND_FAILURES: &str = "eventodb_kit_outbox_send_failures_total";
/// Gauge: the global position a consumer has dealt with.
pub const CONSUMER_POSITION: &str = "eventodb_kit_consumer_position";
/// Gauge: the newest global position the consumer has seen minus its position.
pub const CONSUMER_LAG: &str = "eventodb_kit_consumer_lag";
/// Counter: events a consumer handled (or ignored as an unknown type).
pub const CONSUMER_HANDLED: &str = "eventodb_kit_consumer_handled_total";
/// Counter: events that failed for good; the failure policy applied to them.
pub const CONSUMER_FAILURES: &str = "eventodb_kit_consumer_failures_total";
/// Gauge: streams a consumer holds parked.
pub const CONSUMER_PARKED: &str = "eventodb_kit_consumer_parked";
/// Gauge: 1 while a consumer runs, 0 once it stopped.
pub const CONSUMER_RUNNING: &str = "eventodb_kit_consumer_running";

/// Records one sent outbox row.
pub(crate) fn outbox_sent(namespace: &str) {
    counter!(OUTBOX_SENT, "namespace" => namespace.to_owned()).increment(1);
}

/// Records one failed send; `permanent` when the row is parked.
pub(crate) fn outbox_send_failed(namespace: &str, permanent: bool) {
    let kind = if permanent { "permanent" } else { "transient" };
    counter!(OUTBOX_SEND_FAILURES, "namespace" => namespace.to_owned(), "kind" => kind)
        .increment(1);
}

/// Sets the outbox gauges from a status query.
pub(crate) fn outbox_status(namespace: &str, status: &OutboxStatus) {
    let labels = [("namespace", namespace.to_owned())];
    gauge!(OUTBOX_PENDING, &labels).set(status.pending as f64);
    gauge!(OUTBOX_FAILED, &labels).set(status.failed as f64);
    let age = status
        .oldest_pending_age
        .map_or(0.0, |age| age.as_secs_f64());
    gauge!(OUTBOX_OLDEST_PENDING_SECONDS, &labels).set(age);
}

/// A consumer's metric handles, registered once (updates are then plain atomics).
pub(crate) struct ConsumerMetrics {
    position: Gauge,
    lag: Gauge,
    handled: Counter,
    failures: Counter,
    parked: Gauge,
    running: Gauge,
}

impl ConsumerMetrics {
    /// Registers the handles for one consumer (group member `member`, `0` when plain).
    pub(crate) fn new(namespace: &str, category: &str, consumer: &str, member: i64) -> Self {
        let labels = [
            ("namespace", namespace.to_owned()),
            ("category", category.to_owned()),
            ("consumer", consumer.to_owned()),
            ("member", member.to_string()),
        ];
        Self {
            position: gauge!(CONSUMER_POSITION, &labels),
            lag: gauge!(CONSUMER_LAG, &labels),
            handled: counter!(CONSUMER_HANDLED, &labels),
            failures: counter!(CONSUMER_FAILURES, &labels),
            parked: gauge!(CONSUMER_PARKED, &labels),
            running: gauge!(CONSUMER_RUNNING, &labels),
        }
    }

    /// The consumer started: it runs until these handles are dropped with it.
    pub(crate) fn started(&self) {
        self.running.set(1.0);
    }

    /// The consumer dealt with everything up to `position`; `head` is the newest global
    /// position it has seen.
    pub(crate) fn advanced(&self, position: i64, head: i64) {
        self.position.set(position as f64);
        self.lag.set(head.saturating_sub(position).max(0) as f64);
    }

    /// One event handled.
    pub(crate) fn handled(&self) {
        self.handled.increment(1);
    }

    /// One event failed for good.
    pub(crate) fn failed(&self) {
        self.failures.increment(1);
    }

    /// The number of parked streams changed.
    pub(crate) fn parked(&self, streams: usize) {
        self.parked.set(streams as f64);
    }
}

/// The consumer's task ended, however it ended (stopped at a failing event, shut down,
/// killed): it no longer runs.
impl Drop for ConsumerMetrics {
    fn drop(&mut self) {
        self.running.set(0.0);
    }
}

/// How often the sender refreshes the outbox gauges (a status query).
const OUTBOX_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps a sender's outbox gauges fresh. The status query counts every pending row (46 to
/// 50 ms on SQLite and 83 to 92 ms on PostgreSQL with 200,000 pending, 5 to 11 ms with
/// 20,000), so it runs on a task of its own: in the sender's loop it held up the first claim
/// by that long, and every claim after it for as long again every 5 s.
#[derive(Debug)]
pub(crate) struct OutboxGauges {
    next: tokio::time::Instant,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl OutboxGauges {
    /// Gauges whose first refresh is due at once.
    pub(crate) fn new() -> Self {
        Self {
            next: tokio::time::Instant::now(),
            running: None,
        }
    }

    /// Starts a refresh when one is due and the last one has finished.
    pub(crate) fn refresh<DB: crate::outbox::Backend>(
        &mut self,
        outbox: &crate::outbox::Outbox<DB>,
    ) {
        use tracing::Instrument as _;
        let now = tokio::time::Instant::now();
        if now < self.next
            || self
                .running
                .as_ref()
                .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        self.next = now + OUTBOX_REFRESH;
        let outbox = outbox.clone();
        let refresh = async move {
            match outbox.status().await {
                Ok(status) => outbox_status(outbox.namespace(), &status),
                Err(error) => tracing::debug!(
                    error = crate::error::log_field(&error),
                    "outbox status for metrics failed"
                ),
            }
        };
        self.running = Some(tokio::spawn(refresh.in_current_span()));
    }
}

impl Drop for OutboxGauges {
    fn drop(&mut self) {
        // A status query is only a read: stopping it with the sender leaves nothing half-done.
        if let Some(task) = self.running.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// The status query runs on a task of its own, at most one at a time and once per
    /// [`OUTBOX_REFRESH`]: the sender's loop never waits for it.
    #[tokio::test(flavor = "current_thread")]
    async fn outbox_gauges_refresh_beside_the_sender() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _guard = metrics::set_default_local_recorder(&recorder);
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let kit = crate::Kit::builder("http://127.0.0.1:9")
            .database(pool.clone())
            .build()
            .unwrap();
        let outbox = kit.outbox();
        let mut conn = pool.acquire().await.unwrap();
        for n in 0..3 {
            outbox
                .write(
                    &mut *conn,
                    "gauged-1",
                    crate::outbox::RawMessage::new("T", serde_json::json!({ "n": n })),
                )
                .await
                .unwrap();
        }
        drop(conn);
        let pending = || {
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .find(|(key, ..)| key.key().name() == OUTBOX_PENDING)
                .map(|(.., value)| value)
        };

        let mut gauges = OutboxGauges::new();
        gauges.refresh(outbox);
        assert_eq!(pending(), None, "refresh returns before the query runs");
        gauges
            .running
            .take()
            .expect("a refresh task")
            .await
            .unwrap();
        assert_eq!(pending(), Some(DebugValue::Gauge(3.0.into())));

        gauges.refresh(outbox);
        assert!(
            gauges.running.is_none(),
            "not due again for {OUTBOX_REFRESH:?}"
        );

        // Due again while the last refresh still runs: nothing new starts.
        let slow = tokio::spawn(std::future::pending::<()>());
        let slow_id = slow.id();
        gauges.running = Some(slow);
        gauges.next = tokio::time::Instant::now();
        gauges.refresh(outbox);
        assert_eq!(gauges.running.as_ref().map(|task| task.id()), Some(slow_id));
    }
}
