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
use observe_support::{kit, publish_and_consume, sqlite};

fn value_of(
    snapshot: &[(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
    label: (&str, &str),
) -> Option<DebugValue> {
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

    let server = TestServer::start().await.expect("server");
    let (pool, _dir) = sqlite().await;
    let kit = kit(&server, &pool).await;
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
    let server = TestServer::start().await.expect("server");
    let (pool, _dir) = sqlite().await;
    let kit = kit(&server, &pool).await;
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
