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
    let mut req = http().post(format!("{}/rpc", server.url())).body(body.to_owned());
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
    Answer { status, content_type, body }
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
