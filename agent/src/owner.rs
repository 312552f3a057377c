//! Proof that a cluster directory is this product's. `<dataRoot>/<cluster>` may already
//! exist for reasons of its own (`/srv/docker` with someone's volumes); clean removes a
//! cluster directory only when it carries the marker apply wrote when it claimed it, and
//! apply never claims a directory that already holds anything.

use crate::fsutil::{self, FsError};
use crate::paths::ClusterPaths;
use serde::{Deserialize, Serialize};
use std::fs;

/// The marker's file name inside the cluster directory.
pub(crate) const MARKER: &str = ".installer-cluster";

const PRODUCT: &str = "installer";

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    product: String,
    cluster: String,
    /// Whether apply created the directory itself (else it found it empty and claimed it):
    /// clean removes the directory only in the first case.
    created: bool,
}

/// Who a cluster directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// There is no such directory.
    Absent,
    /// It exists and is empty: apply may claim it.
    Empty,
    /// Ours, for this cluster; `created` says whether apply made the directory itself.
    Ours {
        /// Apply created the directory (not only its content).
        created: bool,
    },
    /// Not ours: the reason, for the message.
    Foreign(String),
}

/// Reads the ownership of the cluster directory.
pub(crate) fn check(paths: &ClusterPaths, cluster: &str) -> Ownership {
    let dir = &paths.cluster_dir;
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(_) => return Ownership::Absent,
    };
    let host = &paths.host_cluster_dir;
    if !meta.file_type().is_dir() {
        return Ownership::Foreign(format!("{host} exists and is not a directory"));
    }
    let marker = fs::read(dir.join(MARKER))
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
    match marker {
        Some(m) if m.product == PRODUCT && m.cluster == cluster => {
            Ownership::Ours { created: m.created }
        }
        Some(m) => Ownership::Foreign(format!(
            "{host} belongs to cluster {:?}, not {cluster:?}",
            m.cluster
        )),
        None if fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) => Ownership::Empty,
        None => Ownership::Foreign(format!(
            "{host} exists, holds files, and was not created by installer (it has no {MARKER})"
        )),
    }
}

/// Writes the marker (the directory exists).
pub(crate) fn claim(paths: &ClusterPaths, cluster: &str, created: bool) -> Result<(), FsError> {
    let marker = Marker {
        product: PRODUCT.to_string(),
        cluster: cluster.to_string(),
        created,
    };
    // Plain data with string keys: serializing cannot fail.
    let bytes = serde_json::to_vec(&marker).unwrap_or_default();
    fsutil::write_atomic(&paths.cluster_dir.join(MARKER), &bytes, 0o600)
}
