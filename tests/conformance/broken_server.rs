//! ERROR-004..007 and other error paths, against deliberately broken HTTP servers written
//! here on a raw `TcpListener`: refused connections, malformed and truncated replies,
//! hangs, plain-text errors. Also a recording server that shows what the client sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventodb_kit::Error;
use eventodb_kit::client::{
    Client, GetCategoryOptions, NewMessage, Subscription, Token, WriteOptions,
};
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// What the broken server does once it has read a request.
#[derive(Clone)]
enum Reply {
    /// Write these bytes, then close.
    Raw(Vec<u8>),
    /// Wait, then write these bytes, then close.
    Delayed(Duration, Vec<u8>),
    /// Never answer (keep the connection open).
    Hang,
    /// Write these bytes, then keep the connection open without another byte.
    RawThenHang(Vec<u8>),
    /// Close without answering.
    Close,
}

fn http(status: &str, content_type: &str, body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// A server answering every request with `reply`; returns its URL and the raw requests.
async fn broken_server(reply: Reply) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let request = read_request(&mut socket).await;
                seen.lock().unwrap().push(request);
                match reply {
                    Reply::Raw(bytes) => {
                        let _ = socket.write_all(&bytes).await;
                    }
                    Reply::Delayed(wait, bytes) => {
                        tokio::time::sleep(wait).await;
                        let _ = socket.write_all(&bytes).await;
                    }
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Reply::RawThenHang(bytes) => {
                        let _ = socket.write_all(&bytes).await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Reply::Close => {}
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, requests)
}

/// Reads one request (head and `Content-Length` body) as text.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn client(url: &str) -> Client {
    Client::builder(url)
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn write_once(client: &Client) -> Result<eventodb_kit::client::WritePosition, Error> {
    client
        .stream_write(
            "test-1",
            &NewMessage::new("T", json!({})),
            &WriteOptions::new(),
        )
        .await
}

#[tokio::test]
async fn error_004_connection_refused_names_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}");
    let err = write_once(&client(&url)).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("{addr}/rpc")), "{err}");
    assert!(err.is_transient(), "worth retrying");
    assert!(!err.outcome_unknown(), "nothing was sent");
}

