//! Client benchmark: `cargo bench --bench client`.
//!
//! Against the embedded server (on a runtime of its own) on loopback, each workload is run
//! by the typed client and by a bare `reqwest` loop with hand-written JSON **interleaved
//! operation by operation** (every worker alternates client and bare calls), so that the
//! load of other processes on a shared machine hits both alike:
//!
//! * `write_seq`: sequential `stream.write`s;
//! * `write_16`: 16 workers, so 16 writes in flight;
//! * `category_get_100`: `category.get` pages of 100 with a moving cursor.
//!
//! For each side: operations, p50/p99 latency, and throughput `per_s` = in-flight / mean
//! latency (what that side alone would sustain). `ratio` = client throughput / bare
//! throughput, `p50_ratio` = bare p50 / client p50 (1.0 = no overhead; goal >= 0.9). The
//! run takes about 30 s and ends with one JSON line holding every figure.

use std::time::{Duration, Instant};

use eventodb_kit::client::{Client, GetCategoryOptions, NewMessage, Token, WriteOptions};
use eventodb_kit_testkit::TestServer;
use serde_json::{Value, json};

/// How long each workload runs.
const RUN: Duration = Duration::from_secs(8);
/// Writes in flight for `write_16`.
const IN_FLIGHT: usize = 16;
/// Messages in the category read by `category_get_100`.
const CATEGORY_MESSAGES: usize = 5_000;
/// The data of every written message (about 60 bytes of JSON).
const PAYLOAD: &str = "0123456789abcdef0123456789abcdef";

/// Latencies of one side of one workload.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
}

impl Samples {
    fn mean(&self) -> Duration {
        let total: Duration = self.latencies.iter().sum();
        total / self.latencies.len().max(1) as u32
    }

    fn percentile_us(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1e6
    }

    /// Throughput with `in_flight` operations outstanding at all times.
    fn per_second(&self, in_flight: usize) -> f64 {
        in_flight as f64 / self.mean().as_secs_f64()
    }

