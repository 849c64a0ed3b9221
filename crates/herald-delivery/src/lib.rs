//! Delivering stored events: when to retry ([`retry`]), which addresses may be reached
//! ([`target`]), and, built on those, the signed HTTP request and the workers, which count
//! what they do in [`metrics`].

pub mod client;
pub mod metrics;
pub mod retry;
pub mod target;
pub mod worker;
