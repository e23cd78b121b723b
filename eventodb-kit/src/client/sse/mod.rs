//! SSE subscriptions (`/subscribe`): a [`Stream`] of typed [`Poke`]s.
//!
//! A poke says "stream S has a message at position P / global position G". It is a hint,
//! not a delivery: the server drops pokes when a subscriber is slow, can skip pokes of
//! concurrent writes, sends only the first 1000 catch-up pokes, and never sends heartbeats.
//! Consumers should always read with `category.get` from their own stored cursor, and use
//! pokes only to wake up. A subscription made with [`Subscription::reconnect`] reconnects by
//! itself, with backoff, after the connection drops or the server closes it, and resumes
//! after the last poke; otherwise the stream ends, and the caller subscribes again with
//! [`PokeStream::resume_subscription`] (or from its own cursor).

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

use super::Client;
use super::builder::endpoint;
use super::options::ConsumerGroup;
use super::rpc::{error_from_reply, snippet};

mod parser;

pub use parser::{SseEvent, SseParser};

/// One server poke: a message exists at `position` in `stream` (global `global_position`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Poke {
    /// The full stream name.
    pub stream: String,
    /// The message's position in its stream.
    pub position: i64,
    /// The message's global position.
    pub global_position: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Stream(String),
    Category(String),
    All,
}

/// What to subscribe to: one stream, one category (optionally one consumer-group member's
/// share), or the whole namespace.
///
/// # Examples
/// ```
/// use eventodb_kit::client::Subscription;
/// let s = Subscription::category("account").consumer_group(0, 2).position(42);
/// assert_eq!(s.start_position(), Some(42));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    target: Target,
    position: Option<i64>,
    consumer_group: Option<ConsumerGroup>,
    reconnect: Option<Reconnect>,
}

/// The shortest first wait of [`Subscription::reconnect`]: shorter, a server refusing every
/// connection would be asked again about as fast as the timer runs.
const MIN_RECONNECT_WAIT: Duration = Duration::from_millis(1);

/// How a [`Subscription::reconnect`] subscription waits before it connects again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reconnect {
    initial: Duration,
    max: Duration,
}

impl Subscription {
    /// Pokes for one stream; [`Subscription::position`] is a **stream** position.
    pub fn stream(name: impl Into<String>) -> Self {
        Self::new(Target::Stream(name.into()))
    }

    /// Pokes for every stream of a category; [`Subscription::position`] is a **global**
    /// position.
    pub fn category(name: impl Into<String>) -> Self {
        Self::new(Target::Category(name.into()))
    }

    /// Pokes for every stream of the namespace, live only (no catch-up);
    /// [`Subscription::position`] is a global position.
    pub fn all() -> Self {
        Self::new(Target::All)
    }

    fn new(target: Target) -> Self {
        Subscription {
            target,
            position: None,
            consumer_group: None,
            reconnect: None,
        }
    }

    /// Start at this position (inclusive): the server first sends up to 1000 catch-up pokes
    /// for existing messages (stream and category subscriptions), then live ones.
    pub fn position(mut self, position: i64) -> Self {
        self.position = Some(position);
        self
    }

    /// Only pokes for `member` of a group of `size` (category subscriptions only). Live
    /// pokes are partitioned by a different hash than `category.get` (protocol 6.5): use
    /// them only as a wake-up signal.
    pub fn consumer_group(mut self, member: i64, size: i64) -> Self {
        self.consumer_group = Some(ConsumerGroup { member, size });
        self
    }

    /// Reconnect by itself when the connection drops, the server closes it, or connecting
    /// fails for a reason that may pass (see [`Error::is_transient`]): after `initial`, then
    /// twice as long each time up to `max` (with jitter), for as long as it takes. Errors
    /// that waiting cannot mend (a refused token, bad parameters) still end the stream,
    /// after the error item. The waits start again from `initial` once a poke arrives.
    ///
    /// Each new connection starts after the last poke received (see
    /// [`PokeStream::resume_subscription`]), or where the first one started when no poke
    /// came. For a stream or category subscription, the server's catch-up pokes then cover
    /// what was written meanwhile (up to its 1000). An `all` subscription has no catch-up:
    /// writes made while it was disconnected bring no poke, so watch
    /// [`PokeStream::reconnections`] and read what you missed. Its first connection is made
    /// by [`Client::subscribe`] itself, which returns its error; the reconnects after it
    /// are bounded by the request timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventodb_kit::client::Subscription;
    /// let s = Subscription::category("account")
    ///     .reconnect(Duration::from_millis(100), Duration::from_secs(5));
    /// assert!(s.reconnects());
    /// ```
    pub fn reconnect(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect = Some(Reconnect { initial, max });
        self
    }

