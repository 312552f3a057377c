//! The trees `installer-agent` watches around every script step, and the caps of the
//! content copies it keeps (SPEC §6): plain settings, carried in the plan so that an
//! operator sets them once on the controller (`installer apply --watch-config FILE`), with
//! the defaults documented in README. The agent resolves them against each host.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Which trees are watched around script steps, which of them get content copies, and the
/// limits of those copies. Every path is a host path (`/etc`, not `<root>/etc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Trees whose every path is recorded (metadata only).
    pub trees: Vec<String>,
    /// Subtrees whose regular files get a content copy in the store before each step, so a
    /// file a step changed or deleted can be restored. Small, and what scripts edit.
    pub copy_trees: Vec<String>,
    /// Files larger than this get no copy (a change to them is reported, not undone).
    pub copy_file_max: u64,
    /// The store holds at most this many bytes of copies.
    pub copy_total_max: u64,
    /// Directories recorded as one entry and never descended into: large data that belongs
    /// to a service, not to the host's configuration.
    pub shallow: Vec<String>,
    /// Paths never recorded (not their contents either): state the machine itself rewrites
    /// at any time, which a step did not change.
    pub exclude: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            // Where rootfs scripts put binaries, configs, units and their data. `/lib/systemd`
            // matters on hosts without merged /usr; with it, it is `/usr/lib/systemd`, inside
            // `/usr`, and walked once.
            trees: strings(&["/etc", "/usr", "/opt", "/root", "/var/lib", "/lib/systemd"]),
            // Configuration and unit files: small, and exactly what scripts overwrite.
            copy_trees: strings(&[
                "/etc",
                "/etc/systemd/system",
                "/lib/systemd/system",
                "/usr/lib/systemd/system",
            ]),
            // /etc's largest files (CA bundles, ld.so.cache) are well below this.
            copy_file_max: 4 * MIB,
            copy_total_max: 256 * MIB,
            shallow: strings(&[
                // Container runtimes' and Kubernetes' data: images, snapshots, pod volumes
                // (often mount points). Created by a step, they are one recursive entry anyway.
                "/var/lib/containerd",
                "/var/lib/docker",
                "/var/lib/containers",
                "/var/lib/nerdctl",
                "/var/lib/buildkit",
                "/var/lib/kubelet",
                "/var/lib/etcd",
                "/var/lib/rancher",
                "/var/lib/registry",
                // installer's own default data root: other clusters' rootfs copies.
                "/var/lib/sealer",
                // Storage systems and virtual machines.
                "/var/lib/ceph",
                "/var/lib/rook",
                "/var/lib/longhorn",
                "/var/lib/libvirt",
                "/var/lib/lxd",
                "/var/lib/snapd",
                "/var/lib/flatpak",
                // Databases' data.
                "/var/lib/mysql",
                "/var/lib/postgresql",
                // Package indexes and locate databases: big, rewritten by updates.
                "/var/lib/apt/lists",
                "/var/lib/mlocate",
                "/var/lib/plocate",
                // root's tool caches and toolchains: tens of thousands of files no rootfs
                // script is meant to touch.
                "/root/.cache",
                "/root/.cargo",
                "/root/.rustup",
                "/root/.pyenv",
                "/root/.npm",
                "/root/.m2",
                "/root/.gradle",
            ]),
            exclude: strings(&[
                // Stamps systemd rewrites whenever a persistent timer fires.
                "/var/lib/systemd/timers",
                // Rewritten at boot, shutdown and by systemd-random-seed.
                "/var/lib/systemd/random-seed",
                // Crash dumps: data, not configuration.
                "/var/lib/systemd/coredump",
                // timesyncd touches its clock file on every sync.
                "/var/lib/systemd/timesync",
                // A cache journalctl regenerates from the catalog files.
                "/var/lib/systemd/catalog",
                // sudo's per-user timestamps: the agent itself runs through sudo.
                "/var/lib/sudo",
                // DHCP leases renewed at any time.
                "/var/lib/dhcp",
                "/var/lib/dhclient",
                "/var/lib/NetworkManager",
                // Clock drift files rewritten periodically.
                "/var/lib/chrony/chrony.drift",
                "/var/lib/chrony/drift",
                "/var/lib/ntp/ntp.drift",
                // Daily jobs' state.
                "/var/lib/logrotate",
                "/var/lib/apt/periodic",
                // rsyslog's journal read position, rewritten continuously.
                "/var/lib/rsyslog",
                // An operator's shell and editor history, written when they log out.
                "/root/.bash_history",
                "/root/.lesshst",
                "/root/.viminfo",
                "/root/.python_history",
                "/root/.wget-hsts",
            ]),
        }
    }
}
