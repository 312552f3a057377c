//! Which clusters this host carries, whatever their data roots: the host-wide list that lets
//! one cluster's apply see what another cluster already installed, so two clusters whose
//! files would overlap are refused before anything changes (SPEC §7). Read and written only
//! under the host lock.

use crate::fsutil::{self, FsError};
use crate::journal::Journal;
use crate::paths::ClusterPaths;
use crate::root::HostRoot;
use serde::{Deserialize, Serialize};
use std::fs;

pub(crate) use crate::paths::HOST_STATE_DIR;

/// One cluster on this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClusterRef {
    /// Cluster name.
    pub cluster: String,
    /// Its data root.
    pub data_root: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct List {
    /// Whether the agent created [`HOST_STATE_DIR`] (it removes it with the last cluster).
    created_dir: bool,
    clusters: Vec<ClusterRef>,
}

fn file(root: &HostRoot) -> std::path::PathBuf {
    root.path(&format!("{HOST_STATE_DIR}/clusters.json"))
}

fn load(root: &HostRoot) -> List {
    fs::read(file(root))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(root: &HostRoot, list: &List) -> Result<(), FsError> {
    let dir = root.path(HOST_STATE_DIR);
    let path = file(root);
    if list.clusters.is_empty() {
        fsutil::remove_file_if_exists(&path)?;
        if list.created_dir {
            let _ = fs::remove_dir(&dir);
        }
        return Ok(());
    }
    // Plain data with string keys: serializing cannot fail.
    let bytes = serde_json::to_vec_pretty(list).unwrap_or_default();
    fsutil::write_atomic(&path, &bytes, 0o600)
}

/// The other clusters this host carries.
pub(crate) fn others(root: &HostRoot, me: &ClusterRef) -> Vec<ClusterRef> {
    load(root)
        .clusters
        .into_iter()
        .filter(|c| c != me)
        .collect()
}

/// Adds `me` to the list (creating the directory, remembered for removal).
pub(crate) fn register(root: &HostRoot, me: &ClusterRef) -> Result<(), FsError> {
    let mut list = load(root);
    if list.clusters.contains(me) {
        return Ok(());
    }
    let dir = root.path(HOST_STATE_DIR);
    if fs::symlink_metadata(&dir).is_err() {
        fs::create_dir_all(&dir).map_err(fsutil::ctx(&dir, "creating"))?;
        list.created_dir = true;
    }
    list.clusters.push(me.clone());
    save(root, &list)
}

/// Removes `me` from the list; the last cluster out removes the file (and the directory
/// when the agent created it).
pub(crate) fn deregister(root: &HostRoot, me: &ClusterRef) -> Result<(), FsError> {
    let mut list = load(root);
    let before = list.clusters.len();
    list.clusters.retain(|c| c != me);
    if list.clusters.len() == before && fs::symlink_metadata(file(root)).is_err() {
        return Ok(());
    }
    save(root, &list)
}

/// The first path or hosts name `me` would write that another cluster on this host already
/// owns, described for the refusal.
pub(crate) fn overlap(
    root: &HostRoot,
    me: &ClusterRef,
    paths: &[String],
    host_names: &[String],
) -> Option<String> {
    for other in others(root, me) {
        let state = ClusterPaths::new(root, &other.data_root, &other.cluster).state;
        let Ok(Some(journal)) = Journal::load(&state) else {
            continue;
        };
        let r = &journal.record;
        if let Some(p) = paths.iter().find(|p| r.installed.contains_key(*p)) {
            return Some(format!(
                "cluster {:?} (dataRoot {}) already installed {p} on this host",
                other.cluster, other.data_root
            ));
        }
        if let Some(hosts) = &r.hosts {
            for line in &hosts.added {
                let names = crate::steps::hosts_file::names_of(line);
                if let Some(n) = host_names.iter().find(|n| names.contains(&n.as_str())) {
                    return Some(format!(
                        "cluster {:?} (dataRoot {}) already owns the /etc/hosts name {n} on this host",
                        other.cluster, other.data_root
                    ));
                }
            }
        }
    }
    None
}