    /// Whether the subscription reconnects by itself ([`Subscription::reconnect`]).
    pub fn reconnects(&self) -> bool {
        self.reconnect.is_some()
    }

    /// The start position, if set.
    pub fn start_position(&self) -> Option<i64> {
        self.position
    }

    /// The stream name of a stream subscription.
    pub fn stream_name(&self) -> Option<&str> {
        match &self.target {
            Target::Stream(name) => Some(name),
            _ => None,
        }
    }

    /// The category of a category subscription.
    pub fn category_name(&self) -> Option<&str> {
        match &self.target {
            Target::Category(name) => Some(name),
            _ => None,
        }
    }

    /// Whether this is a namespace-wide subscription.
    pub fn is_all(&self) -> bool {
        self.target == Target::All
    }

    /// The consumer group, if set.
    pub fn group(&self) -> Option<ConsumerGroup> {
        self.consumer_group
    }

    fn validate(&self) -> Result<()> {
        match &self.target {
            Target::Stream(name) if name.is_empty() => {
                return Err(Error::InvalidArgument(
                    "stream name must be a non-empty string".into(),
                ));
            }
            Target::Category(name) if name.is_empty() => {
                return Err(Error::InvalidArgument(
                    "category must be non-empty (use Subscription::all() for the namespace)".into(),
                ));
            }
            _ => {}
        }
        if let Some(Reconnect { initial, max }) = self.reconnect
            && (initial < MIN_RECONNECT_WAIT || max < initial)
        {
            return Err(Error::InvalidArgument(format!(
                "reconnect waits must be at least {MIN_RECONNECT_WAIT:?} and the longest at least the first, not {initial:?} then up to {max:?}"
            )));
        }
        if let Some(group) = &self.consumer_group {
            if !matches!(self.target, Target::Category(_)) {
                return Err(Error::InvalidArgument(
                    "a consumer group is only possible on a category subscription".into(),
                ));
            }
            group.validate()?;
        }
        Ok(())
    }

    /// The `/subscribe` URL. Values are form-encoded, so `+` travels as `%2B` (the server
    /// decodes a bare `+` as a space).
    fn url(&self, client: &Client) -> Result<reqwest::Url> {
        let mut url = endpoint(&client.inner.base_url, "subscribe")?;
        {
            let mut query = url.query_pairs_mut();
            match &self.target {
                Target::Stream(name) => {
                    query.append_pair("stream", name);
                }
                Target::Category(name) => {
                    query.append_pair("category", name);
                    if let Some(group) = &self.consumer_group {
                        query.append_pair("consumer", &group.member.to_string());
                        query.append_pair("size", &group.size.to_string());
                    }
                }
                Target::All => {
                    query.append_pair("all", "true");
                }
            }
            if let Some(position) = self.position {
                query.append_pair("position", &position.to_string());
            }
        }
        Ok(url)
    }
}

