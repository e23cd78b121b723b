//! W3C trace context (`traceparent`, `tracestate`) carried from a publish to the consumers,
//! without OpenTelemetry.
//!
//! # How it flows
//! - **Publish.** An outbox write whose metadata has no `traceparent` gets one from
//!   [`current`]: the installed [`Propagator`] if any, else the context of the enclosing
//!   [`scope`] (consumers set one around each handler, so events a handler publishes continue
//!   its trace). Failing both, a write made inside an enabled `tracing` span starts a fresh
//!   trace (logged at debug level as `traceparent` in that span). A `traceparent` the caller
//!   put in the metadata is kept as it is. The idempotency check ignores these fields.
//! - **Consume.** Each handled event runs in a `consumer_event` span with the fields `id`,
//!   `stream`, `global_position`, `message_type` and, when the event carries a valid
//!   `traceparent`, `trace_id`, `parent_span_id` (the publisher's span id) and `span_id` (a new
//!   id for this handling). The handler runs in a [`scope`] of that context, so
//!   [`current`] inside a handler returns it.
//!
//! # OpenTelemetry
//! Install a [`Propagator`] with [`set_propagator`]: `current` reads the OpenTelemetry context
//! of `tracing::Span::current()` (e.g. with `tracing-opentelemetry`'s `OpenTelemetrySpanExt`),
//! and `link` sets the publisher's context as the parent of the consumer's span. Without one,
//! the span fields above let a log pipeline join the publish and the handling by `trace_id`.
//!
//! # Examples
//!
//! ```
//! use eventodb_kit::trace_context::TraceContext;
//!
//! let parent = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! let child = parent.child();
//! assert_eq!(child.trace_id(), parent.trace_id());
//! assert_ne!(child.span_id(), parent.span_id());
//! assert!(child.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! ```

use std::fmt;
use std::future::Future;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::Instrument;
use tracing::field::Empty;

use crate::client::CategoryMessage;

/// Metadata key of the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// Metadata key of the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";

/// A W3C trace context: trace id, parent span id, flags and an optional `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    tracestate: Option<String>,
}

