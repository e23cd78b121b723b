//! `/subscribe` on the wire: framing, catch-up, live pokes, headers, errors.

mod common;

use std::time::Duration;

use common::{Sse, answer, http, poke, subscribe, write};
use eventodb_kit_testkit::TestServer;

async fn open(handle: tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>) -> Sse {
    let resp = tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("headers within 5 s")
        .expect("task")
        .expect("response");
    Sse::new(resp)
}

#[tokio::test]
async fn stream_subscription_sends_no_headers_until_the_first_poke() {
    let server = TestServer::start().await.unwrap();
    let handle = subscribe(&server, "stream=account-1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !handle.is_finished(),
        "headers must wait for the first poke"
    );
    write(&server, "account-2").await; // another stream: still nothing
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!handle.is_finished());
    let gp = write(&server, "account-1").await;
    let mut sse = open(handle).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    assert_eq!(sse.headers["cache-control"], "no-cache");
    assert_eq!(sse.headers["access-control-allow-origin"], "*");
    assert_eq!(sse.frame().await, poke("account-1", 0, gp));
    let gp2 = write(&server, "account-1").await;
    assert_eq!(sse.frame().await, poke("account-1", 1, gp2));
}

#[tokio::test]
async fn stream_catch_up_from_a_position_then_live() {
    let server = TestServer::start().await.unwrap();
    for _ in 0..5 {
        write(&server, "s-1").await;
    }
    let mut sse = open(subscribe(&server, "stream=s-1&position=3")).await;
    assert_eq!(sse.frame().await, poke("s-1", 3, 4));
    assert_eq!(sse.frame().await, poke("s-1", 4, 5));
    write(&server, "s-1").await;
    assert_eq!(sse.frame().await, poke("s-1", 5, 6));
}

#[tokio::test]
async fn compound_stream_names_need_escaping() {
    let server = TestServer::start().await.unwrap();
    write(&server, "account-1+x").await;
    let mut sse = open(subscribe(&server, "stream=account-1%2Bx")).await;
    assert_eq!(sse.frame().await, poke("account-1+x", 0, 1));
}

#[tokio::test]
async fn catch_up_stops_at_1000() {
    let server = TestServer::start().await.unwrap();
    for _ in 0..1003 {
        write(&server, "big-1").await;
    }
    let mut sse = open(subscribe(&server, "stream=big-1")).await;
    for i in 0..1000 {
        assert_eq!(sse.frame().await, poke("big-1", i, i + 1));
    }
    // 1000..1002 never get a poke; the next write does.
    write(&server, "big-1").await;
    assert_eq!(sse.frame().await, poke("big-1", 1003, 1004));
}

#[tokio::test]
async fn category_groups_use_md5_for_catch_up_and_the_polynomial_live() {
    let server = TestServer::start().await.unwrap();
    write(&server, "account-123").await; // md5 member 1 of 2, live member 0 of 2
    write(&server, "other-1").await;
    let mut m1 = open(subscribe(&server, "category=account&consumer=1&size=2")).await;
    assert_eq!(m1.frame().await, poke("account-123", 0, 1));
    let m0 = subscribe(&server, "category=account&consumer=0&size=2");
    let all = subscribe(&server, "category=account");
    common::eventually(|| server.subscriber_count() == 3).await;
    assert!(!m0.is_finished(), "member 0 has no backlog");
    write(&server, "account-123").await;
    let mut m0 = open(m0).await;
    assert_eq!(m0.frame().await, poke("account-123", 1, 3));
    let mut all = open(all).await;
    assert_eq!(all.frame().await, poke("account-123", 0, 1));
    assert_eq!(all.frame().await, poke("account-123", 1, 3));
    // Member 1 got no live poke for it: its next frame is a stream live-hashed to 1.
    write(&server, "account-123+retry").await; // live member 1 of 2
    assert_eq!(m1.frame().await, poke("account-123+retry", 0, 4));
}

#[tokio::test]
async fn all_sends_ready_then_live_pokes_only() {
    let server = TestServer::start().await.unwrap();
    write(&server, "a-1").await;
    let mut sse = open(subscribe(&server, "all=true&position=3")).await;
    assert_eq!(sse.frame().await, ": ready\n\n");
    write(&server, "b-1").await; // gp 2 < 3
    write(&server, "c-1").await; // gp 3
    assert_eq!(sse.frame().await, poke("c-1", 0, 3));
}

