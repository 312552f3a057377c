//! The checks an agent applies to the names of a plan that become host paths.

use super::cluster_dir;

/// Why a plan (or a name in it) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A cluster name that is not usable as one path component.
    #[error(
        "cluster name {0:?} is invalid: use 1-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit"
    )]
    BadClusterName(String),
    /// A data root that is not a clean absolute path.
    #[error(
        "dataRoot {0:?} is invalid: give an absolute path without '..' components, such as /var/lib/sealer/data"
    )]
    BadDataRoot(String),
    /// A data root on top of the system's own directories.
    #[error(
        "dataRoot {path:?} is refused: {why}; clean would work among files the product did not create — use a directory of its own, such as /var/lib/sealer/data"
    )]
    SystemDataRoot {
        /// The data root.
        path: String,
        /// Which system directory it is or holds.
        why: String,
    },
    /// An env key no template can name: empty, or holding `=`, blanks or control characters.
    #[error(
        "env key {0:?} is invalid: keys are non-empty, without '=', blanks or control characters"
    )]
    BadEnvKey(String),
    /// An env value no process environment can carry.
    #[error("the value of env key {0:?} holds a NUL byte, which no script environment can carry")]
    BadEnvValue(String),
    /// A hosts entry that would break `/etc/hosts`.
    #[error(
        "/etc/hosts entry {0:?} is invalid: an IP address and host names without spaces, '#' or newlines"
    )]
    BadHostsEntry(String),
    /// The manifest is malformed.
    #[error("manifest: {0}")]
    Manifest(String),
    /// A plugin name that cannot name a step.
    #[error("plugin name {0:?} is invalid: use letters, digits, '-', '_' and '.'")]
    BadPluginName(String),
    /// A link in `bin/` that would not lead to another file install-bin installs.
    #[error("{0}")]
    BinLink(String),
}

/// Checks a cluster name (`metadata.name`): it becomes a path component on every host.
pub fn check_cluster_name(name: &str) -> Result<(), PlanError> {
    let ok_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = !name.is_empty()
        && name.len() <= 63
        && ok_edge(name.chars().next())
        && ok_edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadClusterName(name.to_string()))
    }
}

/// Checks a data root: absolute, no `.`/`..`/empty components except a trailing slash.
pub fn check_data_root(path: &str) -> Result<(), PlanError> {
    let trimmed = path.trim_end_matches('/');
    if path.starts_with('/') && trimmed.is_empty() {
        return Err(PlanError::SystemDataRoot {
            path: path.to_string(),
            why: "/ is a system directory".to_string(),
        });
    }
    let ok = path.starts_with('/')
        && !trimmed.is_empty()
        && !path.contains('\0')
        && trimmed[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok {
        return Err(PlanError::BadDataRoot(path.to_string()));
    }
    match crate::system_dirs::conflict(path) {
        Some(why) => Err(PlanError::SystemDataRoot {
            path: path.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// Checks that `<dataRoot>/<cluster>` is not itself a system directory (`/usr/local` with
/// a cluster named `bin`).
pub fn check_cluster_dir(data_root: &str, cluster: &str) -> Result<(), PlanError> {
    let dir = cluster_dir(data_root, cluster);
    match crate::system_dirs::SYSTEM_DIRS.iter().find(|s| **s == dir) {
        Some(sys) => Err(PlanError::SystemDataRoot {
            path: data_root.to_string(),
            why: format!("with cluster {cluster:?} the cluster directory is {sys}"),
        }),
        None => Ok(()),
    }
}
