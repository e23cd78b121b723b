//! The quick start: an embedded EventoDB (or a real one when `EVENTODB_URL` and
//! `EVENTODB_TOKEN` are set), a few writes, reads, and a live subscription.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use eventodb_kit::client::{
    Client, GetCategoryOptions, GetStreamOptions, NewMessage, Subscription, Token, WriteOptions,
};
use eventodb_kit_testkit::TestServer;
use futures_util::StreamExt;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real server when the environment names one, else the embedded one on loopback.
    let (url, token, _server) = match std::env::var("EVENTODB_URL") {
        Ok(url) => (url, std::env::var("EVENTODB_TOKEN")?, None),
        Err(_) => {
            let server = TestServer::start().await?;
            (
                server.url(),
                server.default_token().to_owned(),
                Some(server),
            )
        }
    };
    let client = Client::builder(&url).token(Token::parse(&token)?).build()?;
    println!("EventoDB {} at {url}", client.sys_version().await?);

    // One account stream per run, so reruns against a real server start clean.
    let account = format!("account-{}", uuid::Uuid::new_v4().simple());

    // Subscribe first: the server pokes us for every message written to the category.
    let mut pokes = client.subscribe(&Subscription::stream(&account)).await?;

    let opened = client
        .stream_write(
            &account,
            &NewMessage::new("Opened", json!({ "owner": "ada" })),
            &WriteOptions::new().expected_version(-1),
        )
        .await?;
    println!(
        "wrote Opened at position {} (global {})",
        opened.position, opened.global_position
    );
    for amount in [10, 25, 5] {
        let written = client
            .stream_write(
                &account,
                &NewMessage::new("Deposited", json!({ "amount": amount }))
                    .metadata(json!({ "correlationStreamName": "transfer-1" })),
                &WriteOptions::new(),
            )
            .await?;
        println!("wrote Deposited({amount}) at position {}", written.position);
    }

    // A stale expected version is refused: optimistic concurrency.
    let conflict = client
        .stream_write(
            &account,
            &NewMessage::new("Closed", json!({})),
            &WriteOptions::new().expected_version(0),
        )
        .await;
    println!(
        "write with a stale expected version: {}",
        conflict.unwrap_err()
    );

    for message in client
        .stream_get(&account, &GetStreamOptions::new())
        .await?
    {
        println!(
            "  {} #{} {} {}",
            message.time.format("%H:%M:%S"),
            message.position,
            message.message_type,
            message.data
        );
    }
    let balance: i64 = client
        .category_get("account", &GetCategoryOptions::new().batch_size(1000))
        .await?
        .iter()
        .filter(|message| message.stream_name == account)
        .filter_map(|message| message.data["amount"].as_i64())
        .sum();
    println!("balance of {account}: {balance}");

    // The subscription saw each write as a poke (stream, position, global position).
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_secs(5), pokes.next()).await {
            Ok(Some(poke)) => {
                let poke = poke?;
                println!(
                    "poke: {} position {} global {}",
                    poke.stream, poke.position, poke.global_position
                );
            }
            _ => break,
        }
    }
    Ok(())
}
