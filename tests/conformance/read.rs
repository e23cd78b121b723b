//! READ-001..010: `stream.get`.

use chrono::Utc;
use eventodb_kit::client::GetStreamOptions;
use eventodb_kit_tests::{Env, unique_stream};
use serde_json::{Value, json};

use crate::util::{write, write_n};

#[tokio::test]
async fn read_001_missing_stream_is_empty() {
    let env = Env::new().await;
    let read = env
        .client()
        .stream_get(&unique_stream("missing"), &GetStreamOptions::new())
        .await
        .unwrap();
    assert!(read.is_empty());
}

#[tokio::test]
async fn read_002_single_message_all_fields() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let before = Utc::now() - chrono::Duration::seconds(5);
    let written = write(&client, &stream, "TestEvent", json!({"k": "v"})).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    let m = &read[0];
    assert!(m.id.as_uuid().is_some_and(|id| !id.is_nil()), "{}", m.id);
    assert_eq!(m.message_type, "TestEvent");
    assert_eq!(m.position, written.position);
    assert_eq!(m.global_position, written.global_position);
    assert_eq!(m.data, json!({"k": "v"}));
    assert_eq!(m.metadata, None);
    assert!(
        m.time >= before && m.time <= Utc::now() + chrono::Duration::seconds(5),
        "{}",
        m.time
    );
}

#[tokio::test]
async fn read_003_position_order() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 5).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    let positions: Vec<i64> = read.iter().map(|m| m.position).collect();
    assert_eq!(positions, vec![0, 1, 2, 3, 4]);
    let data: Vec<&Value> = read.iter().map(|m| &m.data["i"]).collect();
    assert_eq!(
        data,
        vec![&json!(0), &json!(1), &json!(2), &json!(3), &json!(4)]
    );
}

#[tokio::test]
async fn read_004_from_position() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 10).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new().position(5))
        .await
        .unwrap();
    let positions: Vec<i64> = read.iter().map(|m| m.position).collect();
    assert_eq!(positions, vec![5, 6, 7, 8, 9]);
}

#[tokio::test]
async fn read_005_global_position_filter() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let written = write_n(&client, &stream, 5).await;
    let from = written[2].global_position;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new().global_position(from))
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    assert!(read.iter().all(|m| m.global_position >= from));
    assert_eq!(read[0].position, 2);
}

#[tokio::test]
async fn read_006_batch_size_limits() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 100).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new().batch_size(10))
        .await
        .unwrap();
    assert_eq!(read.len(), 10);
    assert_eq!(read[9].position, 9);
}

#[tokio::test]
async fn read_007_batch_size_minus_one_reads_all() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 50).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new().batch_size(-1))
        .await
        .unwrap();
    assert_eq!(read.len(), 50);
}

#[tokio::test]
async fn read_008_nested_data_round_trips() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let data = json!({
        "list": [1, "two", true, null, {"x": [false]}],
        "obj": {"inner": {"deeper": null, "flag": false}},
        "none": null,
    });
    write(&client, &stream, "Nested", data.clone()).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].data, data);
}

#[tokio::test]
async fn read_009_metadata_round_trips() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let metadata = json!({"correlationStreamName": "workflow-1", "causation": [1, 2], "ok": true});
    client
        .stream_write(
            &stream,
            &eventodb_kit::client::NewMessage::new("T", json!({})).metadata(metadata.clone()),
            &eventodb_kit::client::WriteOptions::new(),
        )
        .await
        .unwrap();
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].metadata.as_ref(), Some(&metadata));
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let fraction = &s[19..s.len() - 1];
    shape
        && (fraction.is_empty()
            || (fraction.starts_with('.')
                && (2..=10).contains(&fraction.len())
                && fraction[1..].bytes().all(|c| c.is_ascii_digit())))
}

#[tokio::test]
async fn read_010_time_is_utc_rfc3339() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write(&client, &stream, "T", json!({})).await;
    // The wire text: 0 to 9 fractional digits, `Z`.
    let raw = client
        .call_raw("stream.get", &[json!(stream), json!({})])
        .await
        .unwrap();
    let text = raw[0][6].as_str().expect("time is a string").to_owned();
    assert!(is_rfc3339_utc(&text), "{text}");
    // The typed value is the same instant.
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(
        read[0].time,
        chrono::DateTime::parse_from_rfc3339(&text).unwrap()
    );
    assert!(is_rfc3339_utc("2025-01-15T10:30:00Z"));
    assert!(is_rfc3339_utc("2025-01-15T10:30:00.123456789Z"));
    assert!(!is_rfc3339_utc("2025-01-15T10:30:00.1234567890Z"));
    assert!(!is_rfc3339_utc("2025-01-15T10:30:00+00:00"));
}

/// READ-010 with a Pebble-like server that stores nanoseconds: all digits survive.
#[tokio::test]
async fn read_010_time_with_nanoseconds() {
    if eventodb_kit_tests::real_server() {
        eventodb_kit_tests::skip(
            "read_010_time_with_nanoseconds",
            "needs the embedded server's nanosecond mode",
        );
        return;
    }
    let server = eventodb_kit_testkit::TestServer::builder()
        .time_precision(eventodb_kit_testkit::TimePrecision::Nanoseconds)
        .start()
        .await
        .unwrap();
    let client = eventodb_kit::client::Client::builder(server.url())
        .token(eventodb_kit::client::Token::parse(server.default_token()).unwrap())
        .build()
        .unwrap();
    let stream = unique_stream("test");
    write(&client, &stream, "T", json!({})).await;
    let raw = client
        .call_raw("stream.get", &[json!(stream), json!({})])
        .await
        .unwrap();
    let text = raw[0][6].as_str().unwrap().to_owned();
    assert!(is_rfc3339_utc(&text), "{text}");
    assert!(
        text.contains('.'),
        "nanosecond mode sends a fraction: {text}"
    );
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    let expected = chrono::DateTime::parse_from_rfc3339(&text).unwrap();
    assert_eq!(read[0].time, expected);
    assert_eq!(
        read[0].time.timestamp_subsec_nanos(),
        chrono::Timelike::nanosecond(&expected)
    );
}
