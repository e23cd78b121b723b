//! [`Workers`]: one builder that starts the outbox sender and the consumers under one
//! cancellation token, and [`RunningWorkers`] to watch and stop them.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer::runtime::Runtime;
use crate::consumer::{Consumer, ConsumerHandle, ConsumerOptions, Hub, HubOptions};
use crate::error::{Error, Result};
use crate::kit::Kit;
use crate::outbox::{Backend, Sender, SenderOptions};

/// A consumer waiting for [`Workers::spawn`]: loads its state and returns its handle and
/// its task.
type Pending<DB> = Box<
    dyn FnOnce(Kit<DB>, Option<Hub>) -> BoxFuture<'static, Result<(ConsumerHandle, Started)>>
        + Send,
>;

/// A consumer's task, not yet spawned.
type Started = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, Result<()>> + Send>;

/// The background work to start; from [`Kit::workers`].
///
/// # Examples
/// ```no_run
/// use eventodb_kit::Kit;
/// use eventodb_kit::consumer::{consumer_fn, ConsumerOptions, Handled, HandlerError};
/// use eventodb_kit::outbox::SenderOptions;
///
/// # async fn run(kit: Kit<sqlx::Sqlite>) -> eventodb_kit::Result<()> {
/// let workers = kit
///     .workers()
///     .outbox_sender(SenderOptions::default())
///     .consumer(
///         consumer_fn("user", |_message| async { Ok::<_, HandlerError>(Handled::Done) }),
///         ConsumerOptions::new("welcome"),
///     )
///     .spawn()
///     .await?;
/// // ...
/// workers.shutdown().await?; // finishes in-flight work, saves positions
/// # Ok(()) }
/// ```
#[must_use = "call .spawn() to start the workers"]
pub struct Workers<DB: Backend> {
    kit: Kit<DB>,
    sender: Option<SenderOptions>,
    consumers: Vec<(String, Pending<DB>)>,
    hub: Option<HubOptions>,
    shutdown_timeout: Duration,
}

impl<DB: Backend> fmt::Debug for Workers<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("outbox_sender", &self.sender)
            .field(
                "consumers",
                &self
                    .consumers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("live_wakeups", &self.hub)
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> Workers<DB> {
    /// Nothing chosen yet: live wake-ups on with default options, 30 s shutdown deadline.
    pub(crate) fn new(kit: Kit<DB>) -> Self {
        Self {
            kit,
            sender: None,
            consumers: Vec::new(),
            hub: Some(HubOptions::default()),
            shutdown_timeout: Duration::from_secs(30),
        }
    }

    /// Runs the outbox sender.
    pub fn outbox_sender(mut self, options: SenderOptions) -> Self {
        self.sender = Some(options);
        self
    }

    /// Runs a consumer.
    pub fn consumer<C: Consumer<DB>>(mut self, consumer: C, options: ConsumerOptions) -> Self {
        let name = options.name().to_owned();
        let pending: Pending<DB> = Box::new(move |kit: Kit<DB>, hub: Option<Hub>| {
            Box::pin(async move {
                let runtime = Runtime::start(
                    consumer,
                    options,
                    kit.client().clone(),
                    kit.pool().clone(),
                    kit.namespace().to_owned(),
                    hub.as_ref(),
                )
                .await?;
                let handle = ConsumerHandle {
                    shared: runtime.shared(),
                };
                let task: Started = Box::new(move |cancel: CancellationToken| {
                    Box::pin(runtime.run(cancel)) as BoxFuture<'static, Result<()>>
                });
                Ok((handle, task))
            }) as BoxFuture<'static, Result<(ConsumerHandle, Started)>>
        });
        self.consumers.push((name, pending));
        self
    }

    /// Options of the shared SSE subscription that wakes consumers (on by default).
    pub fn live_wakeups(mut self, options: HubOptions) -> Self {
        self.hub = Some(options);
        self
    }

    /// No SSE subscription: consumers only poll.
    pub fn without_live_wakeups(mut self) -> Self {
        self.hub = None;
        self
    }

    /// How long [`RunningWorkers::shutdown`] waits for the consumers (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Loads every consumer's state, then starts everything chosen.
    ///
    /// A PostgreSQL database that cannot be reached yet (refused, reset, starting up) is
    /// waited for: everything starts, the consumers read their state and the sender claims
    /// rows once it answers.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad consumer option; [`Error::NotMigrated`] when the
    /// kit's tables are missing (run [`migrate`](crate::migrate()) first); [`Error::Database`]
    /// when a consumer's state cannot be read, or the sender cannot start, for a reason
    /// waiting cannot mend (a wrong password, a missing database). Nothing runs then.
    pub async fn spawn(self) -> Result<RunningWorkers> {
        let hub = match (&self.hub, self.consumers.is_empty()) {
            (Some(options), false) => Some(Hub::shared(self.kit.client(), *options)),
            _ => None,
        };
        let mut prepared = Vec::with_capacity(self.consumers.len());
        for (_, pending) in self.consumers {
            match pending(self.kit.clone(), hub.clone()).await {
                Ok(ready) => prepared.push(ready),
                Err(error) => {
                    abandon(prepared).await;
                    return Err(crate::error::or_not_migrated(error));
                }
            }
        }
        for (i, (a, _)) in prepared.iter().enumerate() {
            if prepared[..i].iter().any(|(b, _)| {
                a.name() == b.name() && a.category() == b.category() && a.group() == b.group()
            }) {
                let error = Error::InvalidArgument(format!(
                    "consumer {:?} of category {:?} is added twice",
                    a.name(),
                    a.category()
                ));
                abandon(prepared).await;
                return Err(error);
            }
        }
        let sender = match self.sender {
            Some(options) => match self.kit.outbox().spawn_sender(options).await {
                Ok(sender) => Some(sender),
                Err(error) => {
                    abandon(prepared).await;
                    return Err(error);
                }
            },
            None => None,
        };
        let cancel = CancellationToken::new();
        let (failures_tx, failures) = mpsc::unbounded_channel();
        let mut consumers = Vec::with_capacity(prepared.len());
        let mut tasks = Vec::with_capacity(prepared.len());
        for (handle, task) in prepared {
            let failures_tx = failures_tx.clone();
            let future = task(cancel.child_token());
            let name = handle.name().to_owned();
            tasks.push((
                name,
                tokio::spawn(async move {
                    if let Err(error) = future.await {
                        let _ = failures_tx.send(error);
                    }
                }),
            ));
            consumers.push(handle);
        }
        Ok(RunningWorkers {
            cancel,
            sender,
            consumers,
            tasks,
            failures,
            shutdown_timeout: self.shutdown_timeout,
            hub,
        })
    }
}

/// Ends consumers that were prepared but will not run (a later one, or the sender, failed
/// to start): each task runs already cancelled, which frees the member it took, so that the
/// next start does not stand by behind this one's claim until it lapses.
async fn abandon(prepared: Vec<(ConsumerHandle, Started)>) {
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    for (_, task) in prepared {
        let _ = task(cancelled.clone()).await;
    }
}

/// Workers started by [`Workers::spawn`]. Dropping this stops them without waiting.
#[must_use = "dropping RunningWorkers stops the workers at once: keep it, and end with .shutdown().await"]
pub struct RunningWorkers {
    cancel: CancellationToken,
    sender: Option<Sender>,
    consumers: Vec<ConsumerHandle>,
    tasks: Vec<(String, JoinHandle<()>)>,
    failures: mpsc::UnboundedReceiver<Error>,
    shutdown_timeout: Duration,
    hub: Option<Hub>,
}

impl fmt::Debug for RunningWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningWorkers")
            .field("sender", &self.sender)
            .field("consumers", &self.consumers)
            .finish_non_exhaustive()
    }
}

