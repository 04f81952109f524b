//! The reqwest transport: [`Client`](crate::Client), the blocking client and
//! the reqwest-middleware middleware. Each translates between reqwest's
//! request and response types and the shared loop; none holds a rule.

#[cfg(feature = "blocking")]
pub mod blocking;
pub(crate) mod client;
pub(crate) mod error;
#[cfg(feature = "middleware")]
pub(crate) mod middleware;
pub(crate) mod transport;
