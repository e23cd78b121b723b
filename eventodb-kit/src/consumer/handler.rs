//! What a consumer is: the [`Consumer`] trait, the [`Context`] a handler gets, and the
//! outcomes ([`Handled`], [`HandlerError`]).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::client::CategoryMessage;
use crate::outbox::Backend;

/// A consumer of one category: receives each message of the category (of its share, in a
/// group) in global-position order, one at a time.
///
/// Implement it by hand or with the `#[consumer]` macro, which dispatches on the message
/// type to typed handlers. The runtime calls [`Consumer::handle`] for every message it has
/// not yet recorded as processed.
///
/// # Examples
/// ```
/// use eventodb_kit::client::CategoryMessage;
/// use eventodb_kit::consumer::{BoxFuture, Consumer, Context, Handled, HandlerError};
/// use eventodb_kit::outbox::Backend;
///
/// struct Audit;
///
/// impl<DB: Backend> Consumer<DB> for Audit {
///     fn category(&self) -> &str {
///         "account"
///     }
///     fn handle<'a>(
///         &'a self,
///         message: &'a CategoryMessage,
///         _ctx: &'a mut Context<'_, DB>,
///     ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
///         Box::pin(async move {
///             match message.message_type.as_str() {
///                 "Deposited" => Ok(Handled::Done),
///                 _ => Ok(Handled::Unknown),
///             }
///         })
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a consumer for `{DB}`",
    label = "not a consumer for `{DB}`",
    note = "put `#[consumer(category = \"...\")]` on its impl block, or implement `Consumer<{DB}>` for it",
    note = "a `#[consumer]` whose handlers take `Context<'_, D>` for one database `D` consumes on a kit of that database only: take `Context<'_, DB>` in a generic impl to run on both"
)]
pub trait Consumer<DB: Backend>: Send + Sync + 'static {
    /// The category it reads (can be overridden by
    /// [`ConsumerOptions::category`](crate::consumer::ConsumerOptions::category), unless
    /// [`category_is_fixed`](Self::category_is_fixed)).
    fn category(&self) -> &str;

    /// Whether the consumer can read only [`category`](Self::category): a `#[consumer]`
    /// decodes messages into that category's event types by their type name, so the same
    /// names in another category would reach its handlers as the wrong events. Spawning
    /// such a consumer with [`ConsumerOptions::category`](crate::consumer::ConsumerOptions::category)
    /// naming another category fails with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument). Default `false`: a
    /// consumer that takes any category's messages (a hand-written one, a
    /// [`consumer_fn`](crate::consumer::consumer_fn)) may be pointed at any category. A
    /// wrapper that implements `Consumer` by delegating to another must forward this too,
    /// as `Arc<C>` does, or the check is lost.
    fn category_is_fixed(&self) -> bool {
        false
    }

    /// Whether every message is handled in a database transaction (see
    /// [`ConsumerOptions::transactional`](crate::consumer::ConsumerOptions::transactional);
    /// either one turns it on). Default `false`.
    fn transactional(&self) -> bool {
        false
    }

    /// Handles one message. `Ok(Handled::Unknown)` says there is no handler for its type.
    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        ctx: &'a mut Context<'_, DB>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>>;
}

impl<DB: Backend, C: Consumer<DB>> Consumer<DB> for Arc<C> {
    fn category(&self) -> &str {
        (**self).category()
    }
    fn category_is_fixed(&self) -> bool {
        (**self).category_is_fixed()
    }
    fn transactional(&self) -> bool {
        (**self).transactional()
    }
    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        ctx: &'a mut Context<'_, DB>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        (**self).handle(message, ctx)
    }
}

/// What a handler did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// Handled: recorded as processed.
    Done,
    /// No handler for this message type: ignored (recorded as processed), or a failure
    /// when the consumer is strict
    /// ([`ConsumerOptions::strict_types`](crate::consumer::ConsumerOptions::strict_types)).
    Unknown,
}

/// A handler failure. Any error converts into it with `?`; [`HandlerError::permanent`]
/// marks one that retrying cannot fix (the failure policy applies at once).
pub struct HandlerError {
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
    permanent: bool,
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self {
            source: error.into(),
            permanent: false,
        }
    }

    /// A failure that retrying cannot fix (bad data, a type the consumer refuses).
    pub fn permanent(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self {
            source: error.into(),
            permanent: true,
        }
    }

    /// Whether retries are skipped.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The underlying error.
    pub fn source(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("source", &self.source)
            .field("permanent", &self.permanent)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

/// What a handler knows besides the message: which consumer runs it, the attempt, and for
/// a transactional consumer the database transaction.
pub struct Context<'c, DB: Backend> {
    pub(crate) consumer: &'c str,
    pub(crate) category: &'c str,
    pub(crate) group: Option<(i64, i64)>,
    pub(crate) attempt: u32,
    pub(crate) replay: bool,
    pub(crate) transaction: Option<&'c mut DB::Connection>,
}