#[tokio::test]
async fn error_005_malformed_json_is_a_decode_error() {
    let (url, _) = broken_server(http(
        "200 OK",
        "application/json",
        r#"{"globalPosition": 1, "posit"#,
    ))
    .await;
    let err = write_once(&client(&url)).await.unwrap_err();
    match &err {
        Error::Decode { expected, body } => {
            assert!(expected.contains("stream.write result"), "{expected}");
            assert!(body.contains("globalPosition"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Valid JSON of the wrong shape is a decode error too.
    let (url, _) = broken_server(http("200 OK", "application/json", r#"[["x"]]"#)).await;
    let err = client(&url)
        .category_get("c", &GetCategoryOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { expected, .. } if expected.contains("category.get")),
        "{err:?}"
    );
}

#[tokio::test]
async fn error_006_hanging_server_times_out() {
    let (url, _) = broken_server(Reply::Hang).await;
    let client = Client::builder(&url)
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = write_once(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        Error::Timeout { url: failed, after } => {
            assert_eq!(*after, Duration::from_millis(100));
            assert!(failed.ends_with("/rpc"), "{failed}");
        }
        other => panic!("{other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(err.is_transient() && err.outcome_unknown());
}

#[tokio::test]
async fn a_body_that_never_finishes_times_out() {
    // Headers arrive at once; the body stops half-way. The request timeout covers it.
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"global";
    let (url, _) = broken_server(Reply::RawThenHang(head.as_bytes().to_vec())).await;
    let client = Client::builder(&url)
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = write_once(&client).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { after, .. } if after == Duration::from_millis(100)),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.outcome_unknown());
}

#[tokio::test]
async fn error_007_500_with_a_text_body() {
    let (url, _) = broken_server(http(
        "500 Internal Server Error",
        "text/plain",
        "something broke",
    ))
    .await;
    let err = write_once(&client(&url)).await.unwrap_err();
    match &err {
        Error::Http { status, body, .. } => {
            assert_eq!((*status, body.as_str()), (500, "something broke"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.status(), Some(500));
    assert!(err.is_transient() && err.outcome_unknown());
}

#[tokio::test]
async fn plain_text_400_for_an_oversized_body_keeps_status_and_body() {
    let (url, _) = broken_server(http(
        "400 Bad Request",
        "text/plain; charset=utf-8",
        "Error when parsing request",
    ))
    .await;
    let err = write_once(&client(&url)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 400, body, .. } if body == "Error when parsing request"),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn truncated_reply_is_a_transport_error_with_unknown_outcome() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"globalPos".to_vec();
    let (url, _) = broken_server(Reply::Raw(reply)).await;
    let err = write_once(&client(&url)).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.outcome_unknown(), "the write may have been applied");
}

#[tokio::test]
async fn connection_closed_without_a_reply_has_unknown_outcome() {
    // What a client sees when the server process dies on the request (Pebble and
    // `category.get` with batchSize -1).
    let (url, _) = broken_server(Reply::Close).await;
    let err = write_once(&client(&url)).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.outcome_unknown() && err.is_transient());
}

#[tokio::test]
async fn requests_use_exact_keys_position_cursor_and_a_bearer_header() {
    let (url, requests) = broken_server(http("200 OK", "application/json", "[]\n")).await;
    let token = Token::generate("recorded").unwrap();
    let client = Client::builder(&url).token(token.clone()).build().unwrap();
    client
        .category_get("c", &GetCategoryOptions::new().position(5).batch_size(10))
        .await
        .unwrap();
    let request = requests.lock().unwrap().pop().unwrap();
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /rpc HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("authorization: Bearer {}", token.expose_secret())),
        "{head}"
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    // The cursor travels as `position`, never `globalPosition` (Pebble ignores it).
    assert_eq!(
        body,
        r#"["category.get","c",{"position":5,"batchSize":10}]"#
    );
}

#[tokio::test]
async fn ids_are_sent_lowercase_and_absent_options_are_omitted() {
    let (url, requests) = broken_server(http(
        "200 OK",
        "application/json",
        r#"{"globalPosition":1,"position":0}"#,
    ))
    .await;
    let client = client(&url);
    let id = uuid::Uuid::parse_str("0192E4A0-7B1A-7C3D-8E4F-5A6B7C8D9E0F").unwrap();
    client
        .stream_write(
            "test-1",
            &NewMessage::new("T", json!({"a": 1})),
            &WriteOptions::new().id(id),
        )
        .await
        .unwrap();
    let request = requests.lock().unwrap().pop().unwrap();
    let body = request.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(
        body,
        r#"["stream.write","test-1",{"type":"T","data":{"a":1}},{"id":"0192e4a0-7b1a-7c3d-8e4f-5a6b7c8d9e0f"}]"#
    );
    assert!(!request.contains("authorization"), "no token, no header");
}

#[tokio::test]
async fn sse_waits_for_late_headers_without_a_timeout() {
    // The real server sends no headers until the first poke. The client's request timeout
    // (100 ms) must not apply to a subscription.
    let sse = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nevent: poke\r\ndata: {\"stream\":\"s-1\",\"position\":0,\"globalPosition\":7}\r\n\r\n";
    let (url, requests) = broken_server(Reply::Delayed(
        Duration::from_millis(400),
        sse.as_bytes().to_vec(),
    ))
    .await;
    let token = Token::generate("sse").unwrap();
    let client = Client::builder(&url)
        .token(token.clone())
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut pokes = client
        .subscribe(&Subscription::stream("s-1+x").position(0))
        .await
        .unwrap();
    let poke = pokes.next().await.unwrap().unwrap();
    assert_eq!((poke.stream.as_str(), poke.global_position), ("s-1", 7));
    // The server closed the connection: the stream ends.
    assert!(pokes.next().await.is_none());
    let request = requests.lock().unwrap().pop().unwrap();
    assert!(
        request.starts_with("GET /subscribe?stream=s-1%2Bx&position=0 HTTP/1.1"),
        "{request}"
    );
    assert!(request.contains(&format!("Bearer {}", token.expose_secret())));
    assert!(
        !request.split("\r\n").next().unwrap().contains("token"),
        "token never in the URL"
    );
}

#[tokio::test]
async fn sse_plain_text_400_is_a_typed_error() {
    let (url, _) = broken_server(http(
        "400 Bad Request",
        "text/plain; charset=utf-8",
        "Invalid consumer group: member must be < size",
    ))
    .await;
    let mut pokes = client(&url)
        .subscribe(&Subscription::category("c"))
        .await
        .unwrap();
    let err = pokes.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 400, body, .. } if body.starts_with("Invalid consumer group")),
        "{err:?}"
    );
    assert!(pokes.next().await.is_none());
}

#[tokio::test]
async fn sse_malformed_poke_is_reported_and_the_stream_goes_on() {
    let sse = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n: hello\n\nevent: poke\ndata: {oops\n\nevent: other\ndata: {}\n\nevent: poke\ndata: {\"stream\":\"s-1\",\"position\":1,\"globalPosition\":2}\n\n";
    let (url, _) = broken_server(Reply::Raw(sse.as_bytes().to_vec())).await;
    let mut pokes = client(&url)
        .subscribe(&Subscription::stream("s-1"))
        .await
        .unwrap();
    assert!(matches!(
        pokes.next().await,
        Some(Err(Error::Decode { .. }))
    ));
    assert_eq!(pokes.next().await.unwrap().unwrap().position, 1);
    assert!(pokes.next().await.is_none());
}

#[tokio::test]
async fn sse_200_that_is_not_an_event_stream_is_a_decode_error() {
    // E.g. a proxy's HTML page: silence would look like "no pokes yet" forever.
    let (url, _) = broken_server(http("200 OK", "text/html", "<html>login</html>")).await;
    let mut pokes = client(&url)
        .subscribe(Subscription::stream("s-1"))
        .await
        .unwrap();
    let err = pokes.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Decode { expected, body } if expected.contains("text/event-stream") && body.contains("login")),
        "{err:?}"
    );
    assert!(pokes.next().await.is_none());
}
