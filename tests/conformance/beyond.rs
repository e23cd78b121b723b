//! "Beyond the official list": what the real server taught us (sdk-conformance.md).

use std::time::Duration;

use eventodb_kit::Error;
use eventodb_kit::client::{
    GetCategoryOptions, GetStreamOptions, NewMessage, NsStreamsOptions, WriteOptions,
};
use eventodb_kit_tests::{Env, unique_category, unique_stream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::util::write;

/// `category.get` with `batchSize: -1` crashes a Pebble-backed server: the client refuses
/// it, and reading in pages of at most 10000 gets everything.
#[tokio::test]
async fn category_batch_size_minus_one_is_refused_and_pages_read_all() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    for i in 0..25 {
        write(
            &client,
            &format!("{category}-{}", i % 4),
            "T",
            json!({"i": i}),
        )
        .await;
    }
    let err = client
        .category_get(&category, &GetCategoryOptions::new().batch_size(-1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("Pebble")),
        "{err:?}"
    );
    let mut all = Vec::new();
    let mut position = 0;
    loop {
        let page = client
            .category_get(
                &category,
                &GetCategoryOptions::new().position(position).batch_size(10),
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        position = last.global_position + 1;
        all.extend(page.into_iter().map(|m| m.data["i"].as_i64().unwrap()));
    }
    assert_eq!(all, (0..25).collect::<Vec<_>>());
}

/// The consumer cursor goes out as `position` (checked on the wire in `broken_server`);
/// here: reading from `last + 1` continues exactly after the last message.
#[tokio::test]
async fn category_cursor_as_position_continues_after_the_last_message() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    let first = write(&client, &format!("{category}-1"), "T", json!({})).await;
    let second = write(&client, &format!("{category}-2"), "T", json!({})).await;
    let read = client
        .category_get(
            &category,
            &GetCategoryOptions::new().position(first.global_position + 1),
        )
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|m| m.global_position).collect::<Vec<_>>(),
        vec![second.global_position]
    );
}

/// Ids go out lowercase canonical and come back equal. A second write with the same id
/// is a duplicate-id `BACKEND_ERROR` (SQLite, PostgreSQL) or accepted (Pebble).
#[tokio::test]
async fn duplicate_ids_are_recognised() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let id = uuid::Uuid::now_v7();
    let options = WriteOptions::new().id(id);
    let message = NewMessage::new("T", json!({}));
    client
        .stream_write(&stream, &message, &options)
        .await
        .unwrap();
    match client
        .stream_write(&unique_stream("test"), &message, &options)
        .await
    {
        Err(err) => {
            assert!(err.is_duplicate_id(), "{err:?}");
            assert!(!err.is_transient(), "a duplicate is permanent");
        }
        Ok(_) => {
            assert!(
                !env.is_ours(),
                "the embedded server must reject duplicate ids"
            );
            eprintln!("duplicate_ids_are_recognised: this server accepts duplicate ids (Pebble)");
        }
    }
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].id, id);
}

/// `ns.streams` prefixes with `%` or `_` are refused (LIKE wildcards on some backends).
#[tokio::test]
async fn ns_streams_prefix_wildcards_are_refused() {
    let env = Env::new().await;
    for prefix in ["acc%", "acc_1"] {
        let err = env
            .client()
            .ns_streams(&NsStreamsOptions::new().prefix(prefix))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
}

/// NUL characters would be stored by Pebble but rejected by PostgreSQL: refused up front.
#[tokio::test]
async fn nul_characters_are_refused_before_sending() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let err = client
        .stream_write(
            &stream,
            &NewMessage::new("T", json!({"s": "a\u{0}b"})),
            &WriteOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(
        client.stream_version(&stream).await.unwrap(),
        None,
        "nothing was written"
    );
}

/// An empty `Bearer ` token is answered "must use Bearer scheme", never "Token required".
#[tokio::test]
async fn empty_bearer_token_must_use_bearer_scheme() {
    let Some(env) = Env::normal_mode("empty_bearer_token_must_use_bearer_scheme").await else {
        return;
    };
    let reply = reqwest::Client::new()
        .post(format!("{}/rpc", env.url()))
        .header("Authorization", "Bearer ")
        .body(r#"["sys.health"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 401);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AUTH_REQUIRED");
    assert_eq!(
        body["error"]["message"],
        "Authorization header must use Bearer scheme"
    );
}

/// A request not fully sent within 30 s gets a plain-text 408. Against a real server this
/// takes the full 30 s; the embedded server is started with a 200 ms read timeout.
#[tokio::test]
async fn slow_request_gets_a_plain_text_408() {
    let env = Env::new().await;
    let quick = if env.is_ours() {
        Some(
            eventodb_kit_testkit::TestServer::builder()
                .read_timeout(Duration::from_millis(200))
                .start()
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let url = quick
        .as_ref()
        .map_or_else(|| env.url().to_owned(), |server| server.url());
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut socket = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!("POST /rpc HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n[\"sys");
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), socket.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "no answer within 40 s");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("Request timeout"), "{reply}");
    assert!(reply.to_ascii_lowercase().contains("text/plain"), "{reply}");
}

/// A body over the server's limit (100 MiB on the real server) is answered with a
/// plain-text `400 Error when parsing request`: a typed [`Error::Http`] with status and
/// body. Runs against the embedded server with a small limit.
#[tokio::test]
async fn oversized_body_is_a_plain_text_400() {
    if eventodb_kit_tests::real_server() {
        eventodb_kit_tests::skip(
            "oversized_body_is_a_plain_text_400",
            "would need a 100 MiB request against a real server",
        );
        return;
    }
    let server = eventodb_kit_testkit::TestServer::builder()
        .body_limit(16 * 1024)
        .start()
        .await
        .unwrap();
    let client = eventodb_kit::client::Client::builder(server.url())
        .token(eventodb_kit::client::Token::parse(server.default_token()).unwrap())
        .build()
        .unwrap();
    let big = json!({"blob": "x".repeat(32 * 1024)});
    let err = client
        .stream_write("test-1", &NewMessage::new("Big", big), &WriteOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 400, body, .. } if body == "Error when parsing request"),
        "{err:?}"
    );
    assert!(!err.is_transient());
    // A body under the limit still works on the same client.
    write(&client, "test-1", "Small", json!({})).await;
}

