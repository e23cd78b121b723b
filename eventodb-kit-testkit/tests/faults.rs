//! Every fault of `Faults`, restart, and request statistics.

mod common;

use std::time::{Duration, Instant};

use common::{Sse, http, poke, rpc, subscribe, write};
use eventodb_kit_testkit::TestServer;

const INJECTED: &str = "{\"error\":{\"code\":\"BACKEND_ERROR\",\"message\":\"Injected fault: the test server failed this request\"}}\n";

#[tokio::test]
async fn fail_next_answers_500_without_applying() {
    let server = TestServer::start().await.unwrap();
    server.faults().fail_next(2);
    let w = r#"["stream.write", "f-1", {"type": "T", "data": {}}]"#;
    for _ in 0..2 {
        let a = rpc(&server, w).await;
        assert_eq!(
            (a.status, a.content_type.as_str(), a.body.as_str()),
            (500, "application/json", INJECTED)
        );
    }
    assert_eq!(
        rpc(&server, w).await.body,
        "{\"globalPosition\":1,\"position\":0}\n"
    );
}

#[tokio::test]
async fn fail_after_apply_answers_500_after_writing() {
    let server = TestServer::start().await.unwrap();
    server.faults().fail_after_apply(1);
    let a = rpc(
        &server,
        r#"["stream.write", "f-1", {"type": "T", "data": {}}]"#,
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (500, INJECTED));
    assert_eq!(
        rpc(&server, r#"["stream.version", "f-1"]"#).await.body,
        "0\n"
    );
}

#[tokio::test]
async fn latency_delays_every_request() {
    let server = TestServer::start().await.unwrap();
    server.faults().latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(rpc(&server, r#"["sys.version"]"#).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    server.faults().latency(Duration::ZERO);
    // A client timeout shorter than the latency fires.
    server.faults().latency(Duration::from_millis(500));
    let err = http()
        .post(format!("{}/rpc", server.url()))
        .bearer_auth(server.default_token())
        .body(r#"["sys.version"]"#)
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
}

#[tokio::test]
async fn a_delayed_write_lands_after_its_client_gave_up() {
    let server = TestServer::start().await.unwrap();
    server.faults().delay_next_writes(1, Duration::from_secs(3));
    let err = http()
        .post(format!("{}/rpc", server.url()))
        .bearer_auth(server.default_token())
        .body(r#"["stream.write", "d-1", {"type": "T", "data": {}}]"#)
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    // Reads are not held up, and the write has not landed yet.
    let version = r#"["stream.version", "d-1"]"#;
    assert_eq!(rpc(&server, version).await.body, "null\n");
    // Only that write was delayed: the next one lands first.
    write(&server, "d-1").await;
    assert_eq!(rpc(&server, version).await.body, "0\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rpc(&server, version).await.body != "1\n" {
        assert!(Instant::now() < deadline, "the delayed write never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn refused_connections_get_no_answer_until_allowed_again() {
    let server = TestServer::start().await.unwrap();
    write(&server, "r-1").await;
    server.faults().refuse_connections(true);
    let err = http()
        .post(format!("{}/rpc", server.url()))
        .bearer_auth(server.default_token())
        .body(r#"["stream.write", "r-1", {"type": "T", "data": {}}]"#)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err}");
    server.faults().refuse_connections(false);
    assert_eq!(
        rpc(&server, r#"["stream.version", "r-1"]"#).await.body,
        "0\n",
        "nothing applied"
    );
}

#[tokio::test]
async fn refusing_closes_open_keep_alive_connections() {
    let server = TestServer::start().await.unwrap();
    let client = http();
    let send = || {
        client
            .post(format!("{}/rpc", server.url()))
            .bearer_auth(server.default_token())
            .body(r#"["sys.version"]"#)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200); // pooled connection now open
    server.faults().refuse_connections(true);
    assert!(send().await.is_err());
    server.faults().refuse_connections(false);
    assert_eq!(send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn drop_sse_connections_ends_every_subscription() {
    let server = TestServer::start().await.unwrap();
    let mut all = Sse::new(
        http()
            .get(format!("{}/subscribe?all=true", server.url()))
            .bearer_auth(server.default_token())
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(all.frame().await, ": ready\n\n");
    let waiting = subscribe(&server, "stream=nothing-1");
    common::eventually(|| server.subscriber_count() == 2).await;
    server.faults().drop_sse_connections();
    let ended = tokio::time::timeout(Duration::from_secs(5), all.next_frame())
        .await
        .unwrap();
    assert_eq!(ended, None);
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(
        result.is_err(),
        "the waiting subscription is closed without headers"
    );
    // New subscriptions work.
    let again = subscribe(&server, "stream=s-1");
    write(&server, "s-1").await;
    let mut again = Sse::new(again.await.unwrap().unwrap());
    assert_eq!(again.frame().await, poke("s-1", 0, 1));
}

#[tokio::test]
async fn restart_keeps_data_and_port_and_loses_subscriptions() {
    let server = TestServer::start().await.unwrap();
    let url = server.url();
    write(&server, "k-1").await;
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
    server.restart().await.unwrap();
    assert_eq!(server.url(), url);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), sse.next_frame())
            .await
            .unwrap(),
        None
    );
    assert_eq!(server.subscriber_count(), 0);
    assert_eq!(
        rpc(&server, r#"["stream.version", "k-1"]"#).await.body,
        "0\n"
    );
    assert_eq!(write(&server, "k-1").await, 2);
}

#[tokio::test]
async fn forget_last_writes_loses_acknowledged_writes_on_restart() {
    let server = TestServer::start().await.unwrap();
    for _ in 0..3 {
        write(&server, "p-1").await;
    }
    write(&server, "p-2").await;
    server.faults().forget_last_writes(2);
    assert_eq!(
        rpc(&server, r#"["stream.version", "p-2"]"#).await.body,
        "0\n",
        "only on restart"
    );
    server.restart().await.unwrap();
    assert_eq!(
        rpc(&server, r#"["stream.version", "p-1"]"#).await.body,
        "1\n"
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "p-2"]"#).await.body,
        "null\n"
    );
    // Like Pebble, the lost global positions are handed out again.
    let a = rpc(
        &server,
        r#"["stream.write", "p-1", {"type": "T", "data": {}}]"#,
    )
    .await;
    assert_eq!(a.body, "{\"globalPosition\":3,\"position\":2}\n");
    // A second restart forgets nothing more.
    server.restart().await.unwrap();
    assert_eq!(
        rpc(&server, r#"["stream.version", "p-1"]"#).await.body,
        "2\n"
    );
}

#[tokio::test]
async fn stats_count_requests_by_method() {
    let server = TestServer::start().await.unwrap();
    assert_eq!(server.stats().total(), 0);
    write(&server, "c-1").await;
    write(&server, "c-1").await;
    rpc(&server, r#"["stream.get", "c-1"]"#).await;
    rpc(&server, "not json").await;
    let stats = server.stats();
    assert_eq!(stats.count("stream.write"), 2);
    assert_eq!(stats.count("stream.get"), 1);
    assert_eq!(stats.count("<invalid>"), 1);
    assert_eq!(stats.total(), 4);
    server.reset_stats();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.stats().total(), 0, "no requests while idle");
}

#[tokio::test]
async fn clear_turns_faults_off() {
    let server = TestServer::start().await.unwrap();
    server
        .faults()
        .fail_next(5)
        .latency(Duration::from_secs(10))
        .clear();
    assert_eq!(rpc(&server, r#"["sys.version"]"#).await.status, 200);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let server = TestServer::start().await.unwrap();
    let url = server.url();
    server.shutdown().await;
    let err = reqwest::Client::new()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[test]
fn a_dedicated_server_outlives_the_runtime_that_started_it() {
    let started = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = started
        .block_on(TestServer::builder().start_dedicated())
        .unwrap();
    drop(started);
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        assert_eq!(write(&server, "d-1").await, 1);
        server.restart().await.unwrap();
        assert_eq!(
            rpc(&server, r#"["stream.version", "d-1"]"#).await.body,
            "0\n"
        );
    });
}

#[test]
fn test_server_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TestServer>();
    check::<eventodb_kit_testkit::Faults>();
}

#[tokio::test]
async fn drop_after_apply_closes_the_connection_after_writing() {
    let server = TestServer::start().await.unwrap();
    server.faults().drop_after_apply(1);
    let err = http()
        .post(format!("{}/rpc", server.url()))
        .bearer_auth(server.default_token())
        .body(r#"["stream.write", "d-1", {"type": "T", "data": {}}]"#)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status() && !err.is_connect(), "{err}");
    assert_eq!(
        rpc(&server, r#"["stream.version", "d-1"]"#).await.body,
        "0\n"
    );
}

#[tokio::test]
async fn forget_writes_since_start_loses_everything_since_the_last_restart() {
    let server = TestServer::start().await.unwrap();
    write(&server, "e-1").await;
    server.restart().await.unwrap(); // a graceful restart keeps it
    write(&server, "e-1").await;
    write(&server, "e-2").await;
    server.faults().forget_writes_since_start();
    server.restart().await.unwrap();
    assert_eq!(
        rpc(&server, r#"["stream.version", "e-1"]"#).await.body,
        "0\n"
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "e-2"]"#).await.body,
        "null\n"
    );
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = TestServer::start().await.unwrap();
    let send = |size: usize| {
        http()
            .post(format!("{}/rpc", server.url()))
            .bearer_auth(server.default_token())
            .header("x-padding", "p".repeat(size))
            .body(r#"["sys.version"]"#)
            .send()
    };
    assert_eq!(send(3000).await.unwrap().status(), 200);
    let a = common::answer(send(4200).await.unwrap()).await;
    assert_eq!(
        (a.status, a.content_type.as_str(), a.body.as_str()),
        (431, "text/plain; charset=utf-8", "Too big request header")
    );
}

#[tokio::test]
async fn pause_refuses_at_the_tcp_level_and_resume_serves_the_same_data() {
    let server = TestServer::start().await.unwrap();
    write(&server, "q-1").await;
    server.pause().await;
    let err = http()
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    server.resume().await.unwrap();
    server.resume().await.unwrap(); // already serving: no-op
    assert_eq!(
        rpc(&server, r#"["stream.version", "q-1"]"#).await.body,
        "0\n"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .idle_timeout(Some(Duration::from_millis(200)))
        .start()
        .await
        .unwrap();
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut head = String::new();
    while !head.ends_with("{\"status\":\"ok\"}") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer: {head}");
        head.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Nothing more is sent; after the idle timeout the server closes the connection.
    let eof = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
        .await
        .expect("closed within 5 s");
    assert!(matches!(eof, Ok(0) | Err(_)), "{eof:?}");
}

/// A body that stops arriving gets the real server's `408` (plain text, connection closed)
/// after the read timeout, instead of a connection left hanging.
#[tokio::test]
async fn a_stalled_request_body_gets_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .read_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    socket
        .write_all(b"POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n[\"sys.ve")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("text/plain"), "{answer}");
    assert!(answer.ends_with("Request timeout"), "{answer}");
}

#[tokio::test]
async fn an_unlimited_category_get_crashes_like_pebble_when_asked() {
    let server = TestServer::start().await.unwrap();
    write(&server, "x-1").await;
    server.restart().await.unwrap(); // kept: written before the last start
    write(&server, "x-1").await;
    write(&server, "x-2").await;
    let mut sse = Sse::new(
        http()
            .get(format!("{}/subscribe?all=true", server.url()))
            .bearer_auth(server.default_token())
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(sse.frame().await, ": ready\n\n");
    // Off by default: an ordinary unlimited read.
    let a = rpc(&server, r#"["category.get", "x", {"batchSize": -1}]"#).await;
    assert_eq!(a.status, 200);
    server.faults().crash_on_unlimited_category_get(true);
    let err = http()
        .post(format!("{}/rpc", server.url()))
        .bearer_auth(server.default_token())
        .body(r#"["category.get", "x", {"batchSize": -1}]"#)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err}");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), sse.next_frame())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "x-1"]"#).await.body,
        "0\n"
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "x-2"]"#).await.body,
        "null\n"
    );
    assert_eq!(
        write(&server, "x-2").await,
        2,
        "global positions handed out again"
    );
}

#[tokio::test]
async fn crash_loses_writes_since_the_last_start() {
    let server = TestServer::start().await.unwrap();
    write(&server, "y-1").await;
    server.faults().crash();
    assert_eq!(
        rpc(&server, r#"["stream.version", "y-1"]"#).await.body,
        "null\n"
    );
}
