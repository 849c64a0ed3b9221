//! Delivering stored events: when to retry ([`retry`]), which addresses may be reached
//! ([`target`]), and, built on those, the signed HTTP request and the workers, which share
//! their slots between endpoints ([`capacity`]) and count what they do in [`metrics`].

pub mod capacity;
pub mod client;
mod keys;
pub mod metrics;
pub mod retry;
pub mod target;
pub mod trace;
pub mod worker;
