//! Client benchmark: `cargo bench --bench client`.
//!
//! Against the embedded server (on its own runtime) on loopback, the same workloads are run
//! by the typed client and by a bare `reqwest` loop with hand-written JSON, alternating in
//! rounds so that machine noise hits both alike:
//!
//! * `write_seq`: sequential `stream.write`s (writes/s, p50/p99 latency);
//! * `write_16`: 16 writes in flight (writes/s, p50/p99 latency);
//! * `category_get_100`: `category.get` pages of 100 with a moving cursor (batches/s,
//!   p50/p99 latency).
//!
//! `ratio` is client throughput / bare throughput (1.0 = no overhead; the goal is >= 0.9).
//! The run is bounded (about 30 s) and ends with one JSON line holding every figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eventodb_kit::client::{Client, GetCategoryOptions, NewMessage, Token, WriteOptions};
use eventodb_kit_testkit::TestServer;
use serde_json::{Value, json};

/// Time each (workload, implementation, round) runs for.
const SLICE: Duration = Duration::from_millis(1500);
/// Rounds per workload; each round runs bare then client, or client then bare.
const ROUNDS: usize = 3;
/// Writes in flight for `write_16`.
const IN_FLIGHT: usize = 16;
/// Messages in the category read by `category_get_100`.
const CATEGORY_MESSAGES: usize = 5_000;

