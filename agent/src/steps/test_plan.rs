//! The plan the steps' unit tests start from: one host of cluster `c` under `/data`, listing
//! `paths` as 1-byte files, with no env, plugins or registry TLS.

use installer_proto::manifest::{Entry, EntryKind, Manifest};
use installer_proto::plan::{Plan, RegistryPlan};

/// A plan whose manifest lists `paths` as files.
pub(crate) fn plan_with(paths: &[&str]) -> Plan {
    let entries = paths
        .iter()
        .map(|p| Entry {
            path: p.to_string(),
            mode: 0o644,
            kind: EntryKind::File {
                size: 1,
                sha256: "0".repeat(64),
            },
        })
        .collect();
    Plan {
        cluster: "c".into(),
        data_root: "/data".into(),
        host_ip: "10.0.0.1".into(),
        roles: vec![],
        registry: RegistryPlan {
            domain: "sea.hub".into(),
            port: 5000,
            deploy: false,
            tls: None,
            auth: None,
        },
        env: Default::default(),
        hosts_entries: vec![],
        plugins: vec![],
        manifest: Manifest { entries },
        timeouts: Default::default(),
        watch: Default::default(),
        kubeadm: Vec::new(),
    }
}
