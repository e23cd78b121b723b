//! Runs the embedded EventoDB-compatible server on a port.
//!
//! `eventodb-testkit [--port 8080] [--test-mode] [--token ns_...] [--nanos] [--pebble]`
//! prints the URL and the `default` namespace token, then serves until Ctrl-C.

use std::process::ExitCode;

use eventodb_kit_testkit::{Backend, TestServer, TimePrecision};

const USAGE: &str =
    "usage: eventodb-testkit [--port N] [--test-mode] [--token ns_...] [--nanos] [--pebble]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut builder = TestServer::builder().port(8080);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => match args.next().and_then(|p| p.parse::<u16>().ok()) {
                Some(port) => builder = builder.port(port),
                None => return usage("--port needs a number"),
            },
            "--test-mode" => builder = builder.test_mode(true),
            "--token" => match args.next() {
                Some(token) => builder = builder.token(token),
                None => return usage("--token needs a value"),
            },
            "--nanos" => builder = builder.time_precision(TimePrecision::Nanoseconds),
            "--pebble" => builder = builder.backend(Backend::Pebble),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let server = match builder.start().await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("eventodb-testkit: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("EventoDB testkit listening on {}", server.url());
    println!("DEFAULT NAMESPACE TOKEN: {}", server.default_token());
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("eventodb-testkit: cannot wait for Ctrl-C: {error}");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("eventodb-testkit: {problem}\n{USAGE}");
    ExitCode::from(2)
}
