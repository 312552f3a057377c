//! What the host's rootfs copy already holds: a cache of content hashes keyed by size and
//! modification time, so a re-apply does not re-read gigabytes to learn nothing changed.

use crate::fsutil;
use installer_proto::manifest::{Manifest, sha256_file};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// One file's cached identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    size: u64,
    mtime_ns: i64,
    sha256: String,
}

/// The cache, stored as `state/rootfs-index.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootfsIndex {
    files: BTreeMap<String, Known>,
}

impl RootfsIndex {
    /// Reads the cache; a missing or unreadable one is empty (it is only a cache).
    pub fn load(state_dir: &Path) -> RootfsIndex {
        fs::read(state_dir.join("rootfs-index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the cache.
    pub fn save(&self, state_dir: &Path) -> Result<(), fsutil::FsError> {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        fsutil::write_atomic(&state_dir.join("rootfs-index.json"), &bytes, 0o600)
    }

    /// The sha256 of the regular file at `abs` (recorded as `rel`), from the cache when its
    /// size and mtime still match, else by reading it. `None` when it is not a regular file.
    pub fn hash(&mut self, rel: &str, abs: &Path) -> Option<String> {
        let meta = fs::symlink_metadata(abs).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        if let Some(k) = self.files.get(rel)
            && k.size == meta.len()
            && k.mtime_ns == fsutil::mtime_ns(&meta)
        {
            return Some(k.sha256.clone());
        }
        let sha256 = sha256_file(abs).ok()?;
        self.files.insert(
            rel.to_string(),
            Known {
                size: meta.len(),
                mtime_ns: fsutil::mtime_ns(&meta),
                sha256: sha256.clone(),
            },
        );
        Some(sha256)
    }

    /// Drops entries for paths the manifest no longer has.
    pub fn retain(&mut self, manifest: &Manifest) {
        self.files.retain(|p, _| manifest.get(p).is_some());
    }
}
