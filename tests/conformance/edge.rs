//! EDGE-001..008.

use std::collections::BTreeSet;

use eventodb_kit::client::{GetStreamOptions, NewMessage, WriteOptions};
use eventodb_kit::{Error, ErrorCode};
use eventodb_kit_tests::{Env, unique_stream};
use serde_json::json;

use crate::util::{write, write_n};

/// EDGE-001: the client refuses `batchSize: 0` before sending. The backends disagree on
/// it (unlimited on SQLite, `[]` on PostgreSQL, 1000 on Pebble), so no answer would be
/// portable.
#[tokio::test]
async fn edge_001_batch_size_zero_is_refused_before_sending() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 2).await;
    let err = client
        .stream_get(&stream, &GetStreamOptions::new().batch_size(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("batchSize 0"), "{err}");
}

#[tokio::test]
async fn edge_002_negative_position_reads_everything() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 3).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new().position(-5))
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
}

/// EDGE-003: `batchSize: 1000000` is refused by the client before sending; the server
/// would refuse it too (`INVALID_REQUEST`), which the raw call shows.
#[tokio::test]
async fn edge_003_batch_size_too_large() {
    let env = Env::new().await;
    let client = env.client();
    let err = client
        .stream_get("test-1", &GetStreamOptions::new().batch_size(1_000_000))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = client
        .call_raw(
            "stream.get",
            &[json!("test-1"), json!({"batchSize": 1_000_000})],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidRequest), "{err:?}");
    assert!(
        err.to_string()
            .contains("options.batchSize must be <= 10000"),
        "{err}"
    );
}

#[tokio::test]
async fn edge_004_stream_name_shapes() {
    let env = Env::new().await;
    let client = env.client();
    for stream in ["a", "stream-with-many-dashes", "stream123", "UPPERCASE"] {
        let written = write(&client, stream, "T", json!({"s": stream})).await;
        assert_eq!(written.position, 0, "{stream}");
        let read = client
            .stream_get(stream, &GetStreamOptions::new())
            .await
            .unwrap();
        assert_eq!(read.len(), 1, "{stream}");
        assert_eq!(read[0].data["s"], stream);
    }
}

#[tokio::test]
async fn edge_005_concurrent_writes_to_one_stream() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let writes = (0..10).map(|i| {
        let client = client.clone();
        let stream = stream.clone();
        tokio::spawn(async move { write(&client, &stream, "T", json!({"i": i})).await })
    });
    let mut positions = BTreeSet::new();
    for handle in writes.collect::<Vec<_>>() {
        assert!(positions.insert(handle.await.unwrap().position));
    }
    assert_eq!(positions, (0..10).collect());
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|m| m.position).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn edge_006_position_past_the_end_is_empty() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 3).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new().position(100))
        .await
        .unwrap();
    assert!(read.is_empty());
}

#[tokio::test]
async fn edge_007_expected_version_minus_one() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let message = NewMessage::new("T", json!({}));
    let must_be_new = WriteOptions::new().expected_version(-1);
    let first = client
        .stream_write(&stream, &message, &must_be_new)
        .await
        .unwrap();
    assert_eq!(first.position, 0);
    let err = client
        .stream_write(&stream, &message, &must_be_new)
        .await
        .unwrap_err();
    assert!(err.is_version_conflict(), "{err:?}");
}

#[tokio::test]
async fn edge_008_expected_version_zero_on_a_new_stream() {
    let env = Env::new().await;
    let err = env
        .client()
        .stream_write(
            &unique_stream("test"),
            &NewMessage::new("T", json!({})),
            &WriteOptions::new().expected_version(0),
        )
        .await
        .unwrap_err();
    assert!(err.is_version_conflict(), "{err:?}");
}
