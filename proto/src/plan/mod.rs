//! What one host must do: the plan the controller sends (or the agent builds itself when run
//! by hand). It carries everything the host needs: the merged-rootfs manifest, the host's
//! full environment, its `/etc/hosts` entries, the plugin hooks in its scope, the timeouts,
//! and the registry's TLS material. Its one secret is the registry's key, carried to
//! registry hosts only, as a [`crate::secret::Secret`] (never printed); the agent writes it
//! where the registry reads it and nowhere else. The agent decides from it, and from its own journal, which steps
//! run. Both sides form it with [`build`], from [`PlanInputs`] and the merged rootfs, with
//! the defaults named here; the checks an agent applies to it are in `check`.

use crate::env::Env;
use crate::manifest::Manifest;
use serde::{Deserialize, Serialize};

mod build;
mod check;
mod registry;

pub use build::{BuildError, PlanInputs, build};
pub use check::{
    MAX_KUBEADM_BYTES, PlanError, check_cluster_dir, check_cluster_name, check_data_root,
};
pub use registry::{
    MAX_PASSWORD_BYTES, RegistryAuth, RegistryPlan, RegistryTls, ServerTls, check_password,
    check_username,
};

/// The tag sealer puts on every `/etc/hosts` line it writes; kept for compatibility so that
/// lines written by either tool are recognised.
pub const HOSTS_TAG: &str = "#hostalias-set-by-sealer";

/// The name of the local registry container.
pub const REGISTRY_CONTAINER: &str = "sealer-registry";

/// Where the controller uploads the agent, relative to the SSH login user's home:
/// `~/.installer/agent/installer-agent-<first 16 hex digits of its sha256>`. `clean` with
/// `remove_agent` deletes the running agent only when it lives here.
pub const AGENT_UPLOAD_DIR: &str = ".installer/agent";

/// Where root keeps the verified copy of the agent it runs (the launcher copies the upload
/// here, checks its sha256 and executes the copy). `clean` removes it.
pub const ROOT_AGENT_DIR: &str = "/var/lib/installer-agent/bin";

/// The variable through which the launcher tells the agent which upload it came from, so
/// that `clean` removes the upload too.
pub const AGENT_UPLOAD_VAR: &str = "INSTALLER_AGENT_UPLOAD";

/// Default `spec.dataRoot`.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/sealer/data";

/// Default `spec.registry.localRegistry.domain`.
pub const DEFAULT_REGISTRY_DOMAIN: &str = "sea.hub";

/// Default `spec.registry.localRegistry.port`.
pub const DEFAULT_REGISTRY_PORT: u16 = 5000;

/// Default `spec.containerRuntime.type`, for the Clusterfile and the hand-run agent alike:
/// sealer's default when the image does not say, so a Clusterfile written for sealer
/// without the field gets the runtime it got there.
pub const DEFAULT_CONTAINER_RUNTIME: &str = "docker";

/// Default seconds each script or hook may run.
pub const DEFAULT_SCRIPT_TIMEOUT_SECS: u64 = 900;

/// Default seconds to wait for the local registry's `/v2/` to answer.
pub const DEFAULT_REGISTRY_TIMEOUT_SECS: u64 = 60;

/// Where a cluster's files live on a host: `<dataRoot>/<cluster>`.
pub fn cluster_dir(data_root: &str, cluster: &str) -> String {
    format!("{}/{}", data_root.trim_end_matches('/'), cluster)
}

/// Where a host's merged rootfs lives: `<dataRoot>/<cluster>/rootfs`.
pub fn rootfs_dir(data_root: &str, cluster: &str) -> String {
    format!("{}/rootfs", cluster_dir(data_root, cluster))
}

/// One `/etc/hosts` line: `<ip> <names…> #hostalias-set-by-sealer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostsEntry {
    /// The address.
    pub ip: String,
    /// The names it answers to.
    pub names: Vec<String>,
}

impl HostsEntry {
    /// Checks that the entry cannot corrupt the hosts file.
    pub fn check(&self) -> Result<(), PlanError> {
        let bad_word = |w: &str| {
            w.is_empty()
                || w.chars()
                    .any(|c| c.is_whitespace() || c == '#' || c.is_control())
        };
        if self.ip.parse::<std::net::IpAddr>().is_err()
            || self.names.is_empty()
            || self.names.iter().any(|n| bad_word(n))
        {
            return Err(PlanError::BadHostsEntry(format!(
                "{} {}",
                self.ip,
                self.names.join(" ")
            )));
        }
        Ok(())
    }

    /// The line as written, with the tag.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.ip, self.names.join(" "), HOSTS_TAG)
    }
}

/// The host phases a Plugin can hook (SPEC §5, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPhase {
    /// Before the container runtime is set up.
    PreInitHost,
    /// After everything else on the host.
    PostInitHost,
    /// First step of clean.
    PreCleanHost,
    /// After clean has undone everything but the agent itself.
    PostCleanHost,
}

