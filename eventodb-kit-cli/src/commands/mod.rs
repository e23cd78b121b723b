//! One module per area; [`run`] dispatches.

mod consumer;
mod migrate;
mod outbox;

use crate::args::{Cli, Command};
use crate::connect::{Connected, connect};
use crate::error::CliError;
use crate::output::Rendered;

/// Runs `$body` with `$pool` bound to the open pool, whichever the backend.
macro_rules! with_pool {
    ($connected:expr, |$pool:ident| $body:expr) => {
        match &$connected.database {
            $crate::connect::Database::Postgres($pool) => $body,
            $crate::connect::Database::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs the command line.
pub(crate) async fn run(cli: &Cli) -> Result<Rendered, CliError> {
    let create = matches!(&cli.command, Command::Migrate(args) if args.down.is_none());
    let connected = connect(&cli.connection, create).await?;
    let result = match &cli.command {
        Command::Migrate(args) => migrate::run(&connected, args).await,
        Command::Outbox(command) => outbox::run(&connected, command).await,
        Command::Consumer(command) => consumer::run(&connected, command).await,
    };
    // What is not found may be in another namespace: a forgotten token reads `default`.
    let result = result.map_err(|error| match error {
        CliError::NotFound(_) => {
            let namespace = connected.namespace();
            let note = if connected.client.namespace().is_some() {
                format!("looked in namespace {namespace:?}, the token's")
            } else {
                format!("looked in namespace {namespace:?}: no token was given (--token / EVENTODB_TOKEN)")
            };
            error.noting(&note)
        }
        other => other,
    });
    close(connected).await;
    result
}

async fn close(connected: Connected) {
    with_pool!(connected, |pool| pool.close().await);
}

/// Maps an eventodb-kit error for the connected database.
pub(crate) fn kit_error(connected: &Connected) -> impl Fn(eventodb_kit::Error) -> CliError + '_ {
    move |error| CliError::from_kit(error, &connected.target)
}
