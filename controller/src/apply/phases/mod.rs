//! The phases, one file each, in the order a run goes through them. Each is a
//! [`HostPhase`](super::driver::HostPhase): the driver runs it on every host.

pub mod clean;
pub mod connect;
pub mod fetch;
pub mod preflight;
pub mod publish;
pub mod ship;
pub mod start_agent;
pub mod steps;
