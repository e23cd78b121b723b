//! `eventodb-kit`: the operator CLI of eventodb-kit. It applies the migrations, shows and
//! repairs the outbox (status, retry, discard, purge) and shows and moves the consumers
//! (positions and lag, reset, parked events, release).
//!
//! The database comes from `--database-url` or `DATABASE_URL` (`postgres://...` or
//! `sqlite:PATH`), the namespace from the token (`--token` / `EVENTODB_TOKEN`; `default`
//! without one), EventoDB from `--eventodb-url` / `EVENTODB_URL` (only needed for lag).
//! `--json` prints one JSON document per command. Exit codes: 0 done, 1 the command failed,
//! 2 the command line is wrong.
//!
//! ```text
//! $ eventodb-kit migrate
//! $ eventodb-kit outbox status
//! $ eventodb-kit outbox retry account-7 --without-expected-version
//! $ eventodb-kit consumer list --json
//! $ eventodb-kit consumer reset projector --to 0
//! ```

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

mod args;
mod commands;
mod connect;
mod error;
mod output;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(&cli));
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(rendered) => {
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout.write_all(rendered.print(cli.json).as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            if cli.json {
                let _ = stdout.write_all(output::error_json(&error).as_bytes());
            }
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, and only when `RUST_LOG` asks for them.
fn init_tracing() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}
