//! LAST-001..004 (`stream.last`) and VERSION-001..003 (`stream.version`).

use eventodb_kit_tests::{Env, unique_stream};
use serde_json::json;

use crate::util::{write, write_n};

#[tokio::test]
async fn last_001_last_of_five() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 5).await;
    let last = client
        .stream_last(&stream, None)
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(last.position, 4);
    assert_eq!(last.data, json!({"i": 4}));
}

#[tokio::test]
async fn last_002_missing_stream_is_none() {
    let env = Env::new().await;
    let last = env
        .client()
        .stream_last(&unique_stream("missing"), None)
        .await
        .unwrap();
    assert_eq!(last, None);
}

#[tokio::test]
async fn last_003_filter_by_type() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write(&client, &stream, "A", json!({"n": 0})).await;
    write(&client, &stream, "B", json!({"n": 1})).await;
    write(&client, &stream, "A", json!({"n": 2})).await;
    write(&client, &stream, "B", json!({"n": 3})).await;
    write(&client, &stream, "C", json!({"n": 4})).await;
    let last_a = client
        .stream_last(&stream, Some("A"))
        .await
        .unwrap()
        .expect("an A");
    assert_eq!((last_a.message_type.as_str(), last_a.position), ("A", 2));
    let last_b = client
        .stream_last(&stream, Some("B"))
        .await
        .unwrap()
        .expect("a B");
    assert_eq!(last_b.position, 3);
}

#[tokio::test]
async fn last_004_no_message_of_that_type() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write(&client, &stream, "A", json!({})).await;
    assert_eq!(client.stream_last(&stream, Some("Z")).await.unwrap(), None);
}

#[tokio::test]
async fn version_001_missing_stream_is_none() {
    let env = Env::new().await;
    let version = env
        .client()
        .stream_version(&unique_stream("missing"))
        .await
        .unwrap();
    assert_eq!(version, None);
}

#[tokio::test]
async fn version_002_three_messages() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 3).await;
    assert_eq!(client.stream_version(&stream).await.unwrap(), Some(2));
}

#[tokio::test]
async fn version_003_increments_after_a_write() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 3).await;
    let before = client.stream_version(&stream).await.unwrap().unwrap();
    write(&client, &stream, "T", json!({})).await;
    assert_eq!(
        client.stream_version(&stream).await.unwrap(),
        Some(before + 1)
    );
}
