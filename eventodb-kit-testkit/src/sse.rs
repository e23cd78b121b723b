//! `/subscribe`: server-sent pokes (protocol §6, production `fasthttp` behaviour).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio_util::sync::CancellationToken;

use crate::groups;
use crate::http::{Body, Dropped, full, text};
use crate::pubsub::{Poke, Receiver};
use crate::query;
use crate::reads::{self, CategoryQuery, StreamQuery};
use crate::state::Shared;

/// Catch-up is one query with this batch size; later backlog gets no poke.
const CATCH_UP_LIMIT: i64 = 1000;

/// What a subscription follows, with its cursor for live pokes.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// Live pokes with `position >= next`.
    Stream { name: String, next: i64 },
    /// Live pokes with `globalPosition >= next`, polynomial group filter when `size > 0`.
    Category {
        name: String,
        next: i64,
        member: i64,
        size: i64,
    },
    /// Live pokes with `globalPosition >= from`; the cursor never moves.
    All { from: i64 },
}

impl Filter {
    /// The frame for `poke` if it passes, advancing the cursor.
    fn accept(&mut self, poke: &Poke) -> Option<Bytes> {
        match self {
            Filter::Stream { name, next } => {
                if poke.stream != *name || poke.position < *next {
                    return None;
                }
                *next = poke.position + 1;
            }
            Filter::Category {
                name,
                next,
                member,
                size,
            } => {
                if groups::category(&poke.stream) != name || poke.global_position < *next {
                    return None;
                }
                if *size > 0 && !groups::live_poke_matches(&poke.stream, *member, *size) {
                    return None;
                }
                *next = poke.global_position + 1;
            }
            Filter::All { from } => {
                if poke.global_position < *from {
                    return None;
                }
            }
        }
        Some(frame(&poke.stream, poke.position, poke.global_position))
    }
}

/// `event: poke` with the keys in Go struct order.
fn frame(stream: &str, position: i64, global_position: i64) -> Bytes {
    Bytes::from(format!(
        "event: poke\ndata: {{\"stream\":{},\"position\":{position},\"globalPosition\":{global_position}}}\n\n",
        crate::json::quote(stream)
    ))
}

/// Parses and validates the query (§6.2); `Err` is the plain-text 400 body.
fn parse(query_string: Option<&str>) -> Result<Filter, &'static str> {
    let param = |key: &str| query::get(query_string, key).filter(|v| !v.is_empty());
    let stream = param("stream");
    let category = param("category");
    let all = param("all").is_some_and(|v| v == "true");
    if stream.is_none() && category.is_none() && !all {
        return Err("Either 'stream', 'category', or 'all=true' parameter required");
    }
    if all && (stream.is_some() || category.is_some()) {
        return Err("Cannot combine 'all' with 'stream' or 'category'");
    }
    if stream.is_some() && category.is_some() {
        return Err("Cannot specify both 'stream' and 'category'");
    }
    let int = |key: &str, message: &'static str| match param(key) {
        None => Ok(0),
        Some(v) => v.parse::<i64>().map_err(|_| message),
    };
    let position = int("position", "Invalid position parameter")?;
    if let Some(name) = stream {
        return Ok(Filter::Stream {
            name,
            next: position,
        });
    }
    let Some(name) = category else {
        return Ok(Filter::All { from: position });
    };
    let member = int("consumer", "Invalid consumer parameter")?;
    let size = int("size", "Invalid size parameter")?;
    if (member > 0 || size > 0) && (size == 0 || member >= size) {
        return Err("Invalid consumer group: member must be < size");
    }
    Ok(Filter::Category {
        name,
        next: position,
        member,
        size,
    })
}

