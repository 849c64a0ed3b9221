//! Delivering stored events: when to retry ([`retry`]), which addresses may be reached
//! ([`target`]), and, built on those, the signed HTTP request and the workers.

pub mod client;
pub mod retry;
pub mod target;
pub mod worker;
