//! CATEGORY-001..008: `category.get`.

use std::collections::{BTreeMap, BTreeSet};

use eventodb_kit::client::{GetCategoryOptions, NewMessage, WriteOptions};
use eventodb_kit_tests::{Env, unique_category};
use serde_json::json;

use crate::util::{write, write_n};

#[tokio::test]
async fn category_001_reads_all_streams_of_the_category() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    for id in ["1", "2", "3"] {
        write_n(&client, &format!("{category}-{id}"), 2).await;
    }
    // Another category, also one that only shares a prefix, must not show up.
    write(&client, &format!("{category}x-1"), "T", json!({})).await;
    write(&client, &format!("{category}:command-1"), "T", json!({})).await;
    let read = client
        .category_get(&category, &GetCategoryOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 6);
    let streams: BTreeSet<&str> = read.iter().map(|m| m.stream_name.as_str()).collect();
    let expected: BTreeSet<String> = ["1", "2", "3"]
        .iter()
        .map(|id| format!("{category}-{id}"))
        .collect();
    assert_eq!(streams, expected.iter().map(String::as_str).collect());
}

#[tokio::test]
async fn category_002_position_is_an_inclusive_global_position() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    let mut written = Vec::new();
    for i in 0..6 {
        written.push(
            write(
                &client,
                &format!("{category}-{}", i % 2),
                "T",
                json!({"i": i}),
            )
            .await,
        );
    }
    let from = written[3].global_position;
    let read = client
        .category_get(&category, &GetCategoryOptions::new().position(from))
        .await
        .unwrap();
    let gps: Vec<i64> = read.iter().map(|m| m.global_position).collect();
    let expected: Vec<i64> = written[3..].iter().map(|w| w.global_position).collect();
    assert_eq!(gps, expected);
}

#[tokio::test]
async fn category_003_batch_size_limits() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    for i in 0..5 {
        write_n(&client, &format!("{category}-{i}"), 2).await;
    }
    let read = client
        .category_get(&category, &GetCategoryOptions::new().batch_size(3))
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
}

#[tokio::test]
async fn category_004_rows_carry_the_stream_name() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    let stream = format!("{category}-abc+retry");
    let written = write(&client, &stream, "T", json!({"x": 1})).await;
    // Eight fields, checked on the wire...
    let raw = client
        .call_raw("category.get", &[json!(category), json!({})])
        .await
        .unwrap();
    assert_eq!(raw[0].as_array().map(Vec::len), Some(8), "{raw}");
    // ...and typed.
    let read = client
        .category_get(&category, &GetCategoryOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].stream_name, stream);
    assert_eq!(read[0].position, 0);
    assert_eq!(read[0].global_position, written.global_position);
    assert_eq!(read[0].message_type, "T");
    assert_eq!(read[0].data, json!({"x": 1}));
}

#[tokio::test]
async fn category_005_consumer_group() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    // Members by the md5 cardinal-id rule (protocol 3.5; consumer-groups vectors): size 2.
    let expected_member = [
        ("1", 0),
        ("2", 1),
        ("3", 0),
        ("4", 1),
        ("123", 1),
        ("123+retry", 1),
    ];
    for (id, _) in expected_member {
        write_n(&client, &format!("{category}-{id}"), 2).await;
    }
    let mut seen = BTreeMap::new();
    for member in 0..2 {
        let read = client
            .category_get(
                &category,
                &GetCategoryOptions::new().consumer_group(member, 2),
            )
            .await
            .unwrap();
        for m in read {
            assert!(
                seen.insert(m.global_position, (member, m.stream_name))
                    .is_none(),
                "twice"
            );
        }
    }
    // Together, every message exactly once...
    assert_eq!(seen.len(), 12);
    // ...and each to the member of its cardinal id.
    for (id, member) in expected_member {
        let stream = format!("{category}-{id}");
        let got: BTreeSet<i64> = seen
            .values()
            .filter(|(_, s)| *s == stream)
            .map(|(m, _)| *m)
            .collect();
        assert_eq!(got, BTreeSet::from([member]), "{stream}");
    }
}

#[tokio::test]
async fn category_006_correlation_filter() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    let workflow = unique_category("wf");
    let other = unique_category("other");
    let with_corr = |corr: &str| {
        NewMessage::new("T", json!({})).metadata(json!({"correlationStreamName": corr}))
    };
    let none = WriteOptions::new();
    let matching = [
        client
            .stream_write(
                &format!("{category}-1"),
                &with_corr(&format!("{workflow}-1")),
                &none,
            )
            .await
            .unwrap(),
        client
            .stream_write(
                &format!("{category}-2"),
                &with_corr(&format!("{workflow}-2")),
                &none,
            )
            .await
            .unwrap(),
    ];
    client
        .stream_write(
            &format!("{category}-3"),
            &with_corr(&format!("{other}-1")),
            &none,
        )
        .await
        .unwrap();
    write(&client, &format!("{category}-4"), "T", json!({})).await;
    let read = client
        .category_get(&category, &GetCategoryOptions::new().correlation(workflow))
        .await
        .unwrap();
    let gps: Vec<i64> = read.iter().map(|m| m.global_position).collect();
    assert_eq!(
        gps,
        matching
            .iter()
            .map(|w| w.global_position)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn category_007_empty_category_is_empty() {
    let env = Env::new().await;
    let read = env
        .client()
        .category_get(&unique_category("nothing"), &GetCategoryOptions::new())
        .await
        .unwrap();
    assert!(read.is_empty());
}

#[tokio::test]
async fn category_008_ascending_global_position() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    for i in 0..9 {
        write(
            &client,
            &format!("{category}-{}", [3, 1, 2][i % 3]),
            "T",
            json!({"i": i}),
        )
        .await;
    }
    let read = client
        .category_get(&category, &GetCategoryOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 9);
    assert!(
        read.windows(2)
            .all(|w| w[0].global_position < w[1].global_position)
    );
    let order: Vec<i64> = read.iter().map(|m| m.data["i"].as_i64().unwrap()).collect();
    assert_eq!(order, (0..9).collect::<Vec<_>>());
}