impl Client {
    /// Subscribes to server pokes (`/subscribe`). Takes the [`Subscription`] by value or by
    /// reference.
    ///
    /// The request is started at once, in the background. The server sends nothing, not
    /// even response headers, until the first poke of a stream or category subscription, so
    /// this call does not wait for them: connection, authentication and parameter errors
    /// arrive as the first item of the [`PokeStream`]. An `all` subscription is confirmed
    /// by the server at once (`: ready`), so for it this call waits (up to the request
    /// timeout) and returns those errors directly; when it returns `Ok`, the server has
    /// accepted the subscription.
    ///
    /// There is no timeout on the open stream (the server sends no heartbeats): watch for
    /// silence yourself if you need to.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name or an invalid consumer group; for `all`
    /// also server, HTTP, transport and timeout errors.
    pub async fn subscribe(
        &self,
        subscription: impl std::borrow::Borrow<Subscription>,
    ) -> Result<PokeStream> {
        let subscription: &Subscription = subscription.borrow();
        subscription.validate()?;
        let url = subscription.url(self)?;
        let url_str = url.to_string();
        tracing::debug!(url = %url_str, "subscribing");
        let handle = connect(self.clone(), url, url_str.clone(), None);
        let mut pokes = PokeStream {
            state: State::Connecting(handle),
            parser: SseParser::new(),
            queue: VecDeque::new(),
            url: url_str,
            client: self.clone(),
            subscription: subscription.clone(),
            last: None,
            failures: 0,
            connections: 0,
        };
        if subscription.is_all() {
            let timeout = self.inner.request_timeout;
            if let State::Connecting(handle) = &mut pokes.state {
                let response = match tokio::time::timeout(timeout, handle).await {
                    Ok(joined) => joined.map_err(|e| {
                        Error::Internal(format!("the subscription task failed: {e}"))
                    })??,
                    Err(_) => {
                        return Err(Error::Timeout {
                            url: pokes.url.clone(),
                            after: timeout,
                        });
                    }
                };
                pokes.state = State::Streaming(Box::pin(response.bytes_stream()));
                pokes.connections = 1;
            }
        }
        Ok(pokes)
    }
}

