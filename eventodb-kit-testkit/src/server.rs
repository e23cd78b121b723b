//! The server itself: builder, accept loop, restart and shutdown.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::Backend;
use crate::faults::{Faults, RequestStats};
use crate::state::{Config, Shared};
use crate::store::Store;
use crate::time::TimePrecision;
use crate::token::{generate_token, hash_token, parse_token};

/// The version `sys.version` and `/version` report.
pub const VERSION: &str = "0.7.0";

/// Default limit on the request line plus headers: fasthttp's 4 KiB read buffer.
pub const DEFAULT_HEADER_LIMIT: usize = 4096;

/// Default idle keep-alive timeout: the real server's `IdleTimeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Default time a request body has to arrive in full: the real server's `ReadTimeout`,
/// after which it answers `408`.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default request-body limit: fasthttp's `MaxRequestBodySize` on the real server.
pub const DEFAULT_BODY_LIMIT: usize = 100 * 1024 * 1024;

/// Errors starting or restarting a [`TestServer`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The `default` namespace token given to the builder is unusable.
    #[error("invalid default token: {0}")]
    InvalidToken(String),
}

/// Options for [`TestServer`]; start with [`TestServer::builder`].
#[derive(Clone)]
#[must_use]
pub struct TestServerBuilder {
    backend: Backend,
    test_mode: bool,
    token: Option<String>,
    port: u16,
    body_limit: usize,
    header_limit: usize,
    precision: TimePrecision,
    poke_buffer: Option<usize>,
    idle_timeout: Option<Duration>,
    read_timeout: Duration,
    subscribe_gap: Option<Duration>,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            backend: Backend::Sqlite,
            test_mode: false,
            token: None,
            port: 0,
            body_limit: DEFAULT_BODY_LIMIT,
            header_limit: DEFAULT_HEADER_LIMIT,
            precision: TimePrecision::Seconds,
            poke_buffer: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            read_timeout: DEFAULT_READ_TIMEOUT,
            subscribe_gap: None,
        }
    }
}