impl RunningWorkers {
    /// The running consumer named `name` (the first, for group members of one name).
    pub fn consumer(&self, name: &str) -> Option<&ConsumerHandle> {
        self.consumers.iter().find(|handle| handle.name() == name)
    }

    /// Every consumer, in the order they were added.
    pub fn consumers(&self) -> &[ConsumerHandle] {
        &self.consumers
    }

    /// How many times the live wake-up subscription was (re)established (0 when off).
    pub fn live_connections(&self) -> u64 {
        self.hub.as_ref().map_or(0, Hub::connections)
    }

    /// Pokes received by the live wake-up subscription.
    pub fn live_pokes(&self) -> u64 {
        self.hub.as_ref().map_or(0, Hub::pokes)
    }

    /// Waits until a consumer stops on an error (e.g.
    /// [`Error::ConsumerStopped`]) and returns it; `None` once every consumer has ended
    /// without one. The other workers keep running.
    ///
    /// # Cancel safety
    /// Cancel-safe: an error not returned stays for the next call or for
    /// [`RunningWorkers::shutdown`].
    pub async fn next_failure(&mut self) -> Option<Error> {
        self.failures.recv().await
    }

    /// Stops every worker: the consumers finish the message in hand and save their
    /// positions, the sender finishes in-flight sends.
    ///
    /// # Errors
    /// The first error: a consumer's failure not yet taken by
    /// [`RunningWorkers::next_failure`], [`Error::ShutdownTimeout`], [`Error::WorkerDied`].
    pub async fn shutdown(mut self) -> Result<()> {
        self.cancel.cancel();
        let mut first: Option<Error> = None;
        if let Some(sender) = self.sender.take()
            && let Err(error) = sender.shutdown().await
        {
            first.get_or_insert(error);
        }
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        for (name, task) in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first.get_or_insert(Error::WorkerDied {
                        worker: format!("consumer {name}"),
                        message: error.to_string(),
                    });
                }
                Err(_) => {
                    abort.abort();
                    first.get_or_insert(Error::ShutdownTimeout {
                        after: self.shutdown_timeout,
                    });
                }
            }
        }
        if let Ok(error) = self.failures.try_recv() {
            return Err(error);
        }
        first.map_or(Ok(()), Err)
    }

    /// Stops every consumer at once, as a crash would: nothing in hand is finished or
    /// saved. For tests of what a restarted consumer does.
    #[doc(hidden)]
    pub fn kill(mut self) {
        for (_, task) in std::mem::take(&mut self.tasks) {
            task.abort();
        }
        if let Some(sender) = self.sender.take() {
            sender.kill();
        }
        // The consumers' token is left as it is (dropping `self` cancels only this new
        // one): an aborted task that is running on another thread goes on until its next
        // await, and if it saw the token cancelled there it would stop gracefully,
        // committing the events it handled and saving its position, which a crash does
        // not.
        self.cancel = CancellationToken::new();
    }
}

impl Drop for RunningWorkers {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