impl TraceContext {
    /// A new trace: random trace and span ids, sampled.
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero(rand::random()),
            span_id: nonzero(rand::random()),
            flags: 1,
            tracestate: None,
        }
    }

    /// The same trace with a new span id (a child of this context).
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero(rand::random()),
            ..self.clone()
        }
    }

    /// Parses a `traceparent` header value; `None` when it is not valid W3C: wrong shape,
    /// upper-case hex, version `ff`, all-zero ids, or a version-`00` value with extra parts.
    pub fn parse(traceparent: &str) -> Option<Self> {
        let value = traceparent.trim();
        let bytes = value.as_bytes();
        if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let version = hex_bytes::<1>(&value[0..2])?[0];
        if version == 0xff
            || (version == 0 && bytes.len() != 55)
            || (bytes.len() > 55 && bytes[55] != b'-')
        {
            return None;
        }
        let trace_id = hex_bytes::<16>(&value[3..35])?;
        let span_id = hex_bytes::<8>(&value[36..52])?;
        let flags = hex_bytes::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
            tracestate: None,
        })
    }

    /// Attaches a `tracestate` (vendor data, passed through as it is; empty means none).
    pub fn with_tracestate(mut self, tracestate: impl Into<String>) -> Self {
        let tracestate = tracestate.into();
        self.tracestate = (!tracestate.is_empty()).then_some(tracestate);
        self
    }

    /// Reads `traceparent` (and `tracestate`) from event metadata; `None` when absent or
    /// invalid.
    pub fn from_metadata(metadata: &Value) -> Option<Self> {
        let context = Self::parse(metadata.get(TRACEPARENT)?.as_str()?)?;
        Some(match metadata.get(TRACESTATE).and_then(Value::as_str) {
            Some(state) => context.with_tracestate(state),
            None => context,
        })
    }

    /// Writes `traceparent` (and `tracestate`, if any) into a metadata object.
    pub fn write_metadata(&self, metadata: &mut Map<String, Value>) {
        metadata.insert(TRACEPARENT.into(), Value::String(self.traceparent()));
        if let Some(state) = &self.tracestate {
            metadata.insert(TRACESTATE.into(), Value::String(state.clone()));
        }
    }

    /// The `traceparent` value: `00-<trace id>-<span id>-<flags>`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }

    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The span id, 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        hex::encode(self.span_id)
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The `tracestate`, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes == [0; N] {
        bytes[N - 1] = 1;
    }
    bytes
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Bridges the kit's trace context to a tracing system such as OpenTelemetry.
pub trait Propagator: Send + Sync + 'static {
    /// The context of the current span, to write into the metadata of an outbox write.
    fn current(&self) -> Option<TraceContext>;

    /// Called with each `consumer_event` span and the publisher's context it carries: make
    /// `parent` the span's parent (or add a link). The default does nothing.
    fn link(&self, span: &tracing::Span, parent: &TraceContext) {
        let _ = (span, parent);
    }
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the process-wide [`Propagator`]. `false` when one was installed already (the
/// first one stays).
pub fn set_propagator(propagator: impl Propagator) -> bool {
    PROPAGATOR.set(Box::new(propagator)).is_ok()
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `future` with `context` as the [`current`] trace context (for its task only).
pub async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// The current trace context: the [`Propagator`]'s, else the enclosing [`scope`]'s.
pub fn current() -> Option<TraceContext> {
    PROPAGATOR
        .get()
        .and_then(|propagator| propagator.current())
        .or_else(|| CURRENT.try_with(Clone::clone).ok())
}

/// Adds the trace context to outbox metadata unless the caller set a `traceparent`.
pub(crate) fn inject(metadata: &mut Option<Value>) {
    if metadata
        .as_ref()
        .is_some_and(|metadata| metadata.get(TRACEPARENT).is_some())
    {
        return;
    }
    let context = current().or_else(|| {
        if tracing::Span::current().is_disabled() {
            return None;
        }
        let context = TraceContext::new_root();
        tracing::debug!(traceparent = %context, "trace started by an outbox write");
        Some(context)
    });
    let Some(context) = context else { return };
    match metadata {
        Some(Value::Object(map)) => context.write_metadata(map),
        None => {
            let mut map = Map::new();
            context.write_metadata(&mut map);
            *metadata = Some(Value::Object(map));
        }
        // Checked to be an object before; anything else is left alone.
        Some(_) => {}
    }
}

/// The `tracing` span of one consumer worker.
pub(crate) fn consumer_span(
    namespace: &str,
    category: &str,
    consumer: &str,
    member: i64,
) -> tracing::Span {
    tracing::info_span!("consumer", %namespace, %category, %consumer, member)
}

/// Runs the handling of `message` in its `consumer_event` span and trace [`scope`].
pub(crate) fn around_event<F: Future>(
    message: &CategoryMessage,
    future: F,
) -> impl Future<Output = F::Output> {
    let span = tracing::info_span!(
        "consumer_event",
        id = %message.id,
        stream = %message.stream_name,
        global_position = message.global_position,
        message_type = %message.message_type,
        trace_id = Empty,
        span_id = Empty,
        parent_span_id = Empty,
    );
    let parent = message
        .metadata
        .as_ref()
        .and_then(TraceContext::from_metadata);
    let context = match &parent {
        Some(parent) => Some(parent.child()),
        None if span.is_disabled() => None,
        None => Some(TraceContext::new_root()),
    };
    if let Some(context) = &context {
        span.record("trace_id", tracing::field::display(context.trace_id()));
        span.record("span_id", tracing::field::display(context.span_id()));
    }
    if let Some(parent) = &parent {
        span.record("parent_span_id", tracing::field::display(parent.span_id()));
        if let Some(propagator) = PROPAGATOR.get() {
            propagator.link(&span, parent);
        }
    }
    let future = future.instrument(span);
    async move {
        match context {
            Some(context) => CURRENT.scope(context, future).await,
            None => future.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_round_trip() {
        let context = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(context.traceparent(), SAMPLE);
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id(), "00f067aa0ba902b7");
        assert_eq!(context.flags(), 1);
    }

    #[test]
    fn rejects_invalid_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may append fields.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc";
        assert!(TraceContext::parse(future).is_some());
    }

    #[test]
    fn new_roots_differ_and_parse_back() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.traceparent()), Some(a));
    }

    #[test]
    fn metadata_round_trip_with_tracestate() {
        let context = TraceContext::parse(SAMPLE).unwrap().with_tracestate("k=v");
        let mut map = Map::new();
        context.write_metadata(&mut map);
        let value = Value::Object(map);
        assert_eq!(value[TRACESTATE], "k=v");
        assert_eq!(TraceContext::from_metadata(&value), Some(context));
        assert_eq!(
            TraceContext::from_metadata(&json!({ "traceparent": 5 })),
            None
        );
    }

    #[tokio::test]
    async fn inject_uses_the_scope_and_keeps_a_callers_traceparent() {
        let context = TraceContext::parse(SAMPLE).unwrap();
        let mut none = None;
        inject(&mut none);
        assert_eq!(none, None, "no scope, no span: nothing added");

        let (mut empty, mut other, mut own) = (
            None,
            Some(json!({ "a": 1 })),
            Some(json!({ "traceparent": "x" })),
        );
        scope(context.clone(), async {
            inject(&mut empty);
            inject(&mut other);
            inject(&mut own);
        })
        .await;
        assert_eq!(empty, Some(json!({ "traceparent": SAMPLE })));
        assert_eq!(other, Some(json!({ "a": 1, "traceparent": SAMPLE })));
        assert_eq!(own, Some(json!({ "traceparent": "x" })));
    }
}
