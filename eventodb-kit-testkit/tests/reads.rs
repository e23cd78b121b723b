//! `stream.get` and `category.get` options on the wire (SQLite semantics).

mod common;

use common::{rpc, write};
use eventodb_kit_testkit::{TestServer, TimePrecision};
use serde_json::Value;

fn column(body: &str, index: usize) -> Vec<Value> {
    let rows: Value = serde_json::from_str(body).expect("json");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[index].clone())
        .collect()
}

#[tokio::test]
async fn stream_get_options() {
    let server = TestServer::start().await.unwrap();
    for _ in 0..10 {
        write(&server, "r-1").await;
        write(&server, "r-2").await;
    }
    let positions = |body: &str| column(body, 2);
    assert_eq!(
        positions(
            &rpc(&server, r#"["stream.get", "r-1", {"position": 5}]"#)
                .await
                .body
        ),
        (5..10).map(Value::from).collect::<Vec<_>>()
    );
    assert_eq!(
        positions(
            &rpc(
                &server,
                r#"["stream.get", "r-1", {"position": -5, "batchSize": 3}]"#
            )
            .await
            .body
        ),
        [0, 1, 2].map(Value::from)
    );
    assert_eq!(
        positions(
            &rpc(&server, r#"["stream.get", "r-1", {"batchSize": 0}]"#)
                .await
                .body
        )
        .len(),
        10
    );
    assert_eq!(
        positions(
            &rpc(&server, r#"["stream.get", "r-1", {"batchSize": -1}]"#)
                .await
                .body
        )
        .len(),
        10
    );
    // globalPosition wins over position.
    let body = rpc(
        &server,
        r#"["stream.get", "r-1", {"position": 9, "globalPosition": 15}]"#,
    )
    .await
    .body;
    assert_eq!(column(&body, 3), [15, 17, 19].map(Value::from));
    assert_eq!(
        rpc(&server, r#"["stream.get", "r-1", {"position": 10}]"#)
            .await
            .body,
        "[]\n"
    );
}

#[tokio::test]
async fn category_get_options() {
    let server = TestServer::start().await.unwrap();
    let with_meta = |stream: &str, corr: &str| {
        format!(
            r#"["stream.write", "{stream}", {{"type": "T", "data": {{}}, "metadata": {{"correlationStreamName": "{corr}"}}}}]"#
        )
    };
    rpc(&server, &with_meta("acct-1", "workflow-1")).await; // 1
    rpc(&server, &with_meta("acct-2", "WORKFLOW-9")).await; // 2
    rpc(&server, &with_meta("acct-3", "workflow")).await; // 3
    write(&server, "acct-4").await; // 4
    write(&server, "other-1").await; // 5
    let gps = |body: String| column(&body, 4);
    assert_eq!(
        gps(rpc(&server, r#"["category.get", "acct"]"#).await.body),
        [1, 2, 3, 4].map(Value::from)
    );
    assert_eq!(
        gps(rpc(&server, r#"["category.get", "acct", {"position": 3}]"#)
            .await
            .body),
        [3, 4].map(Value::from)
    );
    assert_eq!(
        gps(rpc(
            &server,
            r#"["category.get", "acct", {"position": 1, "globalPosition": 4}]"#
        )
        .await
        .body),
        [4].map(Value::from)
    );
    assert_eq!(
        gps(rpc(&server, r#"["category.get", "", {"batchSize": 0}]"#)
            .await
            .body)
        .len(),
        5
    );
    assert_eq!(
        gps(rpc(
            &server,
            r#"["category.get", "acct", {"correlation": "workflow"}]"#
        )
        .await
        .body),
        [1, 2].map(Value::from)
    );
    assert_eq!(
        gps(rpc(
            &server,
            r#"["category.get", "acct", {"correlation": "workflow-1"}]"#
        )
        .await
        .body),
        Vec::<Value>::new()
    );
    assert_eq!(
        gps(rpc(&server, r#"["category.get", "acct-1"]"#).await.body),
        Vec::<Value>::new()
    );
    let body = rpc(&server, r#"["category.get", "acct", {"batchSize": 1}]"#)
        .await
        .body;
    let row: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(row[0].as_array().unwrap().len(), 8);
    assert_eq!(row[0][1], "acct-1");
    assert_eq!(
        row[0][6],
        serde_json::json!({"correlationStreamName": "workflow-1"})
    );
}

#[tokio::test]
async fn consumer_groups_on_the_wire() {
    let server = TestServer::start().await.unwrap();
    let raw = include_str!("vectors/consumer-groups.json");
    let file: Value = serde_json::from_str(raw).unwrap();
    // The size-3 vectors, written once each, read back per member.
    let vectors: Vec<&Value> = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["size"] == 3)
        .collect();
    assert!(vectors.len() > 20);
    for v in &vectors {
        write(&server, v["stream"].as_str().unwrap()).await;
    }
    for member in 0..3 {
        let body = rpc(&server, &format!(r#"["category.get", "account", {{"batchSize": -1, "consumerGroup": {{"member": {member}, "size": 3}}}}]"#)).await.body;
        let got: Vec<String> = column(&body, 1)
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let want: Vec<String> = vectors
            .iter()
            .filter(|v| v["member"] == member)
            .map(|v| v["stream"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "member {member}");
    }
}

#[tokio::test]
async fn nanosecond_times_when_asked() {
    let server = TestServer::builder()
        .time_precision(TimePrecision::Nanoseconds)
        .start()
        .await
        .unwrap();
    let mut saw_fraction = false;
    for _ in 0..5 {
        write(&server, "t-1").await;
    }
    for t in column(&rpc(&server, r#"["stream.get", "t-1"]"#).await.body, 6) {
        let t = t.as_str().unwrap().to_owned();
        assert!(t.ends_with('Z'));
        saw_fraction |= t.contains('.');
        if let Some((_, frac)) = t.trim_end_matches('Z').split_once('.') {
            assert!(frac.len() <= 9 && !frac.ends_with('0'), "{t}");
        }
    }
    assert!(saw_fraction);
}
