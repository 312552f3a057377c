//! What the host's rootfs copy already holds: the content-hash cache of
//! [`installer_proto::hashcache`], kept in the cluster's state directory, so a re-apply does
//! not re-read gigabytes to learn nothing changed.

use installer_proto::hashcache::HashCache;
use std::path::Path;

/// The cache's file name in the state directory.
const INDEX_FILE: &str = "rootfs-index.json";

/// The rootfs index of the cluster whose state directory is `state_dir`; an unreadable one
/// is reported and replaced by an empty one (it is only a cache).
pub(crate) fn load(state_dir: &Path) -> HashCache {
    let file = state_dir.join(INDEX_FILE);
    HashCache::load(&file).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring the unreadable rootfs index");
        HashCache::empty(&file)
    })
}