impl TestServerBuilder {
    /// Whose rules apply where the real backends differ (default: SQLite, test mode's).
    /// [`Backend::Pebble`] also switches message times to nanoseconds; call
    /// [`time_precision`](Self::time_precision) afterwards to override.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        if backend == Backend::Pebble {
            self.precision = TimePrecision::Nanoseconds;
        }
        self
    }

    /// Test mode (`--test-mode`): missing or bad tokens act on `default`, any suffix passes,
    /// and a token for an unknown namespace passes auth and then fails with `BACKEND_ERROR`.
    pub fn test_mode(mut self, on: bool) -> Self {
        self.test_mode = on;
        self
    }

    /// The token of the `default` namespace (`--token`); it must be a valid token for
    /// `default`. Without it, a random one is generated.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The loopback port to listen on; `0` (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Bodies larger than this get `400 Error when parsing request` (default 100 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// A request line plus headers larger than this gets `431 Too big request header`
    /// (default 4 KiB, as on the real server).
    pub fn header_limit(mut self, bytes: usize) -> Self {
        self.header_limit = bytes;
        self
    }

    /// Message time precision: whole seconds (SQLite, the default) or nanoseconds (Pebble).
    pub fn time_precision(mut self, precision: TimePrecision) -> Self {
        self.precision = precision;
        self
    }

    /// Emulates the real server's per-subscriber channel: at most `n` undelivered pokes,
    /// later ones dropped silently (the real server uses 100). Off by default.
    pub fn poke_buffer(mut self, n: usize) -> Self {
        self.poke_buffer = Some(n);
        self
    }

    /// Closes a connection that waits this long for the next request (default 120 s, like
    /// the real server's idle timeout); `None` never closes idle connections.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Answers `408 Request Timeout` (plain text, connection closed) to a request whose
    /// body has not arrived in full this long after its headers (default 30 s, like the real
    /// server's read timeout).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Emulates the real server's catch-up/subscribe race (protocol §6.6): a subscription
    /// starts receiving live pokes only this long after its catch-up query, so writes in
    /// between get no poke. Off by default (no poke is lost between catch-up and live).
    pub fn subscribe_gap(mut self, gap: Duration) -> Self {
        self.subscribe_gap = Some(gap);
        self
    }

    /// Binds `127.0.0.1:<port>` and starts serving.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token that does not parse or is not for `default`;
    /// [`Error::Bind`] when the port cannot be bound.
    pub async fn start(self) -> Result<TestServer, Error> {
        let token = match self.token {
            Some(t) => {
                let ns = parse_token(&t).map_err(Error::InvalidToken)?;
                if ns != "default" {
                    return Err(Error::InvalidToken(format!(
                        "provided token is for namespace '{ns}', expected 'default'"
                    )));
                }
                t
            }
            None => generate_token("default"),
        };
        let mut store = Store::new(self.precision);
        store.backend = self.backend;
        store
            .create_namespace(
                "default",
                hash_token(&token),
                "Default namespace".to_owned(),
            )
            .map_err(|e| Error::InvalidToken(e.to_string()))?;
        let config = Config {
            backend: self.backend,
            test_mode: self.test_mode,
            body_limit: self.body_limit,
            header_limit: self.header_limit,
            poke_buffer: self.poke_buffer,
            idle_timeout: self.idle_timeout,
            read_timeout: self.read_timeout,
            subscribe_gap: self.subscribe_gap,
            version: VERSION.to_owned(),
        };
        let shared = Arc::new(Shared::new(config, store));
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            source,
        })?;
        let runtime = tokio::runtime::Handle::current();
        let generation = Generation::spawn(listener, shared.clone(), &runtime);
        tracing::debug!(%addr, test_mode = self.test_mode, "test server started");
        Ok(TestServer {
            shared,
            addr,
            token,
            generation: Mutex::new(Some(generation)),
            runtime,
            _dedicated: None,
        })
    }

    /// Like [`start`](Self::start), but the server runs on a runtime of its own (two worker
    /// threads) instead of the caller's. Use it for a server shared by tests that each have
    /// their own runtime (e.g. in a `static`), or to keep the server's work off a
    /// benchmark's runtime. The runtime stops when the `TestServer` is dropped.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_dedicated(self) -> Result<TestServer, Error> {
        let failed = |message: &str| Error::Bind {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            source: std::io::Error::other(message.to_owned()),
        };
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let port = self.port;
        std::thread::Builder::new()
            .name("eventodb-testkit".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(source) => {
                        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                        let _ = started_tx.send(Err(Error::Bind { addr, source }));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let _ = started_tx.send(self.start().await);
                    let _ = stop_rx.await;
                });
            })
            .map_err(|_| failed("cannot spawn the test server thread"))?;
        let mut server = started_rx
            .await
            .map_err(|_| failed("the test server runtime stopped"))??;
        server._dedicated = Some(stop_tx);
        Ok(server)
    }
}

/// An in-memory EventoDB-compatible server on loopback.
///
/// Dropping it stops serving (open connections are closed).
///
/// ```no_run
/// # async fn demo() -> Result<(), eventodb_kit_testkit::Error> {
/// let server = eventodb_kit_testkit::TestServer::start().await?;
/// println!("{} with token {}", server.url(), server.default_token());
/// server.restart().await?; // same port, data kept, subscriptions lost
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    token: String,
    generation: Mutex<Option<Generation>>,
    /// Where the accept loop and connections run.
    runtime: tokio::runtime::Handle,
    /// Dropping it stops a runtime of our own (see `start_dedicated`).
    _dedicated: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Shows whether a token was given, never the token.