/// The catch-up pokes (at most 1000), advancing the filter's cursor.
fn catch_up(shared: &Shared, namespace: &str, filter: &mut Filter) -> Vec<Bytes> {
    let store = shared.store();
    // An unknown namespace (test mode) is only logged by the real server.
    let Ok(ns) = store.namespace(namespace) else {
        return Vec::new();
    };
    let rows = match filter {
        Filter::Stream { name, next } => {
            let q = StreamQuery {
                position: *next,
                global_position: None,
                batch_size: CATCH_UP_LIMIT,
                both: false,
            };
            reads::stream_get(ns, name, q)
        }
        Filter::Category {
            name,
            next,
            member,
            size,
        } => {
            let q = CategoryQuery {
                position: *next,
                batch_size: CATCH_UP_LIMIT,
                correlation: None,
                group: (*size > 0).then_some((*member, *size)),
                correlation_by_category: false,
                // The catch-up reads through the backend's own category read, so Pebble's
                // scan of `batchSize × size` keys applies here as in `category.get`.
                scan_limit: shared.config.backend == crate::Backend::Pebble,
            };
            reads::category_get(ns, name, &q)
        }
        Filter::All { .. } => return vec![Bytes::from_static(b": ready\n\n")],
    };
    let mut frames = Vec::with_capacity(rows.len());
    for m in rows {
        match filter {
            Filter::Stream { next, .. } => *next = m.position + 1,
            Filter::Category { next, .. } => *next = m.global_position + 1,
            Filter::All { .. } => {}
        }
        frames.push(frame(&m.stream, m.position, m.global_position));
    }
    frames
}

/// A live subscription: pokes in, frames out, until the connection is dropped.
struct Live {
    receiver: Receiver,
    filter: Filter,
    cancel: CancellationToken,
}

impl Live {
    /// The next frame; `Err` when the subscription must end (drop, or hub cleared).
    async fn next_frame(&mut self) -> Result<Bytes, Dropped> {
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Dropped),
                poke = self.receiver.recv() => match poke {
                    None => return Err(Dropped),
                    Some(poke) => {
                        if let Some(frame) = self.filter.accept(&poke) {
                            return Ok(frame);
                        }
                    }
                },
            }
        }
    }
}

