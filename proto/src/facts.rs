//! What the agent reports about its host before anything is changed: enough for the
//! controller's preflight (arch supported, disk, unique hostnames, no apply running) and for
//! `installer-agent facts`.

use serde::{Deserialize, Serialize};

/// A host's facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The agent's version.
    pub agent_version: String,
    /// `uname -m` (`x86_64`, `aarch64`).
    pub arch: String,
    /// `/etc/os-release` `ID` (`debian`, `ubuntu`, `rhel`…).
    pub os_id: String,
    /// `/etc/os-release` `VERSION_ID`.
    pub os_version: String,
    /// `/etc/os-release` `PRETTY_NAME`.
    pub os_pretty_name: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Hostname.
    pub hostname: String,
    /// Online CPUs.
    pub cpus: u32,
    /// Total memory in bytes.
    pub memory_total_bytes: u64,
    /// Available memory in bytes.
    pub memory_available_bytes: u64,
    /// The data root the numbers below refer to.
    pub data_root: String,
    /// Free bytes on the filesystem that holds (or will hold) the data root.
    pub disk_free_bytes: u64,
    /// Container runtimes found on `PATH`: any of `docker`, `nerdctl`, `ctr`.
    pub runtimes: Vec<String>,
    /// Whether systemd is the init system.
    pub systemd: bool,
    /// What this agent has recorded for the cluster asked about, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSummary>,
}

/// The agent's record of one cluster on this host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSummary {
    /// Cluster name.
    pub cluster: String,
    /// Steps that completed, by id.
    pub steps_done: Vec<String>,
    /// The step that failed last, if the last apply failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Whether an apply or clean holds the cluster's lock right now.
    pub locked: bool,
    /// Files recorded as installed or changed outside the data root.
    pub changes: u64,
}
