//! `Backend::Pebble`: the rules the real Pebble backend was observed to follow (§9).

mod common;

use common::{rpc, write};
use eventodb_kit_testkit::{Backend, TestServer};
use serde_json::Value;

async fn pebble() -> TestServer {
    TestServer::builder()
        .backend(Backend::Pebble)
        .start()
        .await
        .unwrap()
}

fn rows(body: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn ids_are_not_checked_and_duplicates_are_stored() {
    let server = pebble().await;
    for _ in 0..2 {
        let a = rpc(
            &server,
            r#"["stream.write", "p-1", {"type": "T", "data": {}}, {"id": "not-a-uuid"}]"#,
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let got = rows(&rpc(&server, r#"["stream.get", "p-1"]"#).await.body);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r[0] == "not-a-uuid"));
}

#[tokio::test]
async fn version_conflicts_have_the_generic_message() {
    let server = pebble().await;
    let a = rpc(
        &server,
        r#"["stream.write", "p-1", {"type": "T", "data": {}}, {"expectedVersion": 3}]"#,
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            409,
            "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"version conflict: expected version does not match stream version\"}}\n"
        )
    );
}

#[tokio::test]
async fn batch_sizes_and_positions() {
    let server = pebble().await;
    for _ in 0..1001 {
        write(&server, "b-1").await;
    }
    let count = |body: String| rows(&body).len();
    assert_eq!(
        count(
            rpc(&server, r#"["stream.get", "b-1", {"batchSize": 0}]"#)
                .await
                .body
        ),
        1000
    );
    assert_eq!(
        count(
            rpc(&server, r#"["stream.get", "b-1", {"batchSize": -5}]"#)
                .await
                .body
        ),
        1000
    );
    assert_eq!(
        count(
            rpc(&server, r#"["stream.get", "b-1", {"batchSize": -1}]"#)
                .await
                .body
        ),
        1001
    );
    assert_eq!(
        count(
            rpc(&server, r#"["category.get", "b", {"batchSize": -1}]"#)
                .await
                .body
        ),
        1001
    );
    // Both position and globalPosition apply.
    let got = rows(
        &rpc(
            &server,
            r#"["stream.get", "b-1", {"position": 990, "globalPosition": 5}]"#,
        )
        .await
        .body,
    );
    assert_eq!(got[0][2], 990);
    // category.get ignores globalPosition.
    let got = rows(
        &rpc(
            &server,
            r#"["category.get", "b", {"position": 1000, "globalPosition": 5}]"#,
        )
        .await
        .body,
    );
    assert_eq!(got[0][4], 1000);
}

#[tokio::test]
async fn last_with_an_empty_type_finds_nothing() {
    let server = pebble().await;
    write(&server, "l-1").await;
    assert_eq!(
        rpc(&server, r#"["stream.last", "l-1", {"type": ""}]"#)
            .await
            .body,
        "null\n"
    );
    assert_ne!(
        rpc(&server, r#"["stream.last", "l-1", {}]"#).await.body,
        "null\n"
    );
}

#[tokio::test]
async fn listing_rules() {
    let server = pebble().await;
    write(&server, "acct-1").await;
    write(&server, "acct:command-1").await;
    assert_eq!(
        rpc(&server, r#"["ns.streams", {"prefix": "ACC"}]"#)
            .await
            .body,
        "[]\n"
    );
    assert_eq!(
        rows(
            &rpc(&server, r#"["ns.streams", {"prefix": "acct-"}]"#)
                .await
                .body
        )
        .len(),
        1
    );
    let cats = rows(&rpc(&server, r#"["ns.categories"]"#).await.body);
    assert_eq!(cats[0]["category"], "acct");
    assert_eq!(
        cats[0]["messageCount"], 2,
        "Pebble counts acct:command under acct"
    );
    rpc(&server, r#"["ns.create", "aaa"]"#).await;
    rpc(&server, r#"["ns.create", "zzz"]"#).await;
    let names: Vec<Value> = rows(&rpc(&server, r#"["ns.list"]"#).await.body)
        .iter()
        .map(|n| n["namespace"].clone())
        .collect();
    assert_eq!(names, ["aaa", "default", "zzz"]);
}
