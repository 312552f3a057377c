//! Everything about the agent as seen from the controller: finding the right build for a
//! host ([`binary`]), talking to it once it runs ([`session`]) and what carries it
//! ([`link`]).

pub(crate) mod binary;
pub(crate) mod link;
pub(crate) mod session;
