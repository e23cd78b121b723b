//! `eventodb-kit`: the operator CLI of eventodb-kit. It applies the migrations, shows and
//! repairs the outbox (status, retry, discard, purge) and shows and moves the consumers
//! (positions and lag, reset, parked events, release).
//!
//! The database comes from `--database-url` or `DATABASE_URL` (`postgres://...` or
//! `sqlite:PATH`), the namespace from the token (`--token` / `EVENTODB_TOKEN`; `default`
//! without one), EventoDB from `--eventodb-url` / `EVENTODB_URL` (only needed for lag, and
//! for discarding a row that may have landed).
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
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
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

/// A command line clap refused (or `--help` / `--version`, which it reports the same way).
/// With `--json` anywhere on it, stdout gets the one JSON document the README promises; the
/// text goes to stderr as clap prints it. Exit code 2, or 0 for help and version.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // Help shown because the command is incomplete is a wrong command line (exit code 2).
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if !informational && std::env::args_os().any(|arg| arg == "--json") {
        // clap's first line, without its "error: " prefix, usage and tips.
        let text = error.to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let document = serde_json::json!({ "error": { "kind": "usage", "message": message } });
        let _ = writeln!(std::io::stdout().lock(), "{document}");
    }
    let _ = error.print();
    if informational {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
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
