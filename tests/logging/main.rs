//! The client logs its requests with `tracing` (debug level) and never the token.
//!
//! A test target of its own: `tracing` caches per-callsite interest process-wide, and a
//! callsite first hit by a concurrent test (with no subscriber) can race the registration
//! of this test's thread-local subscriber and stay disabled.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eventodb_kit::client::{GetStreamOptions, NewMessage, Subscription, WriteOptions};
use eventodb_kit_tests::{Env, unique_stream};
use futures_util::StreamExt as _;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A `tracing` subscriber that writes every span and event, with all their fields, into one
/// string.
#[derive(Clone, Default)]
struct Recorder {
    text: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Recorder {
    fn push(&self, line: String) {
        let mut text = self.text.lock().unwrap();
        text.push_str(&line);
        text.push('\n');
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}", span.metadata().name());
        span.record(&mut Fields(&mut line));
        self.push(line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("record");
        values.record(&mut Fields(&mut line));
        self.push(line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!("event {}", event.metadata().level());
        event.record(&mut Fields(&mut line));
        self.push(line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn requests_are_traced_without_the_token() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());

    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("log");
    client
        .stream_write(
            &stream,
            &NewMessage::new("T", json!({"x": 1})),
            &WriteOptions::new(),
        )
        .await
        .unwrap();
    client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    let _ = client.call_raw("no.such.method", &[]).await.unwrap_err();
    let mut pokes = client
        .subscribe(&Subscription::stream(&stream))
        .await
        .unwrap();
    pokes.next().await.unwrap().unwrap();
    drop(pokes);

    let logs = recorder.text.lock().unwrap().clone();
    assert!(logs.contains("eventodb.rpc"), "{logs}");
    assert!(
        logs.contains("stream.write") && logs.contains("rpc reply"),
        "{logs}"
    );
    assert!(logs.contains("METHOD_NOT_FOUND"), "{logs}");
    let token = env.token().expose_secret();
    let secret_part = token.rsplit('_').next().unwrap();
    assert!(!logs.contains(token), "the token was logged");
    assert!(
        !logs.contains(secret_part),
        "the token's secret part was logged"
    );
}
