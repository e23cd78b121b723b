//! The EventoDB client: every RPC method, SSE subscriptions, typed errors, timeouts.

/// A handle to one EventoDB server and namespace. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {}
