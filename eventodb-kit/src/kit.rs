//! [`Kit`]: one value that holds the client, the database and the outbox, and starts the
//! background work.

use std::fmt;
use std::time::Duration;

use sqlx::Pool;

use crate::client::{Client, Token};
use crate::error::Result;
use crate::outbox::{Backend, Outbox};
use crate::workers::Workers;

/// The entry point: an EventoDB client, a database pool (PostgreSQL or SQLite) and the
/// outbox on it. Cheap to clone.
///
/// # Examples
/// ```no_run
/// use eventodb_kit::Kit;
/// use eventodb_kit::outbox::SenderOptions;
///
/// # async fn run() -> eventodb_kit::Result<()> {
/// let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/app").await.unwrap();
/// eventodb_kit::migrate(&pool).await?;
/// let kit = Kit::builder("http://127.0.0.1:8080")
///     .token(std::env::var("EVENTODB_TOKEN").unwrap_or_default())
///     .database(pool)
///     .build()?;
/// let workers = kit.workers().outbox_sender(SenderOptions::default()).spawn().await?;
/// // ...
/// workers.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Kit<DB: Backend> {
    client: Client,
    outbox: Outbox<DB>,
}

impl<DB: Backend> Clone for Kit<DB> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            outbox: self.outbox.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for Kit<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kit")
            .field("client", &self.client)
            .field("namespace", &self.outbox.namespace())
            .finish()
    }
}

/// The kit type [`Kit::builder`] sits on: one concrete type, so that `Kit::builder(..)` needs no
/// type annotation (SQLite's when that feature is on, else PostgreSQL's).
#[cfg(feature = "sqlite")]
type BuilderHost = sqlx::Sqlite;
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
type BuilderHost = sqlx::Postgres;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!(
    "eventodb-kit needs a database for its tables: enable its `postgres` or `sqlite` feature (or both, the default)"
);

impl Kit<BuilderHost> {
    /// Starts building a kit for the EventoDB server at `url`. The database given to
    /// [`KitBuilder::database`] decides the kit's type: a `PgPool` makes a `Kit<Postgres>`.
    /// (This function sits on one concrete kit type only so that `Kit::builder(..)` needs no
    /// type annotation; it is not tied to that database.)
    pub fn builder(url: impl Into<String>) -> KitBuilder<()> {
        KitBuilder {
            url: url.into(),
            token: None,
            client: None,
            connect_timeout: None,
            request_timeout: None,
            database: (),
        }
    }
}

impl<DB: Backend> Kit<DB> {
    /// A kit from an existing client and pool.
    pub fn from_parts(client: Client, pool: Pool<DB>) -> Self {
        Self {
            outbox: Outbox::new(pool, client.clone()),
            client,
        }
    }

    /// The EventoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database pool.
    pub fn pool(&self) -> &Pool<DB> {
        self.outbox.pool()
    }

    /// The namespace (from the token; `default` without one).
    pub fn namespace(&self) -> &str {
        self.outbox.namespace()
    }

    /// Begins a transaction on the kit's pool for the application to write in, events and
    /// its own rows, then commit.
    ///
    /// On SQLite it begins with `BEGIN IMMEDIATE`, which takes the database's write lock at
    /// once (waiting in the busy timeout like any writer). A plain `BEGIN` takes it only at
    /// the first write: a transaction that read first then fails with "database is locked",
    /// without waiting, whenever another connection (the outbox sender, a consumer, another
    /// request) wrote in between. With the sender running, that is most such transactions.
    /// On PostgreSQL it is a plain `BEGIN`, as `pool.begin()`.
    ///
    /// Unlike sqlx 0.8's `begin`, a caller dropped midway leaves no transaction open on a
    /// pooled connection.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database).
    ///
    /// # Examples
    /// ```no_run
    /// # use eventodb_kit::{Kit, outbox::RawMessage};
    /// # async fn run(kit: Kit<sqlx::Sqlite>) -> eventodb_kit::Result<()> {
    /// let mut tx = kit.begin().await?;
    /// let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
    ///     .fetch_one(&mut *tx)
    ///     .await
    ///     .map_err(|source| eventodb_kit::Error::Database { source })?;
    /// kit.outbox()
    ///     .write(&mut *tx, "order-7", RawMessage::new("Counted", serde_json::json!({ "orders": orders })))
    ///     .await?;
    /// tx.commit().await.map_err(|source| eventodb_kit::Error::Database { source })?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self) -> crate::Result<sqlx::Transaction<'static, DB>> {
        DB::begin_application(self.pool()).await
    }

    /// The outbox: write events inside your transactions.
    pub fn outbox(&self) -> &Outbox<DB> {
        &self.outbox
    }

    /// Chooses the background work to start.
    pub fn workers(&self) -> Workers<DB> {
        Workers::new(self.clone())
    }
}

/// Builds a [`Kit`]; see [`Kit::builder`].
#[must_use = "call .build() to get a Kit"]
pub struct KitBuilder<D> {
    url: String,
    token: Option<String>,
    client: Option<Client>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    database: D,
}

impl<D> fmt::Debug for KitBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KitBuilder")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl<D> KitBuilder<D> {
    /// The namespace token (`ns_...`); the outbox writes for its namespace. Checked by
    /// [`KitBuilder::build`].
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Use this client (its URL and token win over the builder's).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Time allowed to open a connection to EventoDB.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Time allowed for one EventoDB call.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The database for the outbox and the consumers' state (a `PgPool` or a `SqlitePool`;
    /// run [`migrate`](crate::migrate()) on it first).
    pub fn database<DB: Backend>(self, pool: Pool<DB>) -> KitBuilder<Pool<DB>> {
        KitBuilder {
            url: self.url,
            token: self.token,
            client: self.client,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            database: pool,
        }
    }
}

impl<DB: Backend> KitBuilder<Pool<DB>> {
    /// Builds the kit.
    ///
    /// # Errors
    /// [`Error::InvalidToken`](crate::Error::InvalidToken) for a token that does not parse,
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for a bad URL.
    pub fn build(self) -> Result<Kit<DB>> {
        let client = match self.client {
            Some(client) => client,
            None => {
                let mut builder = Client::builder(self.url);
                if let Some(token) = self.token.filter(|token| !token.is_empty()) {
                    builder = builder.token(Token::parse(&token)?);
                }
                if let Some(timeout) = self.connect_timeout {
                    builder = builder.connect_timeout(timeout);
                }
                if let Some(timeout) = self.request_timeout {
                    builder = builder.request_timeout(timeout);
                }
                builder.build()?
            }
        };
        Ok(Kit::from_parts(client, self.database))
    }
}