impl HookPhase {
    /// The Clusterfile spelling (`pre-init-host`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            HookPhase::PreInitHost => "pre-init-host",
            HookPhase::PostInitHost => "post-init-host",
            HookPhase::PreCleanHost => "pre-clean-host",
            HookPhase::PostCleanHost => "post-clean-host",
        }
    }

    /// Parses the Clusterfile spelling.
    pub fn parse(s: &str) -> Option<HookPhase> {
        [
            HookPhase::PreInitHost,
            HookPhase::PostInitHost,
            HookPhase::PreCleanHost,
            HookPhase::PostCleanHost,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A `kind: Plugin` of `type: SHELL` that applies to this host (already filtered by scope).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plugin {
    /// `metadata.name`; plugins of one phase run in name order.
    pub name: String,
    /// The phases it runs in.
    pub phases: Vec<HookPhase>,
    /// Shell text, run by `/bin/sh` with cwd at the rootfs and the host env.
    pub data: String,
}

impl Plugin {
    /// Checks that the name can be part of a step id.
    pub fn check(&self) -> Result<(), PlanError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(PlanError::BadPluginName(self.name.clone()));
        }
        Ok(())
    }
}

/// Per-step time limits, in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Each script or hook.
    pub script_secs: u64,
    /// Waiting for the registry's `/v2/` to answer.
    pub registry_secs: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            script_secs: DEFAULT_SCRIPT_TIMEOUT_SECS,
            registry_secs: DEFAULT_REGISTRY_TIMEOUT_SECS,
        }
    }
}

/// The kinds of apply steps, in the order SPEC §5 runs them. A plan may produce several
/// steps of one kind (one per plugin) or none (a script the rootfs lacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Put the received files into `<dataRoot>/<cluster>/rootfs`.
    PlaceRootfs,
    /// Install `bin/*` into `/usr/local/bin`.
    InstallBin,
    /// Render `*.tmpl` files.
    RenderTemplates,
    /// Write the tagged `/etc/hosts` lines.
    HostsFile,
    /// Place the registry's TLS material: the CA where every runtime reads it, and on
    /// registry hosts the certificate and key under `<rootfs>/certs/`.
    RegistryTrust,
    /// Plugin hooks of phase `pre-init-host`.
    PreInitHost,
    /// `init-container-runtime.sh` (legacy: `init.sh`).
    InitContainerRuntime,
    /// `init-registry.sh` or the agent's own start, then the `/v2/` wait.
    InitRegistry,
    /// `init-kube.sh`.
    InitKube,
    /// `preHook.sh`.
    PreHook,
    /// Plugin hooks of phase `post-init-host`.
    PostInitHost,
}

impl StepKind {
    /// All kinds in execution order.
    pub const ALL: [StepKind; 11] = [
        StepKind::PlaceRootfs,
        StepKind::InstallBin,
        StepKind::RenderTemplates,
        StepKind::HostsFile,
        StepKind::RegistryTrust,
        StepKind::PreInitHost,
        StepKind::InitContainerRuntime,
        StepKind::InitRegistry,
        StepKind::InitKube,
        StepKind::PreHook,
        StepKind::PostInitHost,
    ];

    /// The kebab-case name used in events and `--help`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::PlaceRootfs => "place-rootfs",
            StepKind::InstallBin => "install-bin",
            StepKind::RenderTemplates => "render-templates",
            StepKind::HostsFile => "hosts-file",
            StepKind::RegistryTrust => "registry-trust",
            StepKind::PreInitHost => "pre-init-host",
            StepKind::InitContainerRuntime => "init-container-runtime",
            StepKind::InitRegistry => "init-registry",
            StepKind::InitKube => "init-kube",
            StepKind::PreHook => "pre-hook",
            StepKind::PostInitHost => "post-init-host",
        }
    }
}

/// Everything one host must do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// `metadata.name`.
    pub cluster: String,
    /// `spec.dataRoot`, an absolute path on the host (before any `--root` prefix).
    pub data_root: String,
    /// The host's address as the Clusterfile names it.
    pub host_ip: String,
    /// The host's roles (`master`, `node`, custom).
    pub roles: Vec<String>,
    /// The local registry.
    pub registry: RegistryPlan,
    /// The host's full environment (SPEC §4), built-ins included.
    pub env: Env,
    /// The tagged `/etc/hosts` lines: the registry domain and `spec.hostAliases`.
    pub hosts_entries: Vec<HostsEntry>,
    /// Plugin hooks in this host's scope.
    pub plugins: Vec<Plugin>,
    /// The merged rootfs this host receives.
    pub manifest: Manifest,
    /// Time limits.
    pub timeouts: Timeouts,
    /// The trees watched around script steps (SPEC §6).
    #[serde(default)]
    pub watch: crate::watch::WatchConfig,
    /// The Clusterfile's kubeadm documents, one YAML document each, in file order: merged
    /// into `etc/kubeadm.yml` as rendered from `etc/kubeadm.yml.tmpl` ([`crate::kubeadm`]).
    /// Absent from plans that have none, so those read and hash as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubeadm: Vec<String>,
}

