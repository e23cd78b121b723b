//! Small helpers for the conformance cases.

use std::time::Duration;

use eventodb_kit::client::{Client, NewMessage, Poke, PokeStream, WriteOptions, WritePosition};
use futures_util::StreamExt as _;
use serde_json::Value;

/// How long a test waits for a poke before failing.
pub(crate) const POKE_WAIT: Duration = Duration::from_secs(5);

/// Writes one message and returns where it landed.
pub(crate) async fn write(
    client: &Client,
    stream: &str,
    message_type: &str,
    data: Value,
) -> WritePosition {
    client
        .stream_write(
            stream,
            &NewMessage::new(message_type, data),
            &WriteOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("stream.write {stream}: {e}"))
}

/// Writes `n` messages `{"i": 0..n}` of type `T` and returns their positions.
pub(crate) async fn write_n(client: &Client, stream: &str, n: usize) -> Vec<WritePosition> {
    let mut written = Vec::with_capacity(n);
    for i in 0..n {
        written.push(write(client, stream, "T", serde_json::json!({ "i": i })).await);
    }
    written
}

/// The next poke, failing the test after [`POKE_WAIT`].
pub(crate) async fn next_poke(pokes: &mut PokeStream) -> Poke {
    match tokio::time::timeout(POKE_WAIT, pokes.next()).await {
        Ok(Some(Ok(poke))) => poke,
        Ok(Some(Err(e))) => panic!("subscription error: {e}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no poke within {POKE_WAIT:?}"),
    }
}

/// Pokes arriving within `quiet` of each other, until the first silence.
pub(crate) async fn drain_pokes(pokes: &mut PokeStream, quiet: Duration) -> Vec<Poke> {
    let mut got = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(quiet, pokes.next()).await {
        got.push(item.unwrap_or_else(|e| panic!("subscription error: {e}")));
    }
    got
}

/// Waits until the server has registered `count` live subscriptions: exactly on the
/// embedded server, by a pause on a real one (which cannot be asked).
pub(crate) async fn wait_registered(env: &eventodb_kit_tests::Env, count: usize) {
    match env.server() {
        Some(server) => {
            let deadline = tokio::time::Instant::now() + POKE_WAIT;
            while server.subscriber_count() < count {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of {count} subscriptions registered",
                    server.subscriber_count()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        None => tokio::time::sleep(Duration::from_millis(300)).await,
    }
}
