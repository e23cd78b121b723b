//! SSE-001..009: `/subscribe` pokes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use eventodb_kit::client::{Poke, Subscription};
use eventodb_kit_tests::{Env, unique_category, unique_stream};
use futures_util::StreamExt as _;
use serde_json::json;

use crate::util::{POKE_WAIT, drain_pokes, next_poke, wait_registered, write, write_n};

/// The member a **live** category poke goes to (protocol 6.5): a polynomial hash of the
/// full stream name, not the md5 rule of `category.get`.
fn live_poke_member(stream: &str, size: u64) -> u64 {
    stream
        .chars()
        .fold(0u64, |h, c| h.wrapping_mul(31).wrapping_add(c as u64))
        % size
}

#[tokio::test]
async fn sse_001_stream_subscription_gets_a_poke() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let mut pokes = client
        .subscribe(&Subscription::stream(&stream))
        .await
        .unwrap();
    let written = write(&client, &stream, "T", json!({})).await;
    let poke = next_poke(&mut pokes).await;
    assert_eq!(
        poke,
        Poke {
            stream: stream.clone(),
            position: written.position,
            global_position: written.global_position
        }
    );
}

#[tokio::test]
async fn sse_002_category_subscription() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    // By value (by reference works too).
    let mut pokes = client
        .subscribe(Subscription::category(&category))
        .await
        .unwrap();
    let a = write(&client, &format!("{category}-a"), "T", json!({})).await;
    write(&client, &unique_stream("elsewhere"), "T", json!({})).await;
    let b = write(&client, &format!("{category}-b"), "T", json!({})).await;
    let first = next_poke(&mut pokes).await;
    let second = next_poke(&mut pokes).await;
    assert_eq!(
        (first.stream, first.global_position),
        (format!("{category}-a"), a.global_position)
    );
    assert_eq!(
        (second.stream, second.global_position),
        (format!("{category}-b"), b.global_position)
    );
}

#[tokio::test]
async fn sse_003_from_a_stream_position() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    write_n(&client, &stream, 5).await;
    let mut pokes = client
        .subscribe(&Subscription::stream(&stream).position(3))
        .await
        .unwrap();
    assert_eq!(next_poke(&mut pokes).await.position, 3);
    assert_eq!(next_poke(&mut pokes).await.position, 4);
    write(&client, &stream, "T", json!({})).await;
    assert_eq!(next_poke(&mut pokes).await.position, 5);
}

#[tokio::test]
async fn sse_004_without_a_token() {
    let Some(env) = Env::normal_mode("sse_004_without_a_token").await else {
        return;
    };
    let mut pokes = env
        .anonymous_client()
        .subscribe(&Subscription::stream(unique_stream("test")))
        .await
        .unwrap();
    let first = tokio::time::timeout(POKE_WAIT, pokes.next())
        .await
        .expect("an answer, not a hang")
        .expect("an item");
    let err = first.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(err.status(), Some(401));
    assert!(
        pokes.next().await.is_none(),
        "the stream ends after the error"
    );
    // A reconnecting subscription does not try again after a refused token: waiting cannot
    // mend it.
    let mut pokes = env
        .anonymous_client()
        .subscribe(
            &Subscription::stream(unique_stream("test"))
                .reconnect(Duration::from_millis(10), Duration::from_millis(50)),
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(POKE_WAIT, pokes.next())
        .await
        .expect("an answer, not a hang")
        .expect("an item");
    assert!(first.unwrap_err().is_auth());
    assert!(
        tokio::time::timeout(POKE_WAIT, pokes.next())
            .await
            .expect("the end, not a retry")
            .is_none()
    );
    // An `all` subscription reports it from subscribe() itself.
    let err = env
        .anonymous_client()
        .subscribe(&Subscription::all())
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
}

#[tokio::test]
async fn sse_005_consumer_group_member_gets_its_pokes() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    let streams: Vec<String> = (1..=8).map(|i| format!("{category}-{i}")).collect();
    // Both members subscribe before anything is written, so every poke is a live one.
    let mut members = Vec::new();
    for member in 0..2 {
        members.push(
            client
                .subscribe(Subscription::category(&category).consumer_group(member, 2))
                .await
                .unwrap(),
        );
    }
    wait_registered(&env, 2).await;
    for stream in &streams {
        write(&client, stream, "T", json!({})).await;
    }
    for (member, pokes) in members.iter_mut().enumerate() {
        let expected: BTreeSet<String> = streams
            .iter()
            .filter(|s| live_poke_member(s, 2) == member as u64)
            .cloned()
            .collect();
        assert!(!expected.is_empty());
        let mut got = BTreeSet::new();
        while got.len() < expected.len() {
            let poke = next_poke(pokes).await;
            assert!(
                expected.contains(&poke.stream),
                "{poke:?} is not for member {member}"
            );
            got.insert(poke.stream);
        }
        let extra = drain_pokes(pokes, Duration::from_millis(300)).await;
        assert!(extra.is_empty(), "unexpected pokes {extra:?}");
    }
}

