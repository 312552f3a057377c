//! The checks an agent applies to the names of a plan that become host paths, and to the
//! kubeadm documents it carries.

use super::cluster_dir;
use crate::kubeadm::{self, KUBEADM_FILE, KUBEADM_TEMPLATE};
use crate::manifest::Manifest;

/// The most bytes of kubeadm documents one plan carries: kubeadm's own files are a few
/// KiB; the limit keeps a mistaken paste from growing every host's plan and file.
pub const MAX_KUBEADM_BYTES: usize = 1 << 20;

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
    /// A registry domain that cannot name a directory or file (it names `certs.d/<domain>:<port>`).
    #[error(
        "registry domain {0:?} is invalid: use a host name such as sea.hub (letters, digits, '-' and '.')"
    )]
    BadRegistryDomain(String),
    /// The registry part of the plan is inconsistent.
    #[error("registry: {0}")]
    BadRegistry(String),
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
    /// The kubeadm documents are not what the merge takes (the merge's message).
    #[error("{0}")]
    Kubeadm(String),
    /// There are kubeadm documents, but no template whose output they can be merged into.
    #[error(
        "the Clusterfile has kubeadm documents, which are merged into {KUBEADM_FILE} as rendered from {KUBEADM_TEMPLATE}, but this rootfs {}",
        if *plain {
            "ships etc/kubeadm.yml as a plain file, which the agent places as the image has it and never rewrites; ship it as etc/kubeadm.yml.tmpl instead (a file without {{ renders to itself)"
        } else {
            "has neither (sealer fails too when etc/kubeadm.yml is missing); use an image that has one, or remove the kubeadm documents from the Clusterfile"
        }
    )]
    KubeadmTarget {
        /// Whether the rootfs has a plain `etc/kubeadm.yml`.
        plain: bool,
    },
}

/// Checks the kubeadm documents of a plan: within [`MAX_KUBEADM_BYTES`], no NUL (no file
/// should hold one), each a kubeadm kind the merge takes, and a template to merge them
/// into. A plain `etc/kubeadm.yml` is not rewritten: it is a shipped file, fingerprinted
/// as the image has it, so a rewrite would look like drift to every later apply.
pub(super) fn check_kubeadm(docs: &[String], manifest: &Manifest) -> Result<(), PlanError> {
    if docs.is_empty() {
        return Ok(());
    }
    let size: usize = docs.iter().map(String::len).sum();
    if size > MAX_KUBEADM_BYTES {
        return Err(PlanError::Kubeadm(format!(
            "the Clusterfile's kubeadm documents hold {size} bytes, over the limit of {MAX_KUBEADM_BYTES}"
        )));
    }
    if let Some(i) = docs.iter().position(|d| d.contains('\0')) {
        return Err(PlanError::Kubeadm(format!(
            "the Clusterfile's kubeadm document {} holds a NUL byte",
            i + 1
        )));
    }
    kubeadm::check_documents(docs).map_err(|e| PlanError::Kubeadm(e.to_string()))?;
    if manifest.get(KUBEADM_TEMPLATE).is_some_and(|e| e.is_file()) {
        return Ok(());
    }
    Err(PlanError::KubeadmTarget {
        plain: manifest.get(KUBEADM_FILE).is_some_and(|e| e.is_file()),
    })
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