#[tokio::test]
async fn parameter_errors_are_plain_text_and_auth_errors_json() {
    let server = TestServer::start().await.unwrap();
    let cases = [
        (
            "",
            "Either 'stream', 'category', or 'all=true' parameter required",
        ),
        (
            "category=",
            "Either 'stream', 'category', or 'all=true' parameter required",
        ),
        (
            "all=true&stream=a",
            "Cannot combine 'all' with 'stream' or 'category'",
        ),
        (
            "stream=a&category=b",
            "Cannot specify both 'stream' and 'category'",
        ),
        ("stream=a&position=x", "Invalid position parameter"),
        ("category=a&consumer=x", "Invalid consumer parameter"),
        ("category=a&size=x", "Invalid size parameter"),
        (
            "category=a&consumer=2&size=2",
            "Invalid consumer group: member must be < size",
        ),
    ];
    for (query, message) in cases {
        let url = format!("{}/subscribe?{query}", server.url());
        let a = answer(
            http()
                .get(url)
                .bearer_auth(server.default_token())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (a.status, a.content_type.as_str(), a.body.as_str()),
            (400, "text/plain; charset=utf-8", message),
            "{query}"
        );
    }
    let a = answer(
        http()
            .get(format!("{}/subscribe?all=true", server.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (401, "application/json")
    );
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"AUTH_REQUIRED\",\"message\":\"Authorization header required\"}}\n"
    );
    // The token may come in the query.
    let url = format!(
        "{}/subscribe?all=true&token={}",
        server.url(),
        server.default_token()
    );
    let mut sse = Sse::new(http().get(url).send().await.unwrap());
    assert_eq!(sse.frame().await, ": ready\n\n");
}

#[tokio::test]
async fn test_mode_subscribes_without_a_token() {
    let server = TestServer::builder().test_mode(true).start().await.unwrap();
    let url = format!("{}/subscribe?all=true", server.url());
    let mut sse = Sse::new(http().get(url).send().await.unwrap());
    assert_eq!(sse.frame().await, ": ready\n\n");
    write(&server, "x-1").await;
    assert_eq!(sse.frame().await, poke("x-1", 0, 1));
}

#[tokio::test]
async fn subscriptions_are_per_namespace() {
    let server = TestServer::start().await.unwrap();
    let other = common::namespace(&server, &common::unique("ns")).await;
    let url = format!("{}/subscribe?all=true&token={other}", server.url());
    let mut sse = Sse::new(http().get(url).send().await.unwrap());
    assert_eq!(sse.frame().await, ": ready\n\n");
    write(&server, "x-1").await; // default namespace
    let a = common::rpc_as(
        &server,
        Some(&other),
        r#"["stream.write", "y-1", {"type": "T", "data": {}}]"#,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(sse.frame().await, poke("y-1", 0, 1));
}

#[tokio::test]
async fn subscribe_gap_loses_pokes_between_catch_up_and_registration() {
    let server = TestServer::builder()
        .subscribe_gap(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    write(&server, "g-1").await;
    let handle = subscribe(&server, "stream=g-1");
    // The request is counted just before its catch-up query; then the gap starts.
    common::eventually(|| server.stats().count("/subscribe") == 1).await;
    write(&server, "g-1").await; // inside the gap: no poke
    assert_eq!(server.subscriber_count(), 0, "still inside the gap");
    common::eventually(|| server.subscriber_count() == 1).await;
    write(&server, "g-1").await; // after it: poked
    let mut sse = open(handle).await;
    assert_eq!(sse.frame().await, poke("g-1", 0, 1));
    assert_eq!(sse.frame().await, poke("g-1", 2, 3));
}

#[tokio::test]
async fn a_closed_subscription_is_no_longer_counted() {
    let server = TestServer::start().await.unwrap();
    let mut sse = Sse::new(
        http()
            .get(format!("{}/subscribe?all=true", server.url()))
            .bearer_auth(server.default_token())
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(sse.frame().await, ": ready\n\n");
    assert_eq!(server.subscriber_count(), 1);
    drop(sse);
    // The server notices a closed client only when it next writes to it, as the real one.
    write(&server, "z-1").await;
    common::eventually(|| server.subscriber_count() == 0).await;
}