#[tokio::test]
async fn sse_006_two_subscriptions_are_independent() {
    let env = Env::new().await;
    let client = env.client();
    let (one, two) = (unique_stream("one"), unique_stream("two"));
    let mut pokes_one = client.subscribe(&Subscription::stream(&one)).await.unwrap();
    let mut pokes_two = client.subscribe(&Subscription::stream(&two)).await.unwrap();
    write(&client, &one, "T", json!({})).await;
    write(&client, &two, "T", json!({})).await;
    write(&client, &two, "T", json!({})).await;
    assert_eq!(next_poke(&mut pokes_one).await.stream, one);
    let first = next_poke(&mut pokes_two).await;
    let second = next_poke(&mut pokes_two).await;
    assert_eq!((first.stream.as_str(), first.position), (two.as_str(), 0));
    assert_eq!((second.stream.as_str(), second.position), (two.as_str(), 1));
    assert!(
        drain_pokes(&mut pokes_one, Duration::from_millis(200))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn sse_007_reconnect_resumes_from_own_position() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let mut pokes = client
        .subscribe(&Subscription::stream(&stream))
        .await
        .unwrap();
    write_n(&client, &stream, 2).await;
    assert_eq!(next_poke(&mut pokes).await.position, 0);
    assert_eq!(next_poke(&mut pokes).await.position, 1);
    match env.server() {
        Some(server) => {
            // The server drops the connection: the stream ends (possibly after an error).
            server.faults().drop_sse_connections();
            let ended = tokio::time::timeout(POKE_WAIT, async {
                while let Some(item) = pokes.next().await {
                    assert!(item.is_err(), "no poke expected after the drop: {item:?}");
                }
            })
            .await;
            assert!(
                ended.is_ok(),
                "the stream did not end after the connection dropped"
            );
        }
        // A real server cannot be told to drop us: drop our side instead.
        None => eprintln!("sse_007: real server, dropping the connection on the client side"),
    }
    let resume = pokes.resume_subscription();
    drop(pokes);
    assert_eq!(resume.start_position(), Some(2));
    write(&client, &stream, "T", json!({})).await;
    let mut pokes = client.subscribe(&resume).await.unwrap();
    let poke = next_poke(&mut pokes).await;
    assert_eq!(
        poke.position, 2,
        "resumed after the last poke, nothing replayed"
    );
}

/// 007 without the caller's help: a subscription made with `reconnect` connects again by
/// itself after the server drops it, and again while connections are refused, each time
/// after its last poke (nothing replayed, nothing missed).
#[tokio::test]
async fn sse_007_a_reconnecting_subscription_resumes_by_itself() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test");
    let mut pokes = client
        .subscribe(
            Subscription::stream(&stream)
                .reconnect(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .await
        .unwrap();
    write_n(&client, &stream, 2).await;
    assert_eq!(next_poke(&mut pokes).await.position, 0);
    assert_eq!(next_poke(&mut pokes).await.position, 1);
    assert_eq!(pokes.reconnections(), 0);
    let Some(server) = env.server() else {
        // A real server cannot be told to drop us: the subscription still serves.
        eprintln!("sse_007: real server, no connection to drop");
        write(&client, &stream, "T", json!({})).await;
        assert_eq!(next_poke(&mut pokes).await.position, 2);
        return;
    };
    server.faults().drop_sse_connections();
    // Written while the subscription is down or back: a catch-up poke or a live one.
    write(&client, &stream, "T", json!({})).await;
    assert_eq!(
        next_poke(&mut pokes).await.position,
        2,
        "resumed after the last poke, nothing replayed"
    );
    assert_eq!(pokes.reconnections(), 1);
    // Down for a while (the connection closed, new ones too): the reconnects, made while
    // the stream is polled, fail and are tried again, with no item; then one gets through.
    server.faults().refuse_connections(true);
    let quiet = tokio::time::timeout(Duration::from_millis(300), pokes.next()).await;
    assert!(quiet.is_err(), "no item while refused: {quiet:?}");
    server.faults().refuse_connections(false);
    write(&client, &stream, "T", json!({})).await;
    assert_eq!(next_poke(&mut pokes).await.position, 3);
    assert_eq!(pokes.reconnections(), 2, "refused connects are not counted");
    assert!(
        drain_pokes(&mut pokes, Duration::from_millis(200))
            .await
            .is_empty(),
        "each poke once"
    );
}

#[tokio::test]
async fn sse_008_poke_has_three_fields() {
    let env = Env::new().await;
    let client = env.client();
    let stream = unique_stream("test+compound");
    write(&client, &unique_stream("other"), "T", json!({})).await;
    let mut pokes = client
        .subscribe(&Subscription::stream(&stream))
        .await
        .unwrap();
    let written = write(&client, &stream, "T", json!({})).await;
    let poke = next_poke(&mut pokes).await;
    // `+` travelled URL-encoded: the subscription matched the compound name.
    assert_eq!(poke.stream, stream);
    assert_eq!(poke.position, 0);
    assert_eq!(poke.global_position, written.global_position);
    assert!(poke.global_position >= 2);
}

#[tokio::test]
async fn sse_009_two_members_each_poke_once() {
    let env = Env::new().await;
    let client = env.client();
    let category = unique_category("cat");
    let mut members = Vec::new();
    for member in 0..2 {
        members.push(
            client
                .subscribe(&Subscription::category(&category).consumer_group(member, 2))
                .await
                .unwrap(),
        );
    }
    wait_registered(&env, 2).await;
    let mut written = BTreeMap::new();
    for i in 0..12 {
        let stream = format!("{category}-{i}");
        written.insert(
            write(&client, &stream, "T", json!({}))
                .await
                .global_position,
            stream,
        );
    }
    let mut delivered: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    let mut total = 0;
    while total < written.len() {
        let [zero, one] = &mut members[..] else {
            unreachable!("two members")
        };
        let got = tokio::select! {
            poke = next_poke(zero) => (0, poke),
            poke = next_poke(one) => (1, poke),
        };
        delivered
            .entry(got.1.global_position)
            .or_default()
            .push(got.0);
        total += 1;
    }
    for pokes in members.iter_mut() {
        assert!(
            drain_pokes(pokes, Duration::from_millis(300))
                .await
                .is_empty()
        );
    }
    assert_eq!(
        delivered.keys().collect::<Vec<_>>(),
        written.keys().collect::<Vec<_>>()
    );
    for (gp, to) in delivered {
        assert_eq!(to.len(), 1, "global position {gp} went to {to:?}");
    }
}
