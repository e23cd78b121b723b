//! Every command of the CLI against a real database, the same on SQLite and PostgreSQL: rows
//! are set up through the library, the binary runs with `--json`, its output is checked
//! against the library's view of the database.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventodb_kit::client::{NewMessage, WriteOptions};
use eventodb_kit::consumer::{
    ConsumerAdmin, ConsumerOptions, FailurePolicy, Handled, HandlerError, RetryPolicy, consumer_fn,
};
use eventodb_kit::outbox::{RowStatus, SenderOptions};
use eventodb_kit::{Backend, Kit, RawMessage};
use eventodb_kit_tests::Env;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestDb, cli, eventually};

const LONG: Duration = Duration::from_secs(20);

/// Runs each named scenario as a test on one backend; `fresh(migrated)` gives the database.
#[macro_export]
macro_rules! scenarios {
    ($fresh:path; $($name:ident: $migrated:expr),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(db) = $fresh($migrated).await else { return };
                scenarios::$name(&db).await;
                db.cleanup().await;
            }
        )*
    };
}

fn kit<DB: Backend>(db: &TestDb<DB>, server: &Env) -> Kit<DB> {
    Kit::builder(server.url())
        .client(server.client())
        .database(db.pool.clone())
        .build()
        .expect("kit")
}

fn fast() -> SenderOptions {
    SenderOptions::default()
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .lease(Duration::from_millis(500))
}

