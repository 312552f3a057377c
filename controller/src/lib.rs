//! The operator's side of installer: read a Clusterfile, reach every host over SSH, ship
//! the merged rootfs and drive `installer-agent` on each host.

pub mod agent;
pub mod apply;
pub mod clean;
pub mod cli;
pub mod clusterfile;
pub mod exit;
pub mod failure;
pub mod home;
pub mod output;
pub mod plan;
pub mod rootfs;
pub mod rootfs_stream;
pub mod ssh;

pub use failure::{Failure, RunResult};