impl Plan {
    /// Checks everything an agent must not trust blindly: names that become paths, env keys,
    /// hosts lines, plugin names, the manifest's paths and the kubeadm documents (with the
    /// template they are merged into).
    pub fn validate(&self) -> Result<(), PlanError> {
        check_cluster_name(&self.cluster)?;
        check_data_root(&self.data_root)?;
        check_cluster_dir(&self.data_root, &self.cluster)?;
        if let Some(key) = self.env.keys().find(|k| !crate::env::is_template_key(k)) {
            return Err(PlanError::BadEnvKey(key.clone()));
        }
        if let Some((key, _)) = self
            .env
            .iter()
            .find(|(k, v)| crate::env::check_value(k, v).is_err())
        {
            return Err(PlanError::BadEnvValue(key.clone()));
        }
        self.registry.check()?;
        for entry in &self.hosts_entries {
            entry.check()?;
        }
        for plugin in &self.plugins {
            plugin.check()?;
        }
        self.manifest
            .validate()
            .map_err(|e| PlanError::Manifest(e.to_string()))?;
        crate::bin_links::check(&self.manifest).map_err(PlanError::BinLink)?;
        check::check_kubeadm(&self.kubeadm, &self.manifest)
    }

    /// `<dataRoot>/<cluster>/rootfs` (without any `--root` prefix).
    pub fn rootfs_dir(&self) -> String {
        rootfs_dir(&self.data_root, &self.cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for ok in ["a", "my-cluster", "c1.prod", "0"] {
            check_cluster_name(ok).unwrap();
        }
        for bad in ["", "-a", "a-", "A", "a/b", "..", "a b", &"x".repeat(64)] {
            assert!(check_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_roots() {
        for ok in ["/var/lib/sealer/data", "/data/", "/x"] {
            check_data_root(ok).unwrap();
        }
        for bad in ["", "/", "relative", "/a/../b", "/a//b", "/a/./b"] {
            assert!(check_data_root(bad).is_err(), "{bad}");
        }
        assert_eq!(rootfs_dir("/data/", "c"), "/data/c/rootfs");
    }

    #[test]
    fn hosts_entries_cannot_inject_lines() {
        let ok = HostsEntry {
            ip: "10.0.0.1".into(),
            names: vec!["sea.hub".into()],
        };
        ok.check().unwrap();
        assert_eq!(ok.line(), "10.0.0.1 sea.hub #hostalias-set-by-sealer");
        for (ip, name) in [
            ("10.0.0.1", "a\n10.6.6.6 evil"),
            ("10.0.0.1", "a#b"),
            ("not-an-ip", "a"),
            ("10.0.0.1", ""),
        ] {
            let e = HostsEntry {
                ip: ip.into(),
                names: vec![name.into()],
            };
            assert!(e.check().is_err(), "{ip} {name:?}");
        }
    }

    #[test]
    fn step_kinds_are_in_spec_order() {
        let mut sorted = StepKind::ALL;
        sorted.sort();
        assert_eq!(sorted, StepKind::ALL);
        assert_eq!(
            serde_json::to_string(&StepKind::InitContainerRuntime).unwrap(),
            "\"init-container-runtime\""
        );
        assert_eq!(
            HookPhase::parse("post-clean-host"),
            Some(HookPhase::PostCleanHost)
        );
        assert_eq!(HookPhase::parse("post-install"), None);
    }
}

#[cfg(test)]
mod validate_tests {
    use super::*;

    #[test]
    fn a_nul_in_an_env_value_fails_the_plan() {
        let mut plan = Plan {
            cluster: "c".into(),
            data_root: DEFAULT_DATA_ROOT.into(),
            host_ip: "10.0.0.1".into(),
            roles: vec!["master".into()],
            registry: RegistryPlan {
                domain: "sea.hub".into(),
                port: 5000,
                deploy: false,
                tls: None,
                auth: None,
            },
            env: Env::new(),
            hosts_entries: Vec::new(),
            plugins: Vec::new(),
            manifest: Manifest::default(),
            timeouts: Timeouts::default(),
            watch: Default::default(),
            kubeadm: Vec::new(),
        };
        plan.env.insert("A".into(), "ok".into());
        // A key that is no shell name is for templates; one with a blank is for nothing.
        plan.env.insert("etcd-dir".into(), "/data".into());
        assert_eq!(plan.validate(), Ok(()));
        plan.env.insert("a b".into(), "x".into());
        assert_eq!(plan.validate(), Err(PlanError::BadEnvKey("a b".into())));
        plan.env.remove("a b");
        plan.env.insert("B".into(), "x\0y".into());
        assert_eq!(plan.validate(), Err(PlanError::BadEnvValue("B".into())));
    }
}