/// Starts the `/subscribe` request in the background: the response once the server sends
/// its headers (for a stream or category subscription, with the first poke), or why not;
/// a [`Error::Timeout`] after `timeout`, if given, without them.
fn connect(
    client: Client,
    url: reqwest::Url,
    task_url: String,
    timeout: Option<Duration>,
) -> JoinHandle<Result<reqwest::Response>> {
    tokio::spawn(async move {
        let mut request = client
            .inner
            .http
            .get(url)
            .header(ACCEPT, "text/event-stream");
        if let Some(auth) = &client.inner.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let sending = request.send();
        let sent = match timeout {
            Some(after) => {
                tokio::time::timeout(after, sending)
                    .await
                    .map_err(|_| Error::Timeout {
                        url: task_url.clone(),
                        after,
                    })?
            }
            None => sending.await,
        };
        let response = sent.map_err(|e| client.map_transport(&task_url, e))?;
        let status = response.status().as_u16();
        let event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if status == 200 && event_stream {
            tracing::debug!(url = %task_url, "subscribed");
            return Ok(response);
        }
        let body = match tokio::time::timeout(client.inner.request_timeout, response.bytes()).await
        {
            Ok(Ok(body)) => body,
            Ok(Err(_)) | Err(_) => Bytes::new(),
        };
        let error = if status == 200 {
            Error::Decode {
                expected: "a text/event-stream reply to /subscribe".into(),
                body: snippet(&body),
            }
        } else {
            error_from_reply(&task_url, status, &body)
        };
        tracing::debug!(url = %task_url, error = crate::error::log_field(&error), "subscription refused");
        Err(error)
    })
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

enum State {
    Connecting(JoinHandle<Result<reqwest::Response>>),
    Streaming(Body),
    /// Waiting to reconnect ([`Subscription::reconnect`]).
    Waiting(Pin<Box<tokio::time::Sleep>>),
    Done,
}

/// The pokes of one subscription: a [`Stream`] of `Result<Poke>`.
///
/// It ends (`None`) when the server closes the connection; an error item (connection lost,
/// authentication refused, bad parameters) is followed by the end. With
/// [`Subscription::reconnect`] it connects again instead, and ends only after an error that
/// waiting cannot mend. Malformed poke data yields an [`Error::Decode`] item and the stream
/// goes on. Dropping it closes the connection.
pub struct PokeStream {
    state: State,
    parser: SseParser,
    queue: VecDeque<Result<Poke>>,
    url: String,
    client: Client,
    subscription: Subscription,
    last: Option<Poke>,
    /// Connections lost or refused in a row (reconnecting subscriptions).
    failures: u32,
    /// Connections made so far, the first included.
    connections: u64,
}

impl std::fmt::Debug for PokeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PokeStream")
            .field("subscription", &self.subscription)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl PokeStream {
    /// The subscription this stream serves.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// The last poke received, if any.
    pub fn last_poke(&self) -> Option<&Poke> {
        self.last.as_ref()
    }

    /// How many times a reconnecting subscription ([`Subscription::reconnect`]) has
    /// connected again. An `all` subscription gets no catch-up: a reader that reads from
    /// its own position should read once when this grows, for what was written while it
    /// was disconnected.
    pub fn reconnections(&self) -> u64 {
        self.connections.saturating_sub(1)
    }

    /// The subscription to reconnect with: the same one, starting after the last poke
    /// received (stream position + 1 for a stream subscription, global position + 1
    /// otherwise), or at the original start when no poke came.
    pub fn resume_subscription(&self) -> Subscription {
        let mut next = self.subscription.clone();
        if let Some(last) = &self.last {
            next.position = Some(match next.target {
                Target::Stream(_) => last.position.saturating_add(1),
                _ => last.global_position.saturating_add(1),
            });
        }
        next
    }

    /// After the connection ended (`why`: `None` when the server closed it): waits and
    /// connects again when the subscription reconnects and the error may pass; otherwise
    /// ends, with the error as the last item.
    fn connection_ended(&mut self, why: Option<Error>) {
        let reconnect = self.subscription.reconnect;
        match (reconnect, why) {
            (Some(backoff), why) if why.as_ref().is_none_or(Error::is_transient) => {
                self.failures = self.failures.saturating_add(1);
                let wait =
                    crate::consumer::backoff::delay(backoff.initial, backoff.max, self.failures);
                match &why {
                    Some(error) => {
                        tracing::warn!(url = %self.url, error = crate::error::log_field(error), ?wait, "subscription lost; reconnecting")
                    }
                    None => {
                        tracing::info!(url = %self.url, ?wait, "subscription closed by the server; reconnecting")
                    }
                }
                self.state = State::Waiting(Box::pin(tokio::time::sleep(wait)));
            }
            (_, Some(error)) => {
                self.state = State::Done;
                self.queue.push_back(Err(error));
            }
            (_, None) => self.state = State::Done,
        }
    }

    /// Starts the next connection, after the last poke received. An `all` subscription's
    /// server answers at once (`: ready`), so its connect is bounded by the request timeout,
    /// as the first one is: a server that takes the connection and says nothing is tried
    /// again.
    fn reconnect(&mut self) {
        let resume = self.resume_subscription();
        match resume.url(&self.client) {
            Ok(url) => {
                self.url = url.to_string();
                self.parser = SseParser::new();
                let timeout = resume.is_all().then_some(self.client.inner.request_timeout);
                self.state =
                    State::Connecting(connect(self.client.clone(), url, self.url.clone(), timeout));
            }
            Err(error) => {
                self.state = State::Done;
                self.queue.push_back(Err(error));
            }
        }
    }

    fn take_events(&mut self, chunk: &[u8]) {
        let mut events = Vec::new();
        if let Err(error) = self.parser.feed(chunk, &mut events) {
            self.queue.push_back(Err(Error::Decode {
                expected: format!("server-sent events ({error})"),
                body: snippet(chunk),
            }));
            // The rest of this connection cannot be read: a reconnecting subscription
            // starts a new one.
            self.connection_ended(None);
            return;
        }
        for event in events {
            if event.event != "poke" {
                continue;
            }
            match serde_json::from_str::<Poke>(&event.data) {
                Ok(poke) => {
                    tracing::trace!(stream = %poke.stream, position = poke.position, global_position = poke.global_position, "poke");
                    self.failures = 0;
                    self.last = Some(poke.clone());
                    self.queue.push_back(Ok(poke));
                }
                Err(e) => self.queue.push_back(Err(Error::Decode {
                    expected: format!("poke data {{stream, position, globalPosition}} ({e})"),
                    body: snippet(event.data.as_bytes()),
                })),
            }
        }
    }
}

impl Stream for PokeStream {
    type Item = Result<Poke>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Poke>>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.queue.pop_front() {
                return Poll::Ready(Some(item));
            }
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.reconnect();
                }
                State::Connecting(handle) => {
                    let joined = ready!(Pin::new(handle).poll(cx));
                    match joined {
                        Ok(Ok(response)) => {
                            this.connections = this.connections.saturating_add(1);
                            if this.failures > 0 {
                                tracing::info!(url = %this.url, "subscription reconnected");
                            }
                            // The backoff starts again with the next poke, not here: a
                            // server that takes the connection and drops it at once would
                            // be asked again after the first wait every time.
                            this.state = State::Streaming(Box::pin(response.bytes_stream()));
                        }
                        Ok(Err(error)) => this.connection_ended(Some(error)),
                        Err(e) => {
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(Error::Internal(format!(
                                "the subscription task failed: {e}"
                            )))));
                        }
                    }
                }
                State::Streaming(body) => match ready!(body.poll_next_unpin(cx)) {
                    Some(Ok(chunk)) => this.take_events(&chunk),
                    Some(Err(e)) => {
                        tracing::debug!(url = %this.url, error = %e, "subscription lost");
                        let error = this.client.map_transport(&this.url, e);
                        this.connection_ended(Some(error));
                    }
                    None => {
                        tracing::debug!(url = %this.url, "subscription closed by the server");
                        this.connection_ended(None);
                    }
                },
            }
        }
    }
}