/// Against an embedded server that crashes like Pebble on `category.get` with
/// `batchSize: -1`: the typed client refuses it, so the server and its acknowledged
/// writes survive; the same request sent raw kills the connection and loses the write.
#[tokio::test]
async fn unlimited_category_get_never_reaches_a_pebble_like_server() {
    let Some(env) = Env::ours("unlimited_category_get_never_reaches_a_pebble_like_server").await
    else {
        return;
    };
    let faults = env.faults("unlimited_category_get").expect("ours");
    faults.crash_on_unlimited_category_get(true);
    let client = env.client();
    let category = unique_category("cat");
    let stream = format!("{category}-1");
    write(&client, &stream, "T", json!({})).await;

    let err = client
        .category_get(&category, &GetCategoryOptions::new().batch_size(-1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(
        client.stream_version(&stream).await.unwrap(),
        Some(0),
        "still there"
    );

    // What the refusal prevents: no answer, and the acknowledged write is gone.
    let err = client
        .call_raw("category.get", &[json!(category), json!({"batchSize": -1})])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.outcome_unknown());
    assert_eq!(
        client.stream_version(&stream).await.unwrap(),
        None,
        "lost in the crash"
    );
}

/// Ids another producer wrote are read back as the server holds them, whichever ids its
/// backend accepts (protocol §2.5): Pebble any string, verbatim; SQLite any UUID spelling,
/// verbatim; PostgreSQL plain UUID spellings, echoed in canonical lowercase. Every read
/// decodes the whole page, and a UUID id still equals the UUID it spells.
#[tokio::test]
async fn foreign_ids_read_back_as_the_server_holds_them() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("ids");
    let stream = format!("{category}-1");
    let uuid = uuid::Uuid::new_v4();
    let upper = uuid.to_string().to_uppercase();
    let spellings = [
        format!("urn:uuid:{upper}"),
        format!("{{{upper}}}"),
        "order-42".to_owned(),
    ];
    let mut accepted = Vec::new();
    for (n, spelling) in spellings.iter().enumerate() {
        // One UUID in two spellings: SQLite's uniqueness is textual and Pebble has none,
        // so both are stored; PostgreSQL rejects the `urn:` one and stores the other.
        let args = [
            json!(stream),
            json!({"type": "T", "data": {"n": n}}),
            json!({"id": spelling}),
        ];
        match client.call_raw("stream.write", &args).await {
            Ok(_) => accepted.push(spelling.clone()),
            Err(error) if error.code() == Some(&eventodb_kit::ErrorCode::BackendError) => {}
            Err(error) => panic!("stream.write {spelling}: {error}"),
        }
    }
    write(&client, &stream, "Ours", json!({})).await;

    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    let by_category = client
        .category_get(&category, &GetCategoryOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), accepted.len() + 1);
    assert_eq!(by_category.len(), read.len());
    for ((message, in_category), spelling) in read.iter().zip(&by_category).zip(&accepted) {
        assert_eq!(message.id, in_category.id);
        let verbatim = message.id.as_str() == spelling.as_str();
        let canonical = message.id.as_str() == uuid.to_string();
        assert!(
            verbatim || canonical,
            "{spelling} read back as {}",
            message.id
        );
        if message.id.as_uuid().is_some() {
            assert_eq!(message.id, uuid, "{spelling}");
        }
    }
    assert!(
        accepted.contains(&spellings[1]),
        "every backend takes `{{…}}`"
    );
    let last = client.stream_last(&stream, Some("T")).await.unwrap();
    assert_eq!(
        last.map(|m| m.id),
        Some(read[accepted.len() - 1].id.clone())
    );
}