impl std::fmt::Debug for TestServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServerBuilder")
            .field("backend", &self.backend)
            .field("test_mode", &self.test_mode)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("port", &self.port)
            .field("body_limit", &self.body_limit)
            .field("header_limit", &self.header_limit)
            .field("precision", &self.precision)
            .field("poke_buffer", &self.poke_buffer)
            .field("idle_timeout", &self.idle_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("subscribe_gap", &self.subscribe_gap)
            .finish()
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server in normal (auth) mode on a free loopback port.
    ///
    /// # Errors
    /// [`Error::Bind`] when no port can be bound.
    pub async fn start() -> Result<TestServer, Error> {
        TestServerBuilder::default().start().await
    }

    /// Options: test mode, token, port, limits.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token of the `default` namespace.
    pub fn default_token(&self) -> &str {
        &self.token
    }

    /// Fault injection.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// Requests received so far, by method.
    pub fn stats(&self) -> RequestStats {
        RequestStats::snapshot(&self.shared)
    }

    /// Sets every request count back to zero.
    pub fn reset_stats(&self) {
        RequestStats::reset(&self.shared);
    }

    /// Number of live SSE subscriptions known to the pub/sub.
    pub fn subscriber_count(&self) -> usize {
        self.shared.hub.len()
    }

    /// Stops and starts again on the same port. Data is kept, except the writes named by
    /// [`Faults::forget_last_writes`] or [`Faults::forget_writes_since_start`]; open
    /// connections, subscriptions and pending pokes are lost, as on a real restart.
    ///
    /// # Errors
    /// [`Error::Bind`] when the port cannot be bound again.
    pub async fn restart(&self) -> Result<(), Error> {
        self.pause().await;
        self.resume().await
    }

    /// Stops listening, as a server that is down: connections are refused by the OS
    /// (`ECONNREFUSED`), open connections and subscriptions are closed. Data is kept.
    /// [`resume`](Self::resume) starts again on the same port; `pause` + `resume` is
    /// [`restart`](Self::restart). Does nothing when already paused.
    pub async fn pause(&self) {
        self.stop().await;
    }

    /// Listens again on the same port after [`pause`](Self::pause), applying any pending
    /// `forget_*` fault first. Does nothing when already serving.
    ///
    /// # Errors
    /// [`Error::Bind`] when the port cannot be bound again.
    pub async fn resume(&self) -> Result<(), Error> {
        if self.lock_generation().is_some() {
            return Ok(());
        }
        {
            let mut store = self.shared.store();
            let mut n = self.shared.faults.take_forget_count();
            if self.shared.faults.take_forget_since_start() {
                n = n.max(store.writes_since_start());
            }
            if n > 0 {
                let forgotten = store.forget_last_writes(n);
                tracing::debug!(forgotten, "test server forgot acknowledged writes");
            }
            store.mark_start();
        }
        let generation = {
            let _context = self.runtime.enter();
            let listener = bind(self.addr)?;
            Generation::spawn(listener, self.shared.clone(), &self.runtime)
        };
        *self.lock_generation() = Some(generation);
        Ok(())
    }

    /// Stops serving and waits until every connection is closed.
    pub async fn shutdown(self) {
        self.stop().await;
    }

    async fn stop(&self) {
        let generation = self.lock_generation().take();
        if let Some(generation) = generation {
            generation.stop().await;
        }
        self.shared.hub.clear();
    }

    fn lock_generation(&self) -> std::sync::MutexGuard<'_, Option<Generation>> {
        self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(generation) = self.lock_generation().take() {
            generation.cancel.cancel();
        }
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    let err = |source| Error::Bind { addr, source };
    let socket = TcpSocket::new_v4().map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

/// One run of the accept loop and its connections, between starts and stops.
struct Generation {
    cancel: CancellationToken,
    accept: JoinHandle<()>,
    connections: TaskTracker,
}

impl Generation {
    fn spawn(
        listener: TcpListener,
        shared: Arc<Shared>,
        runtime: &tokio::runtime::Handle,
    ) -> Generation {
        let cancel = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept = runtime.spawn(accept_loop(
            listener,
            shared,
            cancel.clone(),
            connections.clone(),
        ));
        Generation {
            cancel,
            accept,
            connections,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.accept.await;
        self.connections.close();
        self.connections.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "test server accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        if shared.faults.refusing() {
            drop(stream);
            continue;
        }
        let dropped = shared.faults.connection_token();
        connections.spawn(serve_connection(
            stream,
            shared.clone(),
            cancel.clone(),
            dropped,
        ));
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    stopped: CancellationToken,
    dropped: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let idle_timeout = shared.config.idle_timeout;
    let service = service_fn(move |req| crate::http::handle(shared.clone(), req));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's header-read timer also runs while a keep-alive connection waits for its next
    // request, which makes it the idle timeout.
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        biased;
        () = stopped.cancelled() => {}
        () = dropped.cancelled() => {}
        result = connection => {
            if let Err(error) = result {
                tracing::trace!(%error, "test server connection ended");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_does_not_show_its_token() {
        let token = "ns_ZGVmYXVsdA_0123456789abcdef";
        let shown = format!("{:?}", TestServer::builder().token(token));
        assert!(!shown.contains(token), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
