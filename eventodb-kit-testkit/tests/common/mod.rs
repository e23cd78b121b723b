//! Helpers for the wire-level tests: raw HTTP with `reqwest`, no client library.
#![allow(dead_code, unreachable_pub)]

use eventodb_kit_testkit::TestServer;

/// Status, content type and body text of one answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// POSTs `body` to `/rpc` with a bearer token (or none).
pub async fn rpc_as(server: &TestServer, token: Option<&str>, body: &str) -> Answer {
    let mut req = http()
        .post(format!("{}/rpc", server.url()))
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    answer(req.send().await.expect("send")).await
}

/// POSTs `body` to `/rpc` with the default token.
pub async fn rpc(server: &TestServer, body: &str) -> Answer {
    rpc_as(server, Some(server.default_token()), body).await
}

pub async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = resp.text().await.expect("body");
    Answer {
        status,
        content_type,
        body,
    }
}

/// Creates a namespace and returns its token.
pub async fn namespace(server: &TestServer, name: &str) -> String {
    let a = rpc(server, &format!(r#"["ns.create", "{name}"]"#)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v: serde_json::Value = serde_json::from_str(&a.body).expect("json");
    v["token"].as_str().expect("token").to_owned()
}

/// A unique name for this test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{nanos:x}{}", N.fetch_add(1, Ordering::SeqCst))
}

/// An open `/subscribe` response, read frame by frame.
pub struct Sse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl Sse {
    pub fn new(resp: reqwest::Response) -> Self {
        Sse {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            stream: Box::pin(resp.bytes_stream()),
            buffer: Vec::new(),
        }
    }

    /// The next `...\n\n` block, including its terminator; `None` when the stream ended
    /// or failed.
    pub async fn next_frame(&mut self) -> Option<String> {
        use futures_util::StreamExt;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(String::from_utf8(frame).expect("utf-8"));
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// Like `next_frame`, but fails the test after 5 s.
    pub async fn frame(&mut self) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(5), self.next_frame())
            .await
            .expect("a frame within 5 s")
            .expect("stream still open")
    }
}

/// The exact poke frame.
pub fn poke(stream: &str, position: i64, global_position: i64) -> String {
    format!(
        "event: poke\ndata: {{\"stream\":\"{stream}\",\"position\":{position},\"globalPosition\":{global_position}}}\n\n"
    )
}

/// Starts a subscription in the background (its headers may only come with the first poke).
pub fn subscribe(
    server: &TestServer,
    query: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let url = format!("{}/subscribe?{query}", server.url());
    let token = server.default_token().to_owned();
    tokio::spawn(async move { http().get(url).bearer_auth(token).send().await })
}

/// Writes one message and returns its global position.
pub async fn write(server: &TestServer, stream: &str) -> i64 {
    let a = rpc(
        server,
        &format!(r#"["stream.write", "{stream}", {{"type": "T", "data": {{}}}}]"#),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v: serde_json::Value = serde_json::from_str(&a.body).expect("json");
    v["globalPosition"].as_i64().expect("gp")
}

/// Waits until `condition` holds (checked every 10 ms); fails the test after 5 s.
pub async fn eventually(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
