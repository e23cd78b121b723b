//! The crate's one error type.

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in eventodb-kit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument was rejected before anything was sent or stored.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
