//! Observability end to end on SQLite and the embedded server: the metrics a send and a
//! handled event record, and the W3C trace context a publish carries to the consumer.
//!
//! Each test runs on a current-thread runtime with a thread-local recorder, so tests in
//! parallel do not see each other's metrics. The span fields are checked in
//! `observability_spans.rs` (its own binary: it installs a global subscriber).

mod observe_support;

use eventodb_kit::metrics as names;
use eventodb_kit::trace_context::{self, TraceContext};
use eventodb_kit_testkit::TestServer;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use observe_support::{Captured, kit, publish_and_consume, sqlite};

fn value_of(snapshot: &[Entry], name: &str, label: (&str, &str)) -> Option<DebugValue> {
    snapshot
        .iter()
        .find(|(key, ..)| {
            key.key().name() == name
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == label.0 && l.value() == label.1)
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => DebugValue::Counter(*n),
            DebugValue::Gauge(v) => DebugValue::Gauge(*v),
            DebugValue::Histogram(v) => DebugValue::Histogram(v.clone()),
        })
}

#[tokio::test(flavor = "current_thread")]
async fn a_send_and_a_handled_event_move_the_counters() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let (server, pool, kit, _dir) = fresh().await;
    publish_and_consume(&kit, &pool, "metered").await;

    let snapshot = snapshotter.snapshot().into_vec();
    let sent = value_of(
        &snapshot,
        names::OUTBOX_SENT,
        ("namespace", kit.namespace()),
    );
    assert_eq!(sent, Some(DebugValue::Counter(1)), "{snapshot:?}");
    let handled = value_of(&snapshot, names::CONSUMER_HANDLED, ("category", "metered"));
    assert_eq!(handled, Some(DebugValue::Counter(1)), "{snapshot:?}");
    let failures = value_of(&snapshot, names::CONSUMER_FAILURES, ("category", "metered"));
    assert_eq!(failures, Some(DebugValue::Counter(0)));
    let Some(DebugValue::Gauge(position)) =
        value_of(&snapshot, names::CONSUMER_POSITION, ("consumer", "probe"))
    else {
        panic!("no position gauge: {snapshot:?}");
    };
    assert!(position.into_inner() >= 0.0);
    assert_eq!(
        value_of(&snapshot, names::CONSUMER_LAG, ("member", "0")),
        Some(DebugValue::Gauge(0.0.into()))
    );
    assert_eq!(
        value_of(
            &snapshot,
            names::OUTBOX_SEND_FAILURES,
            ("kind", "transient")
        ),
        None,
        "no send failed"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_publish_in_a_scope_continues_that_trace() {
    let (server, pool, kit, _dir) = fresh().await;
    let parent = TraceContext::new_root().with_tracestate("vendor=1");
    let seen =
        trace_context::scope(parent.clone(), publish_and_consume(&kit, &pool, "scoped")).await;
    let seen = seen.0.lock().unwrap().clone();
    let (metadata, current) = &seen[0];
    let metadata = metadata.as_ref().expect("metadata");
    assert_eq!(metadata["traceparent"], parent.traceparent());
    assert_eq!(metadata["tracestate"], "vendor=1");
    let current = current.as_ref().expect("context in the handler");
    assert_eq!(current.trace_id(), parent.trace_id());
    assert_eq!(current.tracestate(), Some("vendor=1"));
    server.shutdown().await;
}

/// A parked stream's gauge clears when the released stream is handled, in a category that
/// gets no other event (before, the gauge was set only when the consumer advanced, and an
/// alert on it never cleared); the replay's outcomes are counted.
#[tokio::test(flavor = "current_thread")]
async fn a_released_stream_clears_the_parked_gauge() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use eventodb_kit::consumer::{
        ConsumerAdmin, ConsumerOptions, FailurePolicy, Handled, HandlerError, RetryPolicy,
        consumer_fn,
    };
    use eventodb_kit::outbox::{RawMessage, SenderOptions};

    // The debugging recorder hands out each value once (a snapshot resets counters and
    // gauges): one snapshot, at the end.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let (server, _pool, kit, _dir) = fresh().await;
    let broken = Arc::new(AtomicBool::new(true));
    let (tried, handled) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let handler = {
        let (broken, tried, handled) = (broken.clone(), tried.clone(), handled.clone());
        consumer_fn("quiet", move |_| {
            tried.fetch_add(1, Ordering::SeqCst);
            let broken = broken.load(Ordering::SeqCst);
            if !broken {
                handled.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                if broken {
                    Err(HandlerError::new("payment gateway refused"))
                } else {
                    Ok(Handled::Done)
                }
            }
        })
    };
    let workers = kit
        .workers()
        .outbox_sender(SenderOptions::default())
        .consumer(
            handler,
            ConsumerOptions::new("parker")
                .failure_policy(FailurePolicy::ParkStream)
                .retry(RetryPolicy::none()),
        )
        .spawn()
        .await
        .expect("spawn");
    let mut tx = kit.begin().await.unwrap();
    for n in 0..2 {
        kit.outbox()
            .write(
                &mut *tx,
                "quiet-1",
                RawMessage::new("Paid", serde_json::json!({ "n": n })),
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let admin = ConsumerAdmin::for_kit(&kit);
    let parked = || async { admin.parked("quiet", "parker").await.unwrap().len() };
    eventually("both events are parked", async || parked().await == 2).await;
    assert_eq!(
        tried.load(Ordering::SeqCst),
        1,
        "the second waits behind the first"
    );

    broken.store(false, Ordering::SeqCst);
    assert!(
        admin
            .release_stream("quiet", "parker", "quiet-1")
            .await
            .unwrap()
    );
    eventually("the stream is unparked", async || {
        handled.load(Ordering::SeqCst) == 2
            && admin
                .parked_streams("quiet", "parker")
                .await
                .unwrap()
                .is_empty()
    })
    .await;
    // The gauge is set when the stream is unparked, just after the stream row is deleted.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(parked_gauge(&snapshot), 0.0, "{snapshot:?}");
    assert_eq!(parker_count(&snapshot, names::CONSUMER_FAILURES), 1);
    assert_eq!(
        parker_count(&snapshot, names::CONSUMER_HANDLED),
        2,
        "both events, replayed: {snapshot:?}"
    );
    assert_eq!(
        value_of(&snapshot, names::CONSUMER_RUNNING, ("consumer", "parker")),
        Some(DebugValue::Gauge(1.0.into()))
    );
    workers.shutdown().await.unwrap();
    server.shutdown().await;
}

/// A consumer stopped by its failure policy reads as not running (its lag no longer moves,
/// so this gauge is what an alert can watch).
#[tokio::test(flavor = "current_thread")]
async fn a_stopped_consumer_is_not_running() {
    use eventodb_kit::consumer::{ConsumerOptions, FailurePolicy, HandlerError, RetryPolicy};
    use eventodb_kit::consumer::{Handled, consumer_fn};
    use eventodb_kit::outbox::{RawMessage, SenderOptions};

    // One snapshot, at the end: the debugging recorder resets values on snapshot.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (server, _pool, kit, _dir) = fresh().await;
    let failing = consumer_fn("stopping", |_| async {
        Err::<Handled, _>(HandlerError::new("always"))
    });
    let mut workers = kit
        .workers()
        .outbox_sender(SenderOptions::default())
        .consumer(
            failing,
            ConsumerOptions::new("stopper")
                .failure_policy(FailurePolicy::Stop)
                .retry(RetryPolicy::none()),
        )
        .spawn()
        .await
        .expect("spawn");
    let mut tx = kit.begin().await.unwrap();
    kit.outbox()
        .write(
            &mut *tx,
            "stopping-1",
            RawMessage::new("Paid", serde_json::json!({})),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stopped = tokio::time::timeout(observe_support::LONG, workers.next_failure())
        .await
        .expect("the consumer stops");
    assert!(
        matches!(stopped, Some(eventodb_kit::Error::ConsumerStopped { .. })),
        "{stopped:?}"
    );
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(
        value_of(&snapshot, names::CONSUMER_RUNNING, ("consumer", "stopper")),
        Some(DebugValue::Gauge(0.0.into())),
        "{snapshot:?}"
    );
    let _ = workers.shutdown().await;
    server.shutdown().await;
}

/// Polls `check` until it holds.
/// A consumer group passes the events of a stream the server gives to no member (a name
/// with no `-`): member 0 says so, once per stream, where they went by unseen.
#[tokio::test(flavor = "current_thread")]
async fn a_group_warns_of_a_stream_no_member_gets() {
    let logs = Captured::default();
    let subscriber = logs.subscriber(tracing::Level::WARN);
    // This thread only: the runtime is current-thread, so its tasks log here and other
    // tests' threads do not.
    let _guard = tracing::subscriber::set_default(subscriber);
    let (server, _pool, kit, _dir) = fresh().await;
    let client = kit.client();
    let mut last = 0;
    for _ in 0..3 {
        last = client
            .stream_write(
                "nameless",
                &eventodb_kit::client::NewMessage::new("T", serde_json::json!({})),
                &eventodb_kit::client::WriteOptions::new(),
            )
            .await
            .expect("write")
            .global_position;
    }
    let handled = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = std::sync::Arc::clone(&handled);
    let workers = kit
        .workers()
        .consumer(
            eventodb_kit::consumer::consumer_fn("nameless", move |_message| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async {
                    Ok::<_, eventodb_kit::consumer::HandlerError>(
                        eventodb_kit::consumer::Handled::Done,
                    )
                }
            }),
            eventodb_kit::consumer::ConsumerOptions::new("grouped").group(0, 2),
        )
        .spawn()
        .await
        .expect("spawn");
    for handle in workers.consumers() {
        handle
            .wait_for(last, observe_support::LONG)
            .await
            .expect("passed");
    }
    workers.shutdown().await.expect("shutdown");
    assert_eq!(handled.load(std::sync::atomic::Ordering::SeqCst), 0);
    let text = logs.text();
    assert_eq!(
        text.matches("gives this stream to no member").count(),
        1,
        "{text}"
    );
    assert!(text.contains("nameless"), "{text}");
    drop(server);
}

async fn eventually(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = tokio::time::Instant::now() + observe_support::LONG;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The embedded server, a fresh SQLite database and a kit on both.
async fn fresh() -> (
    TestServer,
    sqlx::SqlitePool,
    eventodb_kit::Kit<sqlx::Sqlite>,
    tempfile::TempDir,
) {
    let server = TestServer::start().await.expect("server");
    let (pool, dir) = sqlite().await;
    let kit = kit(&server, &pool).await;
    (server, pool, kit, dir)
}

/// One entry of a metrics snapshot.
type Entry = (
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
);

/// The `parker` consumer's parked-streams gauge, -1 before it is set.
fn parked_gauge(snapshot: &[Entry]) -> f64 {
    match value_of(snapshot, names::CONSUMER_PARKED, ("consumer", "parker")) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        _ => -1.0,
    }
}

/// A counter of the `parker` consumer.
fn parker_count(snapshot: &[Entry], name: &str) -> u64 {
    match value_of(snapshot, name, ("consumer", "parker")) {
        Some(DebugValue::Counter(n)) => n,
        _ => 0,
    }
}
