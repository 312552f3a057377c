//! Fan-out through the cluster's own registry (SPEC §5.3): registry hosts push the rootfs
//! files they hold into their `sealer-registry` as blobs of one repository, and the other
//! hosts fetch what they lack from there by content address, each file checked against the
//! plan's sha256 before it is used. Only distribution's HTTP API is spoken, so anything that
//! serves that API (a pull-through proxy, a P2P accelerator) can stand in front of it.

use serde::{Deserialize, Serialize};

/// The repository the rootfs files are pushed to. Blobs only: no manifest names them, so no
/// runtime ever pulls them as an image.
pub const REPOSITORY: &str = "sealer-installer/rootfs";

/// Where the registry (distribution's filesystem driver, the layout of `<rootfs>/registry`)
/// keeps the blobs and the repository links the push creates — read by clean only, to take
/// back what the push added; the push itself goes through the HTTP API.
pub const STORAGE_ROOT: &str = "registry/docker/registry/v2";

/// A file to push or fetch: its rootfs path and its content hash (the blob digest's hex).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobRef {
    /// Path in the merged tree.
    pub path: String,
    /// Lower-case hex sha256 of its content.
    pub sha256: String,
}

impl BlobRef {
    /// `sha256:<hex>`, the digest the registry API names the blob by.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }
}

/// The storage paths (relative to the rootfs) distribution keeps for blob `sha256` in
/// [`REPOSITORY`]: the blob's own directory and the repository's link to it.
pub fn storage_paths(sha256: &str) -> [String; 2] {
    let prefix = sha256.get(..2).unwrap_or(sha256);
    [
        format!("{STORAGE_ROOT}/blobs/sha256/{prefix}/{sha256}"),
        format!("{STORAGE_ROOT}/repositories/{REPOSITORY}/_layers/sha256/{sha256}"),
    ]
}

/// The directory of the repository's namespace in the registry's storage (its first path
/// component): what the push creates there goes with it.
pub fn repository_dir() -> String {
    let namespace = REPOSITORY.split('/').next().unwrap_or(REPOSITORY);
    format!("{STORAGE_ROOT}/repositories/{namespace}")
}

/// What a registry host's push did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Blobs uploaded now.
    pub pushed: u64,
    /// Blobs the registry already had.
    pub present: u64,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Files not pushed, each with why (not in this host's tree, upload refused, …).
    pub failed: Vec<String>,
}

/// What a host's fetch did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetched {
    /// Files fetched and verified.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files still lacking (the controller sends them), sorted.
    pub left: Vec<String>,
    /// Why the first of `left` could not be fetched.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_paths_follow_distributions_layout() {
        let hex = "ab".to_string() + &"0".repeat(62);
        let [blob, link] = storage_paths(&hex);
        assert_eq!(
            blob,
            format!("registry/docker/registry/v2/blobs/sha256/ab/{hex}")
        );
        assert_eq!(
            link,
            format!(
                "registry/docker/registry/v2/repositories/sealer-installer/rootfs/_layers/sha256/{hex}"
            )
        );
        assert_eq!(
            repository_dir(),
            "registry/docker/registry/v2/repositories/sealer-installer"
        );
        let r = BlobRef {
            path: "bin/x".into(),
            sha256: hex.clone(),
        };
        assert_eq!(r.digest(), format!("sha256:{hex}"));
    }
}
