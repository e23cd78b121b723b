//! ENCODING-001..010: payloads round-trip exactly.

use eventodb_kit::client::{GetStreamOptions, NewMessage, WriteOptions};
use eventodb_kit_tests::{Env, unique_stream};
use serde_json::{Value, json};

/// Writes `data` (and `metadata`) to `stream` and returns what reads back.
async fn round_trip(
    env: &Env,
    stream: &str,
    data: Value,
    metadata: Option<Value>,
) -> (Value, Option<Value>) {
    let client = env.client();
    let mut message = NewMessage::new("Encoded", data);
    if let Some(metadata) = metadata {
        message = message.metadata(metadata);
    }
    client
        .stream_write(stream, &message, &WriteOptions::new())
        .await
        .unwrap();
    let mut read = client
        .stream_get(stream, &GetStreamOptions::new())
        .await
        .unwrap();
    let m = read.pop().expect("one message");
    (m.data, m.metadata)
}

async fn assert_round_trip(data: Value) {
    let env = Env::new().await;
    let (back, _) = round_trip(&env, &unique_stream("test"), data.clone(), None).await;
    assert_eq!(back, data);
}

#[tokio::test]
async fn encoding_001_utf8_text() {
    assert_round_trip(json!({"text": "héllo wörld 你好 мир 🎉 \u{2028} <&>", "emoji": "👩‍💻"})).await;
}

#[tokio::test]
async fn encoding_002_unicode_metadata() {
    let env = Env::new().await;
    let metadata = json!({"author": "José Müller", "note": "日本語テキスト", "rtl": "مرحبا"});
    let (_, back) = round_trip(
        &env,
        &unique_stream("test"),
        json!({}),
        Some(metadata.clone()),
    )
    .await;
    assert_eq!(back, Some(metadata));
}

#[tokio::test]
async fn encoding_003_special_stream_name() {
    let env = Env::new().await;
    let stream = format!("test-stream_123.abc{}", uuid::Uuid::new_v4().simple());
    let (back, _) = round_trip(&env, &stream, json!({"ok": true}), None).await;
    assert_eq!(back, json!({"ok": true}));
    let last = env
        .client()
        .stream_last(&stream, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.position, 0);
}

#[tokio::test]
async fn encoding_004_empty_strings() {
    assert_round_trip(json!({"empty": "", "list": ["", ""], "": "empty key"})).await;
}

#[tokio::test]
async fn encoding_005_booleans() {
    assert_round_trip(json!({"t": true, "f": false, "list": [true, false]})).await;
}

#[tokio::test]
async fn encoding_006_nulls() {
    assert_round_trip(json!({"n": null, "list": [null, 1, null], "obj": {"inner": null}})).await;
}

#[tokio::test]
#[allow(clippy::approx_constant)] // 3.14159 is the conformance case's value, not PI
async fn encoding_007_numbers() {
    assert_round_trip(json!({"int": 42, "float": 3.14159, "negative": -100, "zero": 0, "big": 9007199254740992_i64})).await;
}

#[tokio::test]
async fn encoding_008_deep_nesting() {
    let mut data = json!({"leaf": "bottom"});
    for depth in 0..20 {
        data = json!({ format!("level{depth}"): data, "list": [depth] });
    }
    assert_round_trip(data).await;
}

#[tokio::test]
async fn encoding_009_mixed_arrays() {
    assert_round_trip(json!({"mixed": [1, "two", 3.5, true, null, {"k": "v"}, [1, [2, [3]]]]}))
        .await;
}

#[tokio::test]
async fn encoding_010_large_payload() {
    let chunk = "abcdefghij".repeat(100); // 1 KB
    let items: Vec<Value> = (0..100).map(|i| json!({"i": i, "s": chunk})).collect();
    let data = json!({ "items": items });
    assert!(data.to_string().len() >= 100_000);
    assert_round_trip(data).await;
}