fn versions(document: &Value) -> Vec<i64> {
    document["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// `migrate`, again (nothing to do), `migrate --down`; commands before and after say the
/// tables are missing.
pub async fn migrate_applies_and_reverts<DB: Backend>(db: &TestDb<DB>) {
    let url = db.url.as_str();
    let message = cli(&[], &["--database-url", url, "--json", "outbox", "status"])
        .await
        .failed("missing_tables");
    assert!(
        message.contains("run `eventodb-kit migrate` first"),
        "{message}"
    );

    let all: Vec<i64> = eventodb_kit::migrations::<DB>()
        .iter()
        .map(|step| step.version)
        .collect();
    let up = cli(&[("DATABASE_URL", url)], &["migrate", "--json"])
        .await
        .ok();
    assert_eq!(up["direction"], "up");
    assert_eq!(versions(&up), all);
    assert_eq!(up["latest"], *all.last().unwrap());
    let again = cli(&[("DATABASE_URL", url)], &["migrate", "--json"])
        .await
        .ok();
    assert_eq!(versions(&again), Vec::<i64>::new());
    let text = cli(&[("DATABASE_URL", url)], &["migrate"]).await;
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("up to date"), "{text:?}");

    // The tables work: the library sees them.
    let status = cli(&[("DATABASE_URL", url)], &["outbox", "status", "--json"])
        .await
        .ok();
    assert_eq!(
        (status["pending"].as_u64(), status["failed"].as_u64()),
        (Some(0), Some(0))
    );

    // An unsent row stops a revert that would lose it, until it is gone (or --force).
    let kit = Kit::builder("http://127.0.0.1:9")
        .database(db.pool.clone())
        .build()
        .expect("kit");
    let mut conn = db.pool.acquire().await.unwrap();
    let unsent = kit
        .outbox()
        .write(&mut *conn, "acct-z", RawMessage::new("Opened", json!({})))
        .await
        .unwrap();
    drop(conn);
    let refused = cli(
        &[("DATABASE_URL", url)],
        &["migrate", "--down", "2", "--json"],
    )
    .await
    .failed("refused");
    assert!(refused.contains("1 unsent outbox rows"), "{refused}");
    assert!(kit.outbox().discard(unsent.id).await.unwrap());

    let down = cli(
        &[("DATABASE_URL", url)],
        &["migrate", "--down", "2", "--json"],
    )
    .await
    .ok();
    assert_eq!(down["direction"], "down");
    let above_two: Vec<i64> = all.iter().rev().copied().filter(|v| *v > 2).collect();
    assert_eq!(versions(&down), above_two);
    let rest = cli(
        &[("DATABASE_URL", url)],
        &["migrate", "--down", "0", "--json"],
    )
    .await
    .ok();
    assert_eq!(versions(&rest), vec![2, 1]);
    cli(&[("DATABASE_URL", url)], &["consumer", "list", "--json"])
        .await
        .failed("missing_tables");
    let bad = cli(&[("DATABASE_URL", url)], &["migrate", "--down", "-1"]).await;
    assert_eq!(bad.code, 2, "a negative version is a usage error: {bad:?}");
    // And back up: the library can use them again.
    cli(&[("DATABASE_URL", url)], &["migrate", "--json"])
        .await
        .ok();
    assert_eq!(
        eventodb_kit::migrate(&db.pool).await.unwrap(),
        Vec::<i64>::new()
    );
}

async fn write<DB: Backend>(kit: &Kit<DB>, stream: &str, expected_version: Option<i64>) -> Uuid {
    let mut tx = kit.pool().begin().await.expect("begin");
    let mut write = kit.outbox().write(
        &mut *tx,
        stream,
        RawMessage::new("Counted", json!({ "n": 1 })),
    );
    if let Some(version) = expected_version {
        write = write.expected_version(version);
    }
    let written = write.await.expect("write");
    tx.commit().await.expect("commit");
    written.id
}

/// `outbox status`, `retry` (by id and by stream), `discard` and `purge`, with a failed row
/// from a real version conflict.
pub async fn outbox_commands<DB: Backend>(db: &TestDb<DB>) {
    let server = Env::new().await;
    let kit = kit(db, &server);
    let token = server.token().expose_secret().to_owned();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("EVENTODB_TOKEN", token.as_str()),
    ];
    kit.client()
        .stream_write(
            "acct-a",
            &NewMessage::new("Opened", json!({})),
            &WriteOptions::new(),
        )
        .await
        .unwrap();
    let stale = write(&kit, "acct-a", Some(5)).await;
    let behind = write(&kit, "acct-a", None).await;
    let other = write(&kit, "acct-b", None).await;
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    eventually("the version conflict parks acct-a", LONG, || async {
        let status = kit.outbox().status().await.unwrap();
        (status.failed == 1 && status.sent == 1).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();

    let status = cli(&env, &["outbox", "status", "--json"]).await.ok();
    assert_eq!(status["namespace"], server.namespace());
    assert_eq!(
        (
            status["pending"].as_u64(),
            status["failed"].as_u64(),
            status["sent"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert!(status["oldest_pending_age_seconds"].as_f64().unwrap() >= 0.0);
    let parked = status["parked_streams"].as_array().unwrap();
    assert_eq!(parked.len(), 1, "{status}");
    assert_eq!(parked[0]["stream"], "acct-a");
    assert_eq!(parked[0]["id"], stale.to_string());
    assert_eq!(parked[0]["expected_version"], 5);
    assert!(
        parked[0]["error"].as_str().unwrap().contains("version"),
        "{status}"
    );
    let table = cli(&env, &["outbox", "status"]).await;
    assert_eq!(table.code, 0);
    assert!(table.stdout.contains("acct-a") && table.stdout.contains(&stale.to_string()));

    // The token picks the namespace: without it, the `default` namespace has no rows.
    let other_ns = cli(
        &[("DATABASE_URL", db.url.as_str())],
        &["outbox", "status", "--json"],
    )
    .await
    .ok();
    assert_eq!(
        other_ns["namespace"], "default",
        "no token: the default namespace"
    );
    assert_eq!(
        (other_ns["pending"].as_u64(), other_ns["failed"].as_u64()),
        (Some(0), Some(0)),
        "another namespace's rows are not shown: {other_ns}"
    );
    let message = cli(
        &[("DATABASE_URL", db.url.as_str())],
        &["outbox", "retry", &stale.to_string(), "--json"],
    )
    .await
    .failed("not_found");
    assert!(
        message.contains("\"default\"") && message.contains("no token"),
        "says where it looked: {message}"
    );

    // Retrying what is not failed says why.
    let message = cli(
        &env,
        &["outbox", "retry", &Uuid::new_v4().to_string(), "--json"],
    )
    .await
    .failed("not_found");
    assert!(
        message.contains("no outbox row") && message.contains("the token's"),
        "{message}"
    );
    let message = cli(&env, &["outbox", "retry", &behind.to_string(), "--json"])
        .await
        .failed("wrong_state");
    assert!(message.contains("pending"), "{message}");
    cli(&env, &["outbox", "retry", "acct-b", "--json"])
        .await
        .failed("not_found");

    // Every failed row at once (after a wrong token parked them all, say); its version
    // still conflicts, so the sender parks it again.
    let all = cli(&env, &["outbox", "retry", "--all", "--json"])
        .await
        .ok();
    assert_eq!(all["ids"], json!([stale.to_string()]));
    let row = kit.outbox().row(stale).await.unwrap().unwrap();
    assert_eq!(row.status, RowStatus::Pending);
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    eventually("parked again", LONG, || async {
        let row = kit.outbox().row(stale).await.unwrap().unwrap();
        (row.status == RowStatus::Failed).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();

    // Retry by stream, overriding the expected version.
    let retried = cli(
        &env,
        &[
            "outbox",
            "retry",
            "acct-a",
            "--without-expected-version",
            "--json",
        ],
    )
    .await
    .ok();
    assert_eq!(retried["ids"], json!([stale.to_string()]));
    let row = kit.outbox().row(stale).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.expected_version),
        (RowStatus::Pending, None)
    );
    // Nothing to retry is done, not a failure: a periodic script runs `--all`.
    let none = cli(&env, &["outbox", "retry", "--all", "--json"])
        .await
        .ok();
    assert_eq!(none["ids"], json!([]));
    let status = cli(&env, &["outbox", "status", "--json"]).await.ok();
    assert_eq!(
        (status["pending"].as_u64(), status["failed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(status["parked_streams"], json!([]));

    // Discard the row behind it; a second discard explains.
    let discarded = cli(&env, &["outbox", "discard", &behind.to_string(), "--json"])
        .await
        .ok();
    assert_eq!(discarded["ids"], json!([behind.to_string()]));
    assert_eq!(
        kit.outbox().row(behind).await.unwrap().unwrap().status,
        RowStatus::Discarded
    );
    let message = cli(&env, &["outbox", "discard", &behind.to_string(), "--json"])
        .await
        .failed("wrong_state");
    assert!(message.contains("discarded"), "{message}");
    let usage = cli(&env, &["outbox", "discard", "not-a-uuid"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");

    // The retried row goes out; the discarded one never does.
    let sender = kit.outbox().spawn_sender(fast()).await.unwrap();
    eventually("the outbox drains", LONG, || async {
        let status = kit.outbox().status().await.unwrap();
        (status.pending == 0 && status.sent == 2).then_some(())
    })
    .await;
    sender.shutdown().await.unwrap();
    let ids: Vec<Uuid> = kit
        .client()
        .stream_get("acct-a", &Default::default())
        .await
        .unwrap()
        .iter()
        .map(|m| m.id.as_uuid().expect("the outbox writes UUIDs"))
        .collect();
    assert_eq!(ids[1..], [stale]);

    // Purge keeps young rows, then deletes the discarded one at a zero retention.
    let kept = cli(&env, &["outbox", "purge", "--json"]).await.ok();
    assert_eq!(
        (
            kept["deleted"].as_u64(),
            kept["older_than_seconds"].as_u64()
        ),
        (Some(0), Some(604_800))
    );
    let purged = cli(&env, &["outbox", "purge", "--older-than", "0s", "--json"])
        .await
        .ok();
    assert!(purged["deleted"].as_u64().unwrap() >= 1, "{purged}");
    assert!(kit.outbox().row(behind).await.unwrap().is_none());
    assert!(
        kit.outbox().row(other).await.unwrap().is_some()
            || purged["deleted"].as_u64().unwrap() >= 2
    );
    // With --unverified, sent rows never read back go too.
    cli(
        &env,
        &[
            "outbox",
            "purge",
            "--older-than",
            "0s",
            "--unverified",
            "--json",
        ],
    )
    .await
    .ok();
    for id in [stale, other] {
        assert!(kit.outbox().row(id).await.unwrap().is_none(), "{id}");
    }
    let usage = cli(&env, &["outbox", "purge", "--older-than", "7y"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
}

async fn put(kit_client: &eventodb_kit::Client, stream: &str, message_type: &str) -> i64 {
    kit_client
        .stream_write(
            stream,
            &NewMessage::new(message_type, json!({})),
            &WriteOptions::new(),
        )
        .await
        .unwrap()
        .global_position
}

fn member<'a>(list: &'a Value, consumer: &str) -> Vec<&'a Value> {
    list["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["consumer"] == consumer)
        .flat_map(|entry| entry["members"].as_array().unwrap())
        .collect()
}

/// `consumer list` (with and without EventoDB), `parked`, `release`, `reset`, with state
/// from real consumers.
pub async fn consumer_commands<DB: Backend>(db: &TestDb<DB>) {
    let server = Env::new().await;
    let kit = kit(db, &server);
    let client = kit.client().clone();
    let token = server.token().expose_secret().to_owned();
    let url = server.url().to_owned();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("EVENTODB_TOKEN", token.as_str()),
    ];
    let with_eventodb = [env[0], env[1], ("EVENTODB_URL", url.as_str())];

    put(&client, "park-1", "Ok").await;
    put(&client, "park-1", "Poison").await;
    put(&client, "park-1", "Ok").await;
    put(&client, "park-2", "Ok").await;
    let last = put(&client, "park-2", "Ok").await;
    let other = put(&client, "other-1", "Ok").await;

    let healed = Arc::new(AtomicBool::new(false));
    let parker = {
        let healed = healed.clone();
        consumer_fn("park", move |message| {
            let healed = healed.load(Ordering::SeqCst);
            async move {
                if message.message_type == "Poison" && !healed {
                    return Err(HandlerError::permanent("poison"));
                }
                Ok::<_, HandlerError>(Handled::Done)
            }
        })
    };
    let ok =
        |category: &str| consumer_fn(category, |_| async { Ok::<_, HandlerError>(Handled::Done) });
    let workers = kit
        .workers()
        .consumer(
            parker,
            ConsumerOptions::new("parker")
                .failure_policy(FailurePolicy::ParkStream)
                .retry(RetryPolicy::new(
                    2,
                    Duration::from_millis(1),
                    Duration::from_millis(5),
                )),
        )
        .consumer(
            consumer_fn("park", |message| async move {
                if message.message_type == "Poison" {
                    return Err(HandlerError::permanent("poison"));
                }
                Ok::<_, HandlerError>(Handled::Done)
            }),
            ConsumerOptions::new("skipper")
                .failure_policy(FailurePolicy::Skip)
                .retry(RetryPolicy::none()),
        )
        .consumer(ok("park"), ConsumerOptions::new("grouped").group(0, 2))
        .consumer(ok("park"), ConsumerOptions::new("grouped").group(1, 2))
        .consumer(ok("other"), ConsumerOptions::new("mirror"))
        .spawn()
        .await
        .unwrap();
    for handle in workers.consumers() {
        let target = if handle.category() == "other" {
            other
        } else {
            last
        };
        handle.wait_for(target, LONG).await.unwrap();
    }
    workers.shutdown().await.unwrap();

    // list, with lag.
    let list = cli(&with_eventodb, &["consumer", "list", "--json"])
        .await
        .ok();
    assert_eq!(list["eventodb"]["reachable"], true, "{list}");
    let names: Vec<(&str, &str)> = list["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["category"].as_str().unwrap(),
                c["consumer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("other", "mirror"),
            ("park", "grouped"),
            ("park", "parker"),
            ("park", "skipper")
        ]
    );
    let parker_rows = member(&list, "parker");
    assert_eq!(parker_rows.len(), 1);
    assert_eq!(parker_rows[0]["state"], "stopped", "shut down: {list}");
    assert_eq!(parker_rows[0]["position"], last);
    assert_eq!(parker_rows[0]["lag"], 0);
    assert_eq!(
        (
            parker_rows[0]["member"].as_i64(),
            parker_rows[0]["size"].as_i64()
        ),
        (Some(0), Some(1))
    );
    let grouped = member(&list, "grouped");
    assert_eq!(
        grouped
            .iter()
            .map(|m| (
                m["member"].as_i64().unwrap(),
                m["size"].as_i64().unwrap(),
                m["lag"].as_u64().unwrap()
            ))
            .collect::<Vec<_>>(),
        [(0, 2, 0), (1, 2, 0)]
    );
    let parked_count: Vec<u64> = list["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["parked_streams"].as_u64().unwrap())
        .collect();
    assert_eq!(parked_count, [0, 0, 1, 0]);
    let only = cli(&env, &["consumer", "list", "--category", "other", "--json"])
        .await
        .ok();
    assert_eq!(only["consumers"].as_array().unwrap().len(), 1);
    assert!(only["eventodb"].is_null(), "no EventoDB URL: {only}");
    assert!(only["consumers"][0]["members"][0]["lag"].is_null());
    let down = cli(
        &[env[0], env[1], ("EVENTODB_URL", "http://127.0.0.1:1")],
        &["consumer", "list", "--json"],
    )
    .await
    .ok();
    assert_eq!(down["eventodb"]["reachable"], false, "{down}");
    assert!(
        down["eventodb"]["error"]
            .as_str()
            .is_some_and(|e| !e.contains(&token))
    );
    assert!(member(&down, "parker")[0]["lag"].is_null());
    // With nothing to count, EventoDB is still asked whether it answers.
    let empty = cli(
        &with_eventodb,
        &["consumer", "list", "--category", "none", "--json"],
    )
    .await
    .ok();
    assert_eq!(
        (&empty["eventodb"]["reachable"], &empty["consumers"]),
        (&json!(true), &json!([]))
    );
    let empty = cli(
        &[env[0], env[1], ("EVENTODB_URL", "http://127.0.0.1:1")],
        &["consumer", "list", "--category", "none", "--json"],
    )
    .await
    .ok();
    assert_eq!(empty["eventodb"]["reachable"], false, "{empty}");
    let elsewhere = cli(&[env[0]], &["consumer", "list", "--json"]).await.ok();
    assert_eq!(
        (&elsewhere["namespace"], &elsewhere["consumers"]),
        (&json!("default"), &json!([])),
        "without the token: the default namespace, none of these consumers"
    );
    let table = cli(&with_eventodb, &["consumer", "list"]).await;
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.contains("parker") && table.stdout.contains("1/2"),
        "{table:?}"
    );

    // parked.
    let parked = cli(&env, &["consumer", "parked", "--json"]).await.ok();
    let events = parked["events"].as_array().unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (
                e["consumer"].as_str().unwrap(),
                e["stream"].as_str().unwrap(),
                e["message_type"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("parker", "park-1", "Poison"), ("parker", "park-1", "Ok")]
    );
    assert!(events[0]["error"].as_str().unwrap().contains("poison"));
    assert_eq!(
        parked["streams"],
        json!([{"category": "park", "consumer": "parker", "stream": "park-1"}])
    );
    let none = cli(&env, &["consumer", "parked", "grouped", "--json"])
        .await
        .ok();
    assert_eq!(none, json!({"events": [], "streams": []}));
    // A typo is not "nothing parked".
    cli(&env, &["consumer", "parked", "grouper", "--json"])
        .await
        .failed("not_found");
    // What the Skip policy gave up on.
    let skipped = cli(&env, &["consumer", "parked", "--skipped", "--json"])
        .await
        .ok();
    let skipped_events = skipped["events"].as_array().unwrap();
    assert_eq!(skipped_events.len(), 1, "{skipped}");
    assert_eq!(
        (
            skipped_events[0]["consumer"].as_str(),
            skipped_events[0]["message_type"].as_str()
        ),
        (Some("skipper"), Some("Poison"))
    );
    assert_eq!(skipped["streams"], json!([]));
    let text = cli(&env, &["consumer", "parked", "parker", "--skipped"]).await;
    assert!(text.stdout.contains("no skipped events"), "{text:?}");

    let table = cli(&env, &["consumer", "parked"]).await;
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.contains("Poison") && table.stdout.contains("park-1 by parker"),
        "{table:?}"
    );

    // release.
    cli(&env, &["consumer", "release", "park-2", "--json"])
        .await
        .failed("not_found");
    cli(
        &env,
        &[
            "consumer",
            "release",
            "park-1",
            "--consumer",
            "grouped",
            "--json",
        ],
    )
    .await
    .failed("not_found");
    let released = cli(&env, &["consumer", "release", "park-1", "--json"])
        .await
        .ok();
    assert_eq!(
        released,
        json!({"stream": "park-1", "consumers": [{"category": "park", "consumer": "parker"}]})
    );
    // The released stream is handled by the (fixed) consumer when it runs again.
    healed.store(true, Ordering::SeqCst);
    let parker = {
        let healed = healed.clone();
        consumer_fn("park", move |message| {
            let healed = healed.load(Ordering::SeqCst);
            async move {
                if message.message_type == "Poison" && !healed {
                    return Err(HandlerError::permanent("poison"));
                }
                Ok::<_, HandlerError>(Handled::Done)
            }
        })
    };
    let workers = kit
        .workers()
        .consumer(
            parker,
            ConsumerOptions::new("parker").failure_policy(FailurePolicy::ParkStream),
        )
        .spawn()
        .await
        .unwrap();
    let admin = ConsumerAdmin::new(db.pool.clone(), server.namespace());
    eventually("the released stream is handled", LONG, || async {
        admin
            .parked_streams("park", "parker")
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    workers.shutdown().await.unwrap();
    let parked = cli(&env, &["consumer", "parked", "--json"]).await.ok();
    assert_eq!(parked, json!({"events": [], "streams": []}));

    // reset.
    let reset = cli(
        &env,
        &["consumer", "reset", "parker", "--to", "0", "--json"],
    )
    .await
    .ok();
    assert_eq!(reset["category"], "park");
    assert_eq!(reset["position"], 0);
    assert_eq!(
        reset["members"],
        json!([{"member": 0, "size": 1, "previous": last}])
    );
    let positions = admin.positions("park", "parker").await.unwrap();
    assert_eq!(
        positions
            .iter()
            .map(|p| p.global_position)
            .collect::<Vec<_>>(),
        [0]
    );
    cli(
        &env,
        &["consumer", "reset", "grouped", "--to", "0", "--json"],
    )
    .await
    .ok();
    let list = cli(&with_eventodb, &["consumer", "list", "--json"])
        .await
        .ok();
    assert_eq!(
        member(&list, "parker")[0]["lag"],
        5,
        "every park event is ahead again: {list}"
    );
    let group_lag: u64 = member(&list, "grouped")
        .iter()
        .map(|m| m["lag"].as_u64().unwrap())
        .sum();
    assert_eq!(group_lag, 5, "the members' shares add up to the category");
    assert_eq!(
        member(&list, "mirror")[0]["lag"],
        0,
        "another consumer is untouched"
    );

    // A name in two categories needs --category.
    let workers = kit
        .workers()
        .consumer(ok("other"), ConsumerOptions::new("parker"))
        .spawn()
        .await
        .unwrap();
    workers
        .consumer("parker")
        .unwrap()
        .wait_for(other, LONG)
        .await
        .unwrap();
    workers.shutdown().await.unwrap();
    let message = cli(
        &env,
        &["consumer", "reset", "parker", "--to", "1", "--json"],
    )
    .await
    .failed("ambiguous");
    assert!(
        message.contains("--category") && message.contains("other") && message.contains("park"),
        "{message}"
    );
    let reset = cli(
        &env,
        &[
            "consumer",
            "reset",
            "parker",
            "--to",
            "1",
            "--category",
            "other",
            "--json",
        ],
    )
    .await
    .ok();
    assert_eq!(reset["members"][0]["previous"], other);
    assert_eq!(
        admin.positions("other", "parker").await.unwrap()[0].global_position,
        1
    );
    assert_eq!(
        admin.positions("park", "parker").await.unwrap()[0].global_position,
        0
    );
    cli(
        &env,
        &["consumer", "reset", "nobody", "--to", "1", "--json"],
    )
    .await
    .failed("not_found");
    // Without EventoDB the end cannot be checked: any move forward needs --force.
    let forward = other.to_string();
    let message = cli(
        &env,
        &[
            "consumer",
            "reset",
            "parker",
            "--category",
            "park",
            "--to",
            &forward,
            "--json",
        ],
    )
    .await
    .failed("refused");
    assert!(
        message.contains("--force") && message.contains("skips"),
        "{message}"
    );
    assert_eq!(
        admin.positions("park", "parker").await.unwrap()[0].global_position,
        0,
        "nothing reset"
    );
    // Past every event of the namespace: the consumer would skip what is still to come.
    let head = other;
    let past = (head + 1).to_string();
    let message = cli(
        &with_eventodb,
        &[
            "consumer",
            "reset",
            "parker",
            "--category",
            "park",
            "--to",
            &past,
            "--json",
        ],
    )
    .await
    .failed("refused");
    assert!(message.contains("--force"), "{message}");
    assert_eq!(
        admin.positions("park", "parker").await.unwrap()[0].global_position,
        0,
        "nothing reset"
    );
    let at_head = head.to_string();
    cli(
        &with_eventodb,
        &[
            "consumer",
            "reset",
            "parker",
            "--category",
            "park",
            "--to",
            &at_head,
            "--json",
        ],
    )
    .await
    .ok();
    let forced = cli(
        &with_eventodb,
        &[
            "consumer",
            "reset",
            "parker",
            "--category",
            "park",
            "--to",
            &past,
            "--force",
            "--json",
        ],
    )
    .await
    .ok();
    assert_eq!(forced["position"], head + 1);
    let usage = cli(&env, &["consumer", "reset", "parker", "--to", "-3"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    let usage = cli(&env, &["consumer", "reset", "parker"]).await;
    assert_eq!(usage.code, 2, "--to is required: {usage:?}");
}

/// `consumer reset` from the CLI (another process: nothing in this one hears of it) reaches a
/// running, idle consumer within its poll interval: the events after the reset position are
/// handled again, and the consumer saves the head again.
pub async fn a_reset_reaches_a_running_consumer<DB: Backend>(db: &TestDb<DB>) {
    let server = Env::new().await;
    let kit = kit(db, &server);
    let client = kit.client().clone();
    let token = server.token().expose_secret().to_owned();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("EVENTODB_TOKEN", token.as_str()),
    ];
    let first = put(&client, "replay-1", "Ok").await;
    put(&client, "replay-2", "Ok").await;
    let last = put(&client, "replay-1", "Ok").await;
    let handled = Arc::new(std::sync::Mutex::new(Vec::new()));
    let projector = {
        let handled = handled.clone();
        consumer_fn("replay", move |message| {
            handled.lock().unwrap().push(message.global_position);
            async { Ok::<_, HandlerError>(Handled::Done) }
        })
    };
    let workers = kit
        .workers()
        .consumer(
            projector,
            ConsumerOptions::new("projector").poll_interval(Duration::from_millis(50)),
        )
        .spawn()
        .await
        .unwrap();
    let handle = workers.consumer("projector").unwrap();
    handle.wait_for(last, LONG).await.unwrap();
    let to = first.to_string();
    cli(
        &env,
        &["consumer", "reset", "projector", "--to", &to, "--json"],
    )
    .await
    .ok();
    eventually(
        "the events after the reset are handled again",
        LONG,
        || async { (handled.lock().unwrap().len() == 5).then_some(()) },
    )
    .await;
    handle.wait_for(last, LONG).await.unwrap();
    let list = cli(&env, &["consumer", "list", "--json"]).await.ok();
    let running = &member(&list, "projector")[0];
    assert_eq!(running["state"], "running", "{list}");
    assert!(running["last_seen_secs"].as_f64().unwrap() < 5.0, "{list}");
    workers.shutdown().await.unwrap();
    let list = cli(&env, &["consumer", "list", "--json"]).await.ok();
    assert_eq!(member(&list, "projector")[0]["state"], "stopped", "{list}");
    let table = cli(&env, &["consumer", "list"]).await;
    assert!(
        table.stdout.contains("STATE") && table.stdout.contains("stopped"),
        "{table:?}"
    );
    let all: Vec<i64> = handled.lock().unwrap().clone();
    assert_eq!(
        all[3..],
        all[1..3],
        "the two events after {first}, again: {all:?}"
    );
    let admin = ConsumerAdmin::new(db.pool.clone(), server.namespace());
    assert_eq!(
        admin.positions("replay", "projector").await.unwrap()[0].global_position,
        last
    );
}
