//! Where a cluster's files live on a host (after the `--root` mapping).

use crate::root::HostRoot;
use installer_proto::plan::{cluster_dir, rootfs_dir};
use std::path::PathBuf;

/// The agent's host-wide state directory.
pub(crate) const HOST_STATE_DIR: &str = "/var/lib/installer-agent";

/// The directories and files of one cluster.
#[derive(Clone, Debug)]
pub(crate) struct ClusterPaths {
    /// `<dataRoot>/<cluster>` as a host path (for messages and `RootfsDir`).
    pub host_cluster_dir: String,
    /// `<dataRoot>/<cluster>/rootfs` as a host path.
    pub host_rootfs: String,
    /// `<dataRoot>/<cluster>`.
    pub cluster_dir: PathBuf,
    /// `<dataRoot>/<cluster>/rootfs`.
    pub rootfs: PathBuf,
    /// `<dataRoot>/<cluster>/state`: the journal, backups, step logs.
    pub state: PathBuf,
    /// `<dataRoot>/<cluster>/staging`: received content before it is verified and placed.
    pub staging: PathBuf,
}

impl ClusterPaths {
    /// The paths of `cluster` under `data_root`.
    pub(crate) fn new(root: &HostRoot, data_root: &str, cluster: &str) -> ClusterPaths {
        let host_cluster_dir = cluster_dir(data_root, cluster);
        let cluster_dir = root.path(&host_cluster_dir);
        ClusterPaths {
            host_rootfs: rootfs_dir(data_root, cluster),
            rootfs: root.path(&rootfs_dir(data_root, cluster)),
            state: cluster_dir.join("state"),
            staging: cluster_dir.join("staging"),
            host_cluster_dir,
            cluster_dir,
        }
    }
}