impl Drop for PokeStream {
    fn drop(&mut self) {
        if let State::Connecting(handle) = &self.state {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POKE: &str = r#"{"stream":"account-1","position":0,"globalPosition":1}"#;

    #[test]
    fn reconnect_waits_are_checked() {
        let ms = Duration::from_millis;
        let refused = |s: Subscription| matches!(s.validate(), Err(Error::InvalidArgument(_)));
        assert!(refused(
            Subscription::stream("s").reconnect(Duration::ZERO, ms(10))
        ));
        assert!(refused(Subscription::stream("s").reconnect(ms(10), ms(5))));
        assert!(refused(
            Subscription::stream("s").reconnect(Duration::from_nanos(1), ms(10))
        ));
        let fine = Subscription::category("c").reconnect(ms(10), ms(10));
        assert!(fine.validate().is_ok() && fine.reconnects());
        assert!(!Subscription::all().reconnects());
    }

    #[test]
    fn subscription_urls_encode_plus_and_groups() {
        let client = Client::builder("http://127.0.0.1:9").build().unwrap();
        let url = Subscription::stream("account-1+x y")
            .position(3)
            .url(&client)
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/subscribe?stream=account-1%2Bx+y&position=3"
        );
        let url = Subscription::category("account")
            .consumer_group(1, 2)
            .url(&client)
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/subscribe?category=account&consumer=1&size=2"
        );
        let url = Subscription::all().position(0).url(&client).unwrap();
        assert_eq!(url.query(), Some("all=true&position=0"));
        assert!(Subscription::stream("").validate().is_err());
        assert!(Subscription::category("").validate().is_err());
        assert!(Subscription::all().consumer_group(0, 2).validate().is_err());
        assert!(
            Subscription::category("a")
                .consumer_group(2, 2)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn resume_after_the_last_poke() {
        let client = Client::builder("http://127.0.0.1:9").build().unwrap();
        let mut pokes = PokeStream {
            state: State::Done,
            parser: SseParser::new(),
            queue: VecDeque::new(),
            url: String::new(),
            client,
            subscription: Subscription::stream("s-1").position(0),
            last: None,
            failures: 0,
            connections: 0,
        };
        assert_eq!(pokes.resume_subscription().start_position(), Some(0));
        pokes.take_events(format!("event: poke\ndata: {POKE}\n\n").as_bytes());
        assert_eq!(pokes.resume_subscription().start_position(), Some(1));
        pokes.subscription = Subscription::all();
        assert_eq!(pokes.resume_subscription().start_position(), Some(2));
        assert!(matches!(pokes.queue.pop_front(), Some(Ok(p)) if p.global_position == 1));
        pokes.take_events(b"event: poke\ndata: {oops\n\n");
        assert!(matches!(
            pokes.queue.pop_front(),
            Some(Err(Error::Decode { .. }))
        ));
    }
}