/// Answers `/subscribe` for an authenticated namespace.
pub(crate) async fn subscribe(
    shared: Arc<Shared>,
    namespace: String,
    query_string: Option<&str>,
) -> Result<Response<Body>, Dropped> {
    let mut filter = match parse(query_string) {
        Ok(f) => f,
        Err(message) => return Ok(text(StatusCode::BAD_REQUEST, message)),
    };
    let buffer = shared.config.poke_buffer;
    let (receiver, mut first) = match shared.config.subscribe_gap {
        // Registered before the catch-up query, so no write falls between the two; the
        // cursor drops the live copies of what the catch-up already sent.
        None => {
            let receiver = shared.hub.subscribe(&namespace, buffer);
            (receiver, catch_up(&shared, &namespace, &mut filter))
        }
        // The real server's order, with the window widened.
        Some(gap) => {
            let first = catch_up(&shared, &namespace, &mut filter);
            tokio::time::sleep(gap).await;
            (shared.hub.subscribe(&namespace, buffer), first)
        }
    };
    let mut live = Live {
        receiver,
        filter,
        cancel: shared.faults.sse_token(),
    };
    if first.is_empty() {
        // fasthttp sends no status line until the first chunk (§6.3): wait for a poke.
        first.push(live.next_frame().await?);
    }
    let head = futures_util::stream::iter(first.into_iter().map(|b| Ok(Frame::data(b))));
    let tail = futures_util::stream::unfold(Some(live), |state| async move {
        let mut live = state?;
        match live.next_frame().await {
            Ok(frame) => Some((Ok(Frame::data(frame)), Some(live))),
            Err(_) => Some((Err(std::io::Error::other("subscription dropped")), None)),
        }
    });
    let body = StreamBody::new(futures_util::StreamExt::chain(head, tail)).boxed_unsync();
    let mut response = full(StatusCode::OK, "text/event-stream", Bytes::new());
    *response.body_mut() = body;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poke(stream: &str, position: i64, gp: i64) -> Poke {
        Poke {
            namespace: "n".into(),
            stream: stream.into(),
            position,
            global_position: gp,
        }
    }

    #[test]
    fn validation_messages_in_order() {
        assert_eq!(
            parse(None),
            Err("Either 'stream', 'category', or 'all=true' parameter required")
        );
        assert_eq!(
            parse(Some("category=&all=1")),
            Err("Either 'stream', 'category', or 'all=true' parameter required")
        );
        assert_eq!(
            parse(Some("all=true&stream=a")),
            Err("Cannot combine 'all' with 'stream' or 'category'")
        );
        assert_eq!(
            parse(Some("stream=a&category=b")),
            Err("Cannot specify both 'stream' and 'category'")
        );
        assert_eq!(
            parse(Some("stream=a&position=x")),
            Err("Invalid position parameter")
        );
        assert_eq!(
            parse(Some("category=a&consumer=x")),
            Err("Invalid consumer parameter")
        );
        assert_eq!(
            parse(Some("category=a&size=1.5")),
            Err("Invalid size parameter")
        );
        assert_eq!(
            parse(Some("category=a&consumer=2&size=2")),
            Err("Invalid consumer group: member must be < size")
        );
        assert_eq!(
            parse(Some("category=a&consumer=1")),
            Err("Invalid consumer group: member must be < size")
        );
        assert!(parse(Some("category=a&consumer=0&size=-1")).is_ok());
        assert!(
            parse(Some("stream=a&consumer=x")).is_ok(),
            "consumer is read only for category"
        );
        assert_eq!(
            parse(Some("stream=a-1%2Bx&position=")),
            Ok(Filter::Stream {
                name: "a-1+x".into(),
                next: 0
            })
        );
        assert_eq!(
            parse(Some("all=true&position=-3")),
            Ok(Filter::All { from: -3 })
        );
    }

    #[test]
    fn frames_have_go_struct_key_order() {
        assert_eq!(
            frame("a<b", 1, 2),
            Bytes::from_static(b"event: poke\ndata: {\"stream\":\"a\\u003cb\",\"position\":1,\"globalPosition\":2}\n\n")
        );
    }

    #[test]
    fn stream_filter_moves_its_cursor() {
        let mut f = Filter::Stream {
            name: "s-1".into(),
            next: 1,
        };
        assert!(f.accept(&poke("s-1", 0, 1)).is_none());
        assert!(f.accept(&poke("s-2", 1, 2)).is_none());
        assert!(f.accept(&poke("s-1", 1, 3)).is_some());
        assert!(f.accept(&poke("s-1", 1, 3)).is_none());
    }

    #[test]
    fn category_filter_uses_the_live_hash() {
        // account-123 / size 2: md5 gives member 1, live pokes go to member 0 (§3.5).
        let mut m0 = Filter::Category {
            name: "account".into(),
            next: 0,
            member: 0,
            size: 2,
        };
        let mut m1 = Filter::Category {
            name: "account".into(),
            next: 0,
            member: 1,
            size: 2,
        };
        assert!(m0.accept(&poke("account-123", 0, 5)).is_some());
        assert!(m1.accept(&poke("account-123", 0, 5)).is_none());
        let mut none = Filter::Category {
            name: "account".into(),
            next: 0,
            member: -1,
            size: 2,
        };
        assert!(none.accept(&poke("account-123", 0, 6)).is_none());
        let mut other = Filter::Category {
            name: "account".into(),
            next: 0,
            member: 0,
            size: 0,
        };
        assert!(other.accept(&poke("accounts-1", 0, 7)).is_none());
    }

    #[test]
    fn all_filter_keeps_its_start() {
        let mut f = Filter::All { from: 3 };
        assert!(f.accept(&poke("a", 0, 2)).is_none());
        assert!(f.accept(&poke("a", 0, 4)).is_some());
        assert!(f.accept(&poke("b", 0, 3)).is_some());
    }
}
