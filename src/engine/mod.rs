//! The rules, in one place: the sans-IO chain, the policy, the history, the
//! permanent-redirect memory and the errors. Only `http`, `url` and `bytes`;
//! no async runtime, no I/O, no transport.

pub(crate) mod chain;
pub(crate) mod error;
pub(crate) mod history;
pub(crate) mod hook;
pub(crate) mod network;
pub(crate) mod permanent;
pub(crate) mod policy;
pub(crate) mod rules;