#[derive(Default)]
struct Samples {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Samples {
    fn add(&mut self, other: Samples) {
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_us(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1e6
    }

    fn summary(&mut self) -> Value {
        json!({
            "per_s": round1(self.per_second()),
            "p50_us": round1(self.percentile_us(0.50)),
            "p99_us": round1(self.percentile_us(0.99)),
            "ops": self.ops,
        })
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The bare loop: reqwest, hand-written JSON, no typed decoding.
#[derive(Clone)]
struct Bare {
    http: reqwest::Client,
    rpc: String,
    auth: String,
}

impl Bare {
    /// Sends `body`, parses the reply as a `serde_json::Value`.
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
            r#"["stream.write","{stream}",{{"type":"Bench","data":{{"i":{i},"payload":"0123456789abcdef0123456789abcdef"}}}},{{}}]"#
        );
        let written = self.post(body).await;
        assert!(written["globalPosition"].is_i64());
    }

    async fn category_page(&self, category: &str, position: i64) -> i64 {
        let body =
            format!(r#"["category.get","{category}",{{"position":{position},"batchSize":100}}]"#);
        let rows = self.post(body).await;
        rows.as_array()
            .and_then(|rows| rows.last())
            .and_then(|row| row[4].as_i64())
            .map_or(0, |gp| gp + 1)
    }
}

fn client_message(i: usize) -> NewMessage {
    NewMessage::new(
        "Bench",
        json!({"i": i, "payload": "0123456789abcdef0123456789abcdef"}),
    )
}

/// Sequential writes for one slice.
async fn writes_seq(run: &Impl, stream: &str) -> Samples {
    let mut samples = Samples::default();
    let started = Instant::now();
    let options = WriteOptions::new();
    while started.elapsed() < SLICE {
        let t = Instant::now();
        match run {
            Impl::Client(client) => {
                client
                    .stream_write(stream, &client_message(samples.ops), &options)
                    .await
                    .expect("client write");
            }
            Impl::Bare(bare) => bare.write(stream, samples.ops).await,
        }
        samples.latencies.push(t.elapsed());
        samples.ops += 1;
    }
    samples.elapsed = started.elapsed();
    samples
}

/// `IN_FLIGHT` writers for one slice, each to its own stream.
async fn writes_in_flight(run: &Impl, prefix: &str) -> Samples {
    let started = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|w| {
            let run = run.clone();
            let stream = format!("{prefix}-{w}");
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let options = WriteOptions::new();
                while started.elapsed() < SLICE {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    match &run {
                        Impl::Client(client) => {
                            client
                                .stream_write(&stream, &client_message(i), &options)
                                .await
                                .expect("client write");
                        }
                        Impl::Bare(bare) => bare.write(&stream, i).await,
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut samples = Samples::default();
    for task in tasks {
        samples.latencies.extend(task.await.expect("writer task"));
    }
    samples.elapsed = started.elapsed();
    samples.ops = samples.latencies.len();
    samples
}

/// `category.get` pages of 100 for one slice, wrapping around at the end.
async fn category_pages(run: &Impl, category: &str) -> Samples {
    let mut samples = Samples::default();
    let started = Instant::now();
    let mut position = 1;
    while started.elapsed() < SLICE {
        let t = Instant::now();
        let next = match run {
            Impl::Client(client) => {
                let rows = client
                    .category_get(
                        category,
                        &GetCategoryOptions::new().position(position).batch_size(100),
                    )
                    .await
                    .expect("client category.get");
                rows.last().map_or(0, |m| m.global_position + 1)
            }
            Impl::Bare(bare) => bare.category_page(category, position).await,
        };
        samples.latencies.push(t.elapsed());
        samples.ops += 1;
        position = if next == 0 { 1 } else { next };
    }
    samples.elapsed = started.elapsed();
    samples
}

#[derive(Clone)]
enum Impl {
    Client(Client),
    Bare(Bare),
}

#[derive(Clone, Copy)]
enum Workload {
    WriteSeq,
    Write16,
    CategoryGet100,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::WriteSeq => "write_seq",
            Workload::Write16 => "write_16",
            Workload::CategoryGet100 => "category_get_100",
        }
    }

    async fn run(self, run: &Impl, tag: &str, round: usize) -> Samples {
        match self {
            Workload::WriteSeq => writes_seq(run, &format!("seq{tag}-{round}")).await,
            Workload::Write16 => writes_in_flight(run, &format!("par{tag}{round}")).await,
            Workload::CategoryGet100 => category_pages(run, "reads").await,
        }
    }
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
    // The category read by `category_get_100`, in 50 streams.
    for i in 0..CATEGORY_MESSAGES {
        client
            .stream_write(
                &format!("reads-{}", i % 50),
                &client_message(i),
                &WriteOptions::new(),
            )
            .await
            .expect("seed write");
    }
    let client = Impl::Client(client);
    let bare = Impl::Bare(bare);
    // Warm both connection pools and code paths.
    for run in [&client, &bare] {
        Workload::WriteSeq.run(run, "warm", 0).await;
    }

    let mut figures = serde_json::Map::new();
    for workload in [
        Workload::WriteSeq,
        Workload::Write16,
        Workload::CategoryGet100,
    ] {
        let (mut with_client, mut with_bare) = (Samples::default(), Samples::default());
        for round in 0..ROUNDS {
            // Alternate who goes first.
            let order: [(&Impl, bool); 2] = if round % 2 == 0 {
                [(&bare, false), (&client, true)]
            } else {
                [(&client, true), (&bare, false)]
            };
            for (run, is_client) in order {
                let tag = if is_client { "c" } else { "b" };
                let samples = workload.run(run, tag, round).await;
                if is_client {
                    with_client.add(samples);
                } else {
                    with_bare.add(samples);
                }
            }
        }
        let ratio = with_client.per_second() / with_bare.per_second();
        let (c, b) = (with_client.summary(), with_bare.summary());
        eprintln!(
            "{:<17} client {:>9.1}/s p50 {:>7.1} us p99 {:>7.1} us | bare {:>9.1}/s p50 {:>7.1} us p99 {:>7.1} us | ratio {:.3}",
            workload.name(),
            c["per_s"].as_f64().unwrap_or(0.0),
            c["p50_us"].as_f64().unwrap_or(0.0),
            c["p99_us"].as_f64().unwrap_or(0.0),
            b["per_s"].as_f64().unwrap_or(0.0),
            b["p50_us"].as_f64().unwrap_or(0.0),
            b["p99_us"].as_f64().unwrap_or(0.0),
            ratio
        );
        figures.insert(
            workload.name().to_owned(),
            json!({"client": c, "bare": b, "ratio": (ratio * 1000.0).round() / 1000.0}),
        );
    }
    figures.insert(
        "seconds".to_owned(),
        json!(round1(started.elapsed().as_secs_f64())),
    );
    server.shutdown().await;
    println!("{}", Value::Object(figures));
}
