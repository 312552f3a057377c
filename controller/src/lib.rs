//! The operator's side of installer: read a Clusterfile, reach every host over SSH, ship
//! the merged rootfs and drive `installer-agent` on each host.

pub(crate) mod agent;
pub mod apply;
pub mod clean;
pub mod cli;
pub mod clusterfile;
pub mod exit;
pub(crate) mod failure;
pub(crate) mod home;
pub(crate) mod output;
pub(crate) mod plan;
pub mod registry_tls;
pub mod rootfs;
pub(crate) mod rootfs_stream;
pub mod ssh;

pub use failure::{Failure, RunResult};
