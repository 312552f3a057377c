//! Everything about the agent as seen from the controller: finding the right build for a
//! host ([`binary`]) and talking to it once it runs ([`session`]).

pub mod binary;
pub mod session;
