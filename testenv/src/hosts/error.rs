//! The error type of [`crate::hosts`].

use super::MAX_NODES;
use crate::docker::DockerError;
use crate::node_image;
use std::path::PathBuf;

/// What can go wrong bringing up or using a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node image could not be built.
    #[error(transparent)]
    Image(#[from] node_image::Error),
    /// Docker is missing or a Docker command failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The cluster name cannot be used.
    #[error("invalid cluster name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The node count is out of range.
    #[error("invalid node count {nodes}: a cluster has 1 to {MAX_NODES} nodes")]
    InvalidNodeCount {
        /// The count given.
        nodes: usize,
    },
    /// A program testenv runs on this machine is not installed.
    #[error("`{tool}` is not installed; {fix}")]
    MissingTool {
        /// The missing program.
        tool: &'static str,
        /// How to install it.
        fix: &'static str,
    },
    /// A file in the working directory could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Every candidate subnet was taken.
    #[error(
        "no free /24 for the cluster network in {range}: all are used by Docker networks or \
         host routes; remove stale clusters with `testenv down --all`"
    )]
    NoFreeSubnet {
        /// The range searched.
        range: String,
    },
    /// A node did not come up as it should.
    #[error("node {node} ({container}): {message}")]
    Node {
        /// The node name.
        node: String,
        /// Its container.
        container: String,
        /// What went wrong, with the evidence.
        message: String,
    },
    /// There is no node with that index.
    #[error("no node {index}: the cluster has {count} node(s), indexed from 0")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// How many nodes there are.
        count: usize,
    },
}