impl<DB: Backend> fmt::Debug for Context<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("consumer", &self.consumer)
            .field("category", &self.category)
            .field("group", &self.group)
            .field("attempt", &self.attempt)
            .field("replay", &self.replay)
            .field("transactional", &self.transaction.is_some())
            .finish()
    }
}

impl<'c, DB: Backend> Context<'c, DB> {
    /// The consumer name.
    pub fn consumer(&self) -> &str {
        self.consumer
    }

    /// The category read.
    pub fn category(&self) -> &str {
        self.category
    }

    /// `(member, size)` of a consumer-group member.
    pub fn group(&self) -> Option<(i64, i64)> {
        self.group
    }

    /// The try, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether this message was parked and is handled now because its stream was released.
    pub fn is_replay(&self) -> bool {
        self.replay
    }

    /// The database transaction the processed record and the position commit in (use it as
    /// an executor: `.execute(ctx.transaction()?)`). What the handler writes there is rolled
    /// back if it fails. With
    /// [`ConsumerOptions::transaction_batch`](crate::consumer::ConsumerOptions::transaction_batch)
    /// above 1 it is a savepoint in a transaction shared with other events of the batch:
    /// a failure rolls back to the savepoint only, and the commit comes after the handler
    /// returns, with the other events (so do not count on it being visible to others yet).
    /// On PostgreSQL it runs at `READ COMMITTED`, whatever the database's default isolation:
    /// the consumer's own bookkeeping in it is written for that level.
    ///
    /// # Errors
    /// A permanent [`HandlerError`] when the consumer is not transactional.
    pub fn transaction(&mut self) -> Result<&mut DB::Connection, HandlerError> {
        match self.transaction.as_deref_mut() {
            Some(connection) => Ok(connection),
            None => Err(HandlerError::permanent(format!(
                "consumer {:?} is not transactional: set ConsumerOptions::transactional(true) (or, on a #[consumer], the `transactional` key)",
                self.consumer
            ))),
        }
    }
}

/// A consumer made of a closure that gets an owned message; see [`consumer_fn`].
pub struct FnConsumer<F> {
    category: String,
    handler: F,
}

impl<F> fmt::Debug for FnConsumer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnConsumer")
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

/// A plain (non-transactional) consumer of `category` from an async closure.
///
/// # Examples
/// ```
/// use eventodb_kit::consumer::{consumer_fn, Handled, HandlerError};
///
/// let consumer = consumer_fn("account", |message| async move {
///     println!("{} at {}", message.message_type, message.global_position);
///     Ok::<_, HandlerError>(Handled::Done)
/// });
/// # let _ = consumer;
/// ```
pub fn consumer_fn<F, Fut>(category: impl Into<String>, handler: F) -> FnConsumer<F>
where
    F: Fn(CategoryMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Handled, HandlerError>> + Send + 'static,
{
    FnConsumer {
        category: category.into(),
        handler,
    }
}

impl<DB, F, Fut> Consumer<DB> for FnConsumer<F>
where
    DB: Backend,
    F: Fn(CategoryMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Handled, HandlerError>> + Send + 'static,
{
    fn category(&self) -> &str {
        &self.category
    }

    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        _ctx: &'a mut Context<'_, DB>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin((self.handler)(message.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_with_question_mark_and_keep_their_kind() {
        fn fails() -> Result<(), HandlerError> {
            let _: i64 = "x".parse::<i64>()?;
            Ok(())
        }
        let error = fails().unwrap_err();
        assert!(!error.is_permanent());
        assert!(error.to_string().contains("invalid digit"));
        let permanent = HandlerError::permanent("bad data");
        assert!(permanent.is_permanent());
        assert_eq!(permanent.source().to_string(), "bad data");
    }

    #[test]
    fn a_plain_consumer_has_no_transaction() {
        let mut ctx: Context<'_, sqlx::Sqlite> = Context {
            consumer: "welcome",
            category: "user",
            group: Some((1, 3)),
            attempt: 2,
            replay: false,
            transaction: None,
        };
        let error = ctx.transaction().unwrap_err();
        assert!(error.is_permanent());
        assert!(error.to_string().contains("welcome"), "{error}");
        assert_eq!(
            (ctx.consumer(), ctx.category(), ctx.group(), ctx.attempt()),
            ("welcome", "user", Some((1, 3)), 2)
        );
        assert!(!ctx.is_replay());
    }
}
