//! `Backend::Pebble`: the rules the real Pebble backend was observed to follow (§9).

mod common;

use std::time::Duration;

use common::{Sse, poke, rpc, subscribe, write};
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

#[tokio::test]
async fn category_reads_scan_only_a_window_of_keys() {
    let server = pebble().await;
    // Under a group of two, `k-1` is member 0's and `k-2` member 1's (protocol §3.5).
    for _ in 0..4 {
        write(&server, "k-1").await;
    }
    let theirs = write(&server, "k-2").await;
    let positions =
        |body: String| -> Vec<i64> { rows(&body).iter().map(|r| r[4].as_i64().unwrap()).collect() };
    let member_1 = |position: i64| {
        format!(
            r#"["category.get", "k", {{"position": {position}, "batchSize": 2, "consumerGroup": {{"member": 1, "size": 2}}}}]"#
        )
    };
    // batchSize 2 × size 2 = the first four keys, all member 0's: nothing, though one follows.
    assert!(positions(rpc(&server, &member_1(1)).await.body).is_empty());
    assert_eq!(
        positions(rpc(&server, &member_1(2)).await.body),
        vec![theirs]
    );
    // Without a group the window is batchSize keys, and a correlation filter applies to them.
    let a = rpc(
        &server,
        r#"["stream.write", "k-3", {"type": "T", "data": {}, "metadata": {"correlationStreamName": "flow-1"}}]"#,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let correlated = |batch: i64| {
        format!(
            r#"["category.get", "k", {{"position": 1, "batchSize": {batch}, "correlation": "flow"}}]"#
        )
    };
    assert!(positions(rpc(&server, &correlated(5)).await.body).is_empty());
    assert_eq!(positions(rpc(&server, &correlated(6)).await.body).len(), 1);
    // The "" category walks every message until the batch is full.
    let all = r#"["category.get", "", {"position": 1, "batchSize": 1, "correlation": "flow"}]"#;
    assert_eq!(positions(rpc(&server, all).await.body).len(), 1);
}

/// The SSE catch-up reads a category as `category.get` does, 1000 at a time: on Pebble,
/// through a window of 1000 × size keys.
#[tokio::test]
async fn category_catch_up_scans_only_a_window_of_keys() {
    for backend in [Backend::Pebble, Backend::Sqlite] {
        let server = TestServer::builder()
            .backend(backend)
            .start()
            .await
            .unwrap();
        // Member 0's 2000 messages fill member 1's window of 1000 × 2 keys (protocol §3.5).
        for _ in 0..2000 {
            write(&server, "k-1").await;
        }
        let theirs = write(&server, "k-2").await;
        let from_start = subscribe(&server, "category=k&consumer=1&size=2");
        if backend == Backend::Pebble {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !from_start.is_finished(),
                "no catch-up poke: the window held none of member 1's keys"
            );
            from_start.abort();
        } else {
            let mut sse = Sse::new(from_start.await.unwrap().unwrap());
            assert_eq!(sse.frame().await, poke("k-2", 0, theirs));
        }
        // One key later, the window reaches it.
        let later = subscribe(&server, "category=k&consumer=1&size=2&position=2");
        let response = tokio::time::timeout(Duration::from_secs(5), later)
            .await
            .expect("headers within 5 s")
            .unwrap()
            .unwrap();
        assert_eq!(Sse::new(response).frame().await, poke("k-2", 0, theirs));
    }
}

#[tokio::test]
async fn the_sqlite_backend_filters_before_it_limits() {
    let server = TestServer::start().await.unwrap();
    for _ in 0..4 {
        write(&server, "k-1").await;
    }
    let theirs = write(&server, "k-2").await;
    let got = rows(
        &rpc(
            &server,
            r#"["category.get", "k", {"position": 1, "batchSize": 2, "consumerGroup": {"member": 1, "size": 2}}]"#,
        )
        .await
        .body,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][4], theirs);
}