    fn summary(&mut self, in_flight: usize) -> Value {
        json!({
            "per_s": round1(self.per_second(in_flight)),
            "p50_us": round1(self.percentile_us(0.50)),
            "p99_us": round1(self.percentile_us(0.99)),
            "ops": self.latencies.len(),
        })
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The bare loop: reqwest, hand-written JSON, replies parsed as `serde_json::Value`.
#[derive(Clone)]
struct Bare {
    http: reqwest::Client,
    rpc: String,
    auth: String,
}

impl Bare {
    async fn post(&self, body: String) -> Value {
        let response = self
            .http
            .post(&self.rpc)
            .header("content-type", "application/json")
            .header("authorization", &self.auth)
            .body(body)
            .send()
            .await
            .expect("bare request");
        assert!(response.status().is_success(), "{}", response.status());
        let reply = response.bytes().await.expect("bare body");
        serde_json::from_slice(&reply).expect("bare reply is JSON")
    }

    async fn write(&self, stream: &str, i: usize) {
        let body = format!(
            r#"["stream.write","{stream}",{{"type":"Bench","data":{{"i":{i},"payload":"{PAYLOAD}"}}}},{{}}]"#
        );
        let written = self.post(body).await;
        assert!(written["globalPosition"].is_i64());
    }

    /// Reads one page; returns the next cursor.
    async fn category_page(&self, category: &str, position: i64) -> i64 {
        let body =
            format!(r#"["category.get","{category}",{{"position":{position},"batchSize":100}}]"#);
        let rows = self.post(body).await;
        rows.as_array()
            .and_then(|rows| rows.last())
            .and_then(|row| row[4].as_i64())
            .map_or(1, |gp| gp + 1)
    }
}

async fn client_write(client: &Client, stream: &str, i: usize) {
    client
        .stream_write(
            stream,
            &NewMessage::new("Bench", json!({"i": i, "payload": PAYLOAD})),
            &WriteOptions::new(),
        )
        .await
        .expect("client write");
}

/// Reads one page; returns the next cursor.
async fn client_category_page(client: &Client, category: &str, position: i64) -> i64 {
    let rows = client
        .category_get(
            category,
            &GetCategoryOptions::new().position(position).batch_size(100),
        )
        .await
        .expect("client category.get");
    rows.last().map_or(1, |m| m.global_position + 1)
}

/// One worker alternating client and bare writes until `deadline`.
async fn write_worker(
    client: Client,
    bare: Bare,
    worker: usize,
    deadline: Instant,
) -> (Samples, Samples) {
    let (mut with_client, mut with_bare) = (Samples::default(), Samples::default());
    let (client_stream, bare_stream) = (format!("wc-{worker}"), format!("wb-{worker}"));
    let mut i = worker; // workers start on different sides
    while Instant::now() < deadline {
        let started = Instant::now();
        if i % 2 == 0 {
            client_write(&client, &client_stream, i).await;
            with_client.latencies.push(started.elapsed());
        } else {
            bare.write(&bare_stream, i).await;
            with_bare.latencies.push(started.elapsed());
        }
        i += 1;
    }
    (with_client, with_bare)
}

async fn writes(client: &Client, bare: &Bare, workers: usize) -> (Samples, Samples) {
    let deadline = Instant::now() + RUN;
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(write_worker(client.clone(), bare.clone(), w, deadline)))
        .collect();
    let (mut with_client, mut with_bare) = (Samples::default(), Samples::default());
    for task in tasks {
        let (c, b) = task.await.expect("writer task");
        with_client.latencies.extend(c.latencies);
        with_bare.latencies.extend(b.latencies);
    }
    (with_client, with_bare)
}

async fn category_pages(client: &Client, bare: &Bare) -> (Samples, Samples) {
    let deadline = Instant::now() + RUN;
    let (mut with_client, mut with_bare) = (Samples::default(), Samples::default());
    let (mut client_cursor, mut bare_cursor) = (1, 1);
    let mut i = 0usize;
    while Instant::now() < deadline {
        let started = Instant::now();
        if i % 2 == 0 {
            client_cursor = client_category_page(client, "reads", client_cursor).await;
            with_client.latencies.push(started.elapsed());
        } else {
            bare_cursor = bare.category_page("reads", bare_cursor).await;
            with_bare.latencies.push(started.elapsed());
        }
        i += 1;
    }
    (with_client, with_bare)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let started = Instant::now();
    let server = TestServer::builder()
        .start_dedicated()
        .await
        .expect("start the embedded server");
    let admin = Client::builder(server.url())
        .token(Token::parse(server.default_token()).expect("default token"))
        .build()
        .expect("client");
    let created = admin
        .ns_create("bench", &Default::default())
        .await
        .expect("ns.create");
    let client = admin.with_token(created.token.clone());
    let bare = Bare {
        http: reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .expect("reqwest"),
        rpc: format!("{}/rpc", server.url()),
        auth: format!("Bearer {}", created.token.expose_secret()),
    };
    // The category read by `category_get_100`, in 50 streams; also warms both sides.
    for i in 0..CATEGORY_MESSAGES {
        let stream = format!("reads-{}", i % 50);
        if i % 2 == 0 {
            client_write(&client, &stream, i).await;
        } else {
            bare.write(&stream, i).await;
        }
    }

    let mut figures = serde_json::Map::new();
    for (name, in_flight) in [
        ("write_seq", 1),
        ("write_16", IN_FLIGHT),
        ("category_get_100", 1),
    ] {
        let (mut with_client, mut with_bare) = match name {
            "category_get_100" => category_pages(&client, &bare).await,
            _ => writes(&client, &bare, in_flight).await,
        };
        let ratio = with_client.per_second(in_flight) / with_bare.per_second(in_flight);
        let (c, b) = (with_client.summary(in_flight), with_bare.summary(in_flight));
        let p50_ratio = b["p50_us"].as_f64().unwrap_or(0.0) / c["p50_us"].as_f64().unwrap_or(1.0);
        eprintln!(
            "{name:<17} client {:>9.1}/s p50 {:>7.1} us p99 {:>7.1} us | bare {:>9.1}/s p50 {:>7.1} us p99 {:>7.1} us | ratio {ratio:.3} p50 ratio {p50_ratio:.3}",
            c["per_s"].as_f64().unwrap_or(0.0),
            c["p50_us"].as_f64().unwrap_or(0.0),
            c["p99_us"].as_f64().unwrap_or(0.0),
            b["per_s"].as_f64().unwrap_or(0.0),
            b["p50_us"].as_f64().unwrap_or(0.0),
            b["p99_us"].as_f64().unwrap_or(0.0),
        );
        figures.insert(
            name.to_owned(),
            json!({
                "client": c,
                "bare": b,
                "ratio": (ratio * 1000.0).round() / 1000.0,
                "p50_ratio": (p50_ratio * 1000.0).round() / 1000.0,
            }),
        );
    }
    figures.insert(
        "seconds".to_owned(),
        json!(round1(started.elapsed().as_secs_f64())),
    );
    server.shutdown().await;
    println!("{}", Value::Object(figures));
}
