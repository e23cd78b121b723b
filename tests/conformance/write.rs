//! WRITE-001..010: `stream.write`.

use eventodb_kit::client::{GetStreamOptions, NewMessage, WriteOptions};
use eventodb_kit::{Error, ErrorCode};
use eventodb_kit_tests::{Env, unique_stream};
use serde_json::json;
use uuid::Uuid;

use crate::util::{write, write_n};

#[tokio::test]
async fn write_001_minimal_message() {
    let env = Env::new().await;
    let client = env.client();
    let written = write(
        &client,
        &unique_stream("test"),
        "TestEvent",
        json!({"foo": "bar"}),
    )
    .await;
    assert_eq!(written.position, 0);
    assert!(written.global_position >= 1, "{written:?}");
}

#[tokio::test]
async fn write_002_with_metadata() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let metadata = json!({"correlationId": "123", "nested": {"a": [1, 2]}});
    client
        .stream_write(
            &stream,
            &NewMessage::new("TestEvent", json!({"foo": "bar"})).metadata(metadata.clone()),
            &WriteOptions::new(),
        )
        .await
        .unwrap();
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].metadata, Some(metadata));
}

#[tokio::test]
async fn write_003_custom_id() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let id = Uuid::new_v4();
    client
        .stream_write(
            &stream,
            &NewMessage::new("TestEvent", json!({})),
            &WriteOptions::new().id(id),
        )
        .await
        .unwrap();
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].id, id);
}

#[tokio::test]
async fn write_004_expected_version_matches() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 2).await;
    let written = client
        .stream_write(
            &stream,
            &NewMessage::new("T", json!({})),
            &WriteOptions::new().expected_version(1),
        )
        .await
        .unwrap();
    assert_eq!(written.position, 2);
}

#[tokio::test]
async fn write_005_expected_version_conflict() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 2).await;
    let err = client
        .stream_write(
            &stream,
            &NewMessage::new("T", json!({})),
            &WriteOptions::new().expected_version(5),
        )
        .await
        .unwrap_err();
    assert!(err.is_version_conflict(), "{err:?}");
    assert_eq!(err.code(), Some(&ErrorCode::StreamVersionConflict));
    match err {
        // Details are optional (only the SQLite backend sends them); when present they
        // must be right.
        Error::VersionConflict {
            expected, actual, ..
        } => {
            assert!(expected.is_none() || expected == Some(5), "{expected:?}");
            assert!(actual.is_none() || actual == Some(1), "{actual:?}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was written.
    assert_eq!(client.stream_version(&stream).await.unwrap(), Some(1));
}

#[tokio::test]
async fn write_006_sequential_positions() {
    let env = Env::new().await;
    let client = env.client();
    let written = write_n(&client, &unique_stream("test"), 5).await;
    let positions: Vec<i64> = written.iter().map(|w| w.position).collect();
    assert_eq!(positions, vec![0, 1, 2, 3, 4]);
    assert!(
        written
            .windows(2)
            .all(|w| w[0].global_position < w[1].global_position),
        "{written:?}"
    );
}

#[tokio::test]
async fn write_007_account_stream() {
    let env = Env::new().await;
    let client = env.client();
    let stream = format!("account-{}", Uuid::new_v4());
    let written = write(&client, &stream, "Opened", json!({"owner": "x"})).await;
    assert_eq!(written.position, 0);
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
}

#[tokio::test]
async fn write_008_empty_data() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write(&client, &stream, "Empty", json!({})).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].data, json!({}));
}

#[tokio::test]
async fn write_009_no_metadata() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    // The client omits the key: the server would reject `"metadata": null`.
    write(&client, &stream, "NoMeta", json!({"a": 1})).await;
    let read = client
        .stream_get(&stream, &GetStreamOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].metadata, None);
}

#[tokio::test]
async fn write_010_without_token() {
    let Some(env) = Env::normal_mode("write_010_without_token").await else {
        return;
    };
    let err = env
        .anonymous_client()
        .stream_write(
            &unique_stream("test"),
            &NewMessage::new("T", json!({})),
            &WriteOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::AuthRequired), "{err:?}");
    assert_eq!(err.status(), Some(401));
    assert!(err.is_auth() && !err.is_transient());
}
