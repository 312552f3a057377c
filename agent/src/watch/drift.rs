//! Converge's half: whether what a step left is still there. A re-apply runs a step again
//! when its recorded results drifted, even if its inputs did not change (SPEC §6).

use super::merge::{Change, Changes};
use super::snapshot::{Kind, Meta};
use crate::root::HostRoot;
use installer_proto::manifest::sha256_file;

/// The first (by path) recorded result of `step` that is no longer as the step left it, as
/// a reason: "/usr/bin/kubelet is missing", "/etc/sysctl.d/k8s.conf changed". What a step
/// deleted is not checked: something else recreating a file is not the step's result
/// undone, and re-running for it could never settle.
pub fn drift(root: &HostRoot, changes: &Changes, step: &str) -> Option<String> {
    changes
        .entries
        .iter()
        .filter(|(_, c)| c.step() == step)
        .find_map(|(path, c)| {
            let (left, dir_by_kind) = match c {
                Change::Created { left, .. } => (left, true),
                Change::Modified { left, .. } => (left, false),
                Change::Deleted { .. } => return None,
            };
            let real = root.path(path);
            let now = match Meta::probe(&real) {
                Ok(Some(m)) => m,
                Ok(None) => return Some(format!("{path} is missing")),
                Err(e) => return Some(format!("{path} cannot be read: {e}")),
            };
            // A created directory is there as long as it is a directory; its mode is not the
            // step's result as much as its entries are (each checked on its own).
            let same = if dir_by_kind && left.kind == Kind::Dir {
                now.kind == Kind::Dir
            } else {
                left.matches(&now, &mut || sha256_file(&real).ok())
            };
            (!same).then(|| format!("{path} changed"))
        })
}
