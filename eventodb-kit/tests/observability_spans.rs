//! The W3C trace context of a publish made inside a `tracing` span reaches the consumer's
//! per-event span fields. Its own test binary: it installs a global subscriber.

mod observe_support;

use eventodb_kit::trace_context::TraceContext;
use eventodb_kit_testkit::TestServer;
use observe_support::{Captured, kit, publish_and_consume, sqlite};
use tracing::Instrument;

#[tokio::test(flavor = "current_thread")]
async fn a_publish_inside_a_span_carries_its_trace_to_the_consumer() {
    let logs = Captured::default();
    let subscriber = logs.subscriber(tracing::Level::INFO);
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this test binary");

    let server = TestServer::start().await.expect("server");
    let (pool, _dir) = sqlite().await;
    let kit = kit(&server, &pool).await;
    let seen = publish_and_consume(&kit, &pool, "traced")
        .instrument(tracing::info_span!("request"))
        .await;

    let seen = seen.0.lock().unwrap().clone();
    let (metadata, current) = &seen[0];
    let traceparent = metadata
        .as_ref()
        .and_then(|metadata| metadata["traceparent"].as_str())
        .expect("traceparent in the metadata");
    let published = TraceContext::parse(traceparent).expect("valid traceparent");
    let current = current.as_ref().expect("a trace context in the handler");
    assert_eq!(current.trace_id(), published.trace_id());
    assert_ne!(
        current.span_id(),
        published.span_id(),
        "the handling is a child"
    );

    let logs = logs.text();
    let line = logs
        .lines()
        .find(|line| line.contains("probe handled"))
        .unwrap_or_else(|| panic!("no handler log line in:\n{logs}"));
    for field in [
        format!("trace_id={}", published.trace_id()),
        format!("parent_span_id={}", published.span_id()),
        format!("span_id={}", current.span_id()),
        "stream=traced-1".to_owned(),
        "consumer=probe".to_owned(),
    ] {
        assert!(
            line.contains(&field),
            "{field} missing from: {line}\nall logs:\n{logs}"
        );
    }
    server.shutdown().await;
}
