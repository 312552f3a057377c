//! What the agent reports about its host before changing anything: arch, OS, kernel,
//! hostname, CPUs, memory, free disk at the data root, container runtimes, systemd, and the
//! state recorded for a cluster.

use crate::journal::Journal;
use crate::lock::HostLock;
use crate::paths::ClusterPaths;
use crate::root::HostRoot;
use installer_proto::facts::{Facts, StateSummary};
use std::path::Path;

/// The agent's version.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `uname -m`.
pub fn machine() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_else(|_| std::env::consts::ARCH.to_string())
}

fn os_release() -> (String, String, String) {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("ID"), get("VERSION_ID"), get("PRETTY_NAME"))
}

/// Free bytes on the filesystem that holds `path`, or would hold it once created.
fn disk_free(path: &Path) -> u64 {
    let mut cur = Some(path);
    while let Some(p) = cur {
        if let Ok(st) = nix::sys::statvfs::statvfs(p) {
            return st.blocks_available() * st.fragment_size();
        }
        cur = p.parent();
    }
    0
}

/// Gathers the facts; `state` is summarised for `cluster` when given.
pub fn gather(root: &HostRoot, data_root: &str, cluster: Option<&str>) -> Facts {
    let (os_id, os_version, os_pretty_name) = os_release();
    let uts = nix::sys::utsname::uname().ok();
    // sysinfo reads /proc; when it cannot, report zeros rather than fail the facts.
    let (memory_total_bytes, memory_available_bytes) = match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            (sys.total_memory(), sys.available_memory())
        }
        Err(_) => (0, 0),
    };
    let state = cluster.and_then(|c| summary(root, data_root, c));
    Facts {
        agent_version: AGENT_VERSION.to_string(),
        arch: machine(),
        os_id,
        os_version,
        os_pretty_name,
        kernel: uts
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_total_bytes,
        memory_available_bytes,
        data_root: data_root.to_string(),
        disk_free_bytes: disk_free(&root.path(data_root)),
        runtimes: crate::runtime::present(),
        systemd: Path::new("/run/systemd/system").is_dir(),
        state,
    }
}

/// What is recorded for `cluster`, if anything.
pub fn summary(root: &HostRoot, data_root: &str, cluster: &str) -> Option<StateSummary> {
    let paths = ClusterPaths::new(root, data_root, cluster);
    let journal = Journal::load(&paths.state).ok().flatten();
    if journal.is_none() && !paths.cluster_dir.exists() {
        return None;
    }
    let record = journal.map(|j| j.record).unwrap_or_default();
    Some(StateSummary {
        cluster: cluster.to_string(),
        steps_done: record
            .steps
            .iter()
            .filter(|(_, r)| r.ok)
            .map(|(id, _)| id.clone())
            .collect(),
        failed_step: record.failed_step,
        locked: HostLock::is_held(root),
        changes: record.installed.len() as u64 + u64::from(record.hosts.is_some()),
    })
}
