//! The live progress line: rewritten in place with `\r` on a terminal, one line a second
//! otherwise (CI logs, pipes).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventodb_kit::Kit;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::AppDb;
use crate::track::Track;

/// What the progress line shows.
#[derive(Clone)]
pub(crate) struct Counters {
    /// Events the run will write.
    pub(crate) total: u64,
    /// Events committed so far.
    pub(crate) written: Arc<AtomicU64>,
    /// `UserCreated` handled by the `welcome` group.
    pub(crate) users: Arc<Track>,
    /// `OrderPlaced` handled by `sales`.
    pub(crate) orders: Arc<Track>,
    /// `UserCreated` handled per group member.
    pub(crate) members: Vec<Arc<AtomicU64>>,
}

/// The task drawing the line.
pub(crate) struct Progress {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts drawing.
    pub(crate) fn start<DB: AppDb>(kit: Kit<DB>, counters: Counters) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let terminal = std::io::stdout().is_terminal();
            let every = if terminal {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(1)
            };
            let started = Instant::now();
            loop {
                let done = tokio::select! {
                    _ = &mut stopped => true,
                    () = tokio::time::sleep(every) => false,
                };
                let line = line(&kit, &counters, started).await;
                let mut out = std::io::stdout().lock();
                if terminal {
                    let _ = write!(out, "\r{line}\x1b[K");
                    if done {
                        let _ = writeln!(out);
                    }
                } else {
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
                if done {
                    break;
                }
            }
        });
        Self { stop, task }
    }

    /// Draws the last line and stops.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn line<DB: AppDb>(kit: &Kit<DB>, counters: &Counters, started: Instant) -> String {
    let written = counters.written.load(Ordering::Relaxed);
    let sent = match kit.outbox().status().await {
        Ok(status) => written
            .saturating_sub(status.pending + status.failed)
            .to_string(),
        Err(_) => "?".to_owned(),
    };
    let members: Vec<String> = counters
        .members
        .iter()
        .map(|m| m.load(Ordering::Relaxed).to_string())
        .collect();
    let half = counters.total / 2;
    format!(
        "{:>5.1}s  written {written}/{}  sent {sent}  welcome {}/{half} ({})  sales {}/{half}",
        started.elapsed().as_secs_f64(),
        counters.total,
        counters.users.count(),
        members.join("+"),
        counters.orders.count(),
    )
}
