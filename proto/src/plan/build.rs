//! The one way a host's [`Plan`] is formed from what is known of the host and the merged
//! rootfs of its architecture: the controller fills [`PlanInputs`] from the Clusterfile and
//! the host's facts, the agent run by hand from its flags, and both call [`build`], so the
//! built-ins, the rootfs files read and the registry data shipped cannot differ between them.

use super::{HostsEntry, Plan, PlanError, Plugin, RegistryPlan, Timeouts, rootfs_dir};
use crate::env::{self, BuiltinInputs, Env, EnvError, Metadata};
use crate::rootfs::{MergedTree, RootfsError, arch_dir_for};
use crate::watch::WatchConfig;
use std::fs;
use std::io;
use std::path::PathBuf;

/// Where the rootfs keeps its metadata (SPEC §3): the Kubernetes version.
const METADATA_FILE: &str = "Metadata";
/// Where the rootfs lists its images (SPEC §3): the pause image comes from it.
const IMAGE_LIST_FILE: &str = "imageList";
/// The registry data directory, shipped to registry hosts only.
const REGISTRY_DIR: &str = "registry";

/// Everything about one host a plan is built from, besides the rootfs.
#[derive(Clone, Debug)]
pub struct PlanInputs {
    /// `metadata.name`.
    pub cluster: String,
    /// `spec.dataRoot`.
    pub data_root: String,
    /// The host's address as the cluster knows it.
    pub host_ip: String,
    /// The host's hostname.
    pub host_name: String,
    /// master0's address.
    pub master0_ip: String,
    /// The host's `uname -m`; it picks the arch subtree.
    pub machine: String,
    /// The host's roles.
    pub roles: Vec<String>,
    /// The local registry as this host sees it; `deploy` also decides whether `registry/`
    /// is shipped.
    pub registry: RegistryPlan,
    /// `docker` or `containerd`.
    pub container_runtime: String,
    /// `spec.env`.
    pub cluster_env: Env,
    /// The host's own env, over `cluster_env`.
    pub host_env: Env,
    /// The tagged `/etc/hosts` lines.
    pub hosts_entries: Vec<HostsEntry>,
    /// The plugin hooks in the host's scope.
    pub plugins: Vec<Plugin>,
    /// Time limits.
    pub timeouts: Timeouts,
    /// The trees watched around script steps.
    pub watch: WatchConfig,
    /// The Clusterfile's kubeadm documents (see [`Plan::kubeadm`]); empty for the agent
    /// run by hand.
    pub kubeadm: Vec<String>,
}

/// Why a host's plan could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The host's machine has no arch subtree name.
    #[error("architecture {machine} is not supported; hosts must be x86_64 or aarch64")]
    UnsupportedArch {
        /// Its `uname -m`.
        machine: String,
    },
    /// The rootfs `Metadata` is not the expected JSON.
    #[error(
        "{}: {reason}; Metadata must be JSON such as {{\"version\":\"v1.19.8\",\"arch\":\"amd64\"}}",
        path.display()
    )]
    Metadata {
        /// The file on the local disk.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A rootfs file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The environment cannot be formed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The merged tree's manifest cannot be formed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// The finished plan does not pass the checks the agent applies.
    #[error(transparent)]
    Invalid(#[from] PlanError),
}

impl BuildError {
    /// Whether the error is about a rootfs file (its message names the file) rather than
    /// about the host.
    pub fn is_rootfs_file(&self) -> bool {
        matches!(
            self,
            BuildError::Metadata { .. }
                | BuildError::Io { .. }
                | BuildError::Invalid(PlanError::KubeadmTarget { .. })
        )
    }
}

impl PlanInputs {
    /// The inputs of the built-in env; the rootfs gives the Kubernetes version and the
    /// image list.
    fn builtins(
        &self,
        arch: &str,
        kube_version: Option<String>,
        image_list: Option<String>,
    ) -> BuiltinInputs {
        BuiltinInputs {
            host_ip: self.host_ip.clone(),
            host_name: self.host_name.clone(),
            master0_ip: self.master0_ip.clone(),
            cluster_name: self.cluster.clone(),
            arch: arch.to_string(),
            rootfs_dir: rootfs_dir(&self.data_root, &self.cluster),
            registry_domain: self.registry.domain.clone(),
            registry_port: self.registry.port,
            container_runtime: self.container_runtime.clone(),
            kube_version,
            image_list,
        }
    }

    /// The env a host gets when no rootfs is at hand (clean after an apply that failed
    /// before its first step): what these inputs alone determine. An unsupported machine
    /// gives an empty `Arch` rather than no env.
    pub fn env_without_rootfs(&self) -> Result<Env, EnvError> {
        let arch = arch_dir_for(&self.machine).unwrap_or_default();
        let inputs = self.builtins(arch, None, None);
        env::host_env(&inputs, &self.cluster_env, &self.host_env)
    }
}

/// The plan of the host `inputs` describe, receiving `tree`, the merged rootfs of its
/// architecture: the env of SPEC §4 from the built-ins, `Metadata` and `imageList`, the
/// tree's manifest (without `registry/` unless the host runs the registry, and without the
/// paths the product writes itself, [`crate::rootfs::PRODUCT_WRITTEN`]), checked as the agent
/// checks it.
pub fn build(inputs: &PlanInputs, tree: &MergedTree) -> Result<Plan, BuildError> {
    let arch = arch_dir_for(&inputs.machine).ok_or_else(|| BuildError::UnsupportedArch {
        machine: inputs.machine.clone(),
    })?;
    let kube_version = match read_text(tree, METADATA_FILE)? {
        Some((path, text)) => {
            Metadata::parse(&text)
                .map_err(|e| BuildError::Metadata {
                    path,
                    reason: e.to_string(),
                })?
                .version
        }
        None => None,
    };
    let image_list = read_text(tree, IMAGE_LIST_FILE)?.map(|(_, text)| text);
    let builtins = inputs.builtins(arch, kube_version, image_list);
    let env = env::host_env(&builtins, &inputs.cluster_env, &inputs.host_env)?;

    let mut manifest = tree.manifest()?;
    if !inputs.registry.deploy {
        manifest = manifest.without(REGISTRY_DIR);
    }
    for path in crate::rootfs::PRODUCT_WRITTEN {
        manifest = manifest.without(path);
    }

    let plan = Plan {
        cluster: inputs.cluster.clone(),
        data_root: inputs.data_root.clone(),
        host_ip: inputs.host_ip.clone(),
        roles: inputs.roles.clone(),
        registry: inputs.registry.clone(),
        env,
        hosts_entries: inputs.hosts_entries.clone(),
        plugins: inputs.plugins.clone(),
        manifest,
        timeouts: inputs.timeouts.clone(),
        watch: inputs.watch.clone(),
        kubeadm: inputs.kubeadm.clone(),
    };
    plan.validate()?;
    Ok(plan)
}

/// The content of a regular file of the tree, with its source path; `None` when absent.
fn read_text(tree: &MergedTree, rel: &str) -> Result<Option<(PathBuf, String)>, BuildError> {
    let Some(sourced) = tree.get(rel).filter(|s| s.entry.is_file()) else {
        return Ok(None);
    };
    let path = sourced.source.clone();
    let text = fs::read_to_string(&path).map_err(|source| BuildError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Some((path, text)))
}

#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::plan::{DEFAULT_CONTAINER_RUNTIME, DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT};
    pub(super) use crate::rootfs::hash_file_content;

    pub(super) fn inputs(machine: &str, deploy: bool) -> PlanInputs {
        PlanInputs {
            cluster: "c".into(),
            data_root: "/data".into(),
            host_ip: "10.0.0.2".into(),
            host_name: "h2".into(),
            master0_ip: "10.0.0.1".into(),
            machine: machine.into(),
            roles: vec!["node".into()],
            registry: RegistryPlan {
                domain: DEFAULT_REGISTRY_DOMAIN.into(),
                port: DEFAULT_REGISTRY_PORT,
                deploy,
                tls: None,
                auth: None,
            },
            container_runtime: DEFAULT_CONTAINER_RUNTIME.into(),
            cluster_env: Env::from([("A".into(), "cluster".into())]),
            host_env: Env::from([("A".into(), "host".into())]),
            hosts_entries: Vec::new(),
            plugins: Vec::new(),
            timeouts: Timeouts::default(),
            watch: WatchConfig::default(),
            kubeadm: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;
    use std::path::Path;

    fn tree(root: &Path) -> MergedTree {
        for (rel, text) in [
            ("Metadata", "{\"version\":\"v1.23.1\"}"),
            ("registry/data", "x"),
            ("etc/a", "a"),
            ("certs/sea.hub.crt", "a stale certificate"),
            ("etc/registry_htpasswd", "u:$2y$05$stale"),
        ] {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        MergedTree::merge(root, "amd64", &[], &mut hash_file_content).unwrap()
    }

    #[test]
    fn registry_data_goes_to_registry_hosts_only_and_metadata_feeds_the_env() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree(dir.path());
        let node = build(&inputs("x86_64", false), &tree).unwrap();
        assert!(node.manifest.get("registry").is_none());
        assert!(node.manifest.get("etc/a").is_some());
        assert_eq!(node.env["KubeVersion"], "v1.23.1");
        assert_eq!(node.env["A"], "host");
        assert_eq!(node.env["RootfsDir"], "/data/c/rootfs");
        assert_eq!(node.env["RegistryURL"], "sea.hub:5000");
        let registry = build(&inputs("x86_64", true), &tree).unwrap();
        assert!(registry.manifest.get("registry/data").is_some());
        for written in ["certs", "certs/sea.hub.crt", "etc/registry_htpasswd"] {
            assert!(
                registry.manifest.get(written).is_none() && node.manifest.get(written).is_none(),
                "{written}: the product writes it, the rootfs's copy is not shipped"
            );
        }
        assert_eq!(
            build(&inputs("riscv64", true), &tree)
                .unwrap_err()
                .to_string(),
            "architecture riscv64 is not supported; hosts must be x86_64 or aarch64"
        );
    }

    #[test]
    fn the_env_without_a_rootfs_has_no_rootfs_keys_and_tolerates_any_machine() {
        let env = inputs("riscv64", false).env_without_rootfs().unwrap();
        assert_eq!(env["Arch"], "");
        assert_eq!(env["ContainerRuntime"], "docker");
        assert_eq!(env["HostName"], "h2");
        assert!(!env.contains_key("KubeVersion"));
        let env = inputs("aarch64", false).env_without_rootfs().unwrap();
        assert_eq!(env["Arch"], "arm64");
    }
}

#[cfg(test)]
mod kubeadm_tests {
    #![allow(clippy::unwrap_used)]
    use super::tests_support::*;
    use super::*;

    const CLUSTER: &str = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16\n";

    fn build_with(files: &[&str], docs: &[&str]) -> Result<Plan, BuildError> {
        let dir = tempfile::tempdir().unwrap();
        for rel in files {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "kind: InitConfiguration\n").unwrap();
        }
        let tree = MergedTree::merge(dir.path(), "amd64", &[], &mut hash_file_content).unwrap();
        let mut inputs = inputs("x86_64", false);
        inputs.kubeadm = docs.iter().map(|d| d.to_string()).collect();
        build(&inputs, &tree)
    }

    #[test]
    fn kubeadm_documents_travel_with_a_template_to_merge_into() {
        let plan = build_with(&["etc/kubeadm.yml.tmpl", "etc/kubeadm.yml"], &[CLUSTER]).unwrap();
        assert_eq!(plan.kubeadm, [CLUSTER]);
        assert!(
            serde_json::to_string(&plan)
                .unwrap()
                .contains("\"kubeadm\":")
        );
        // Without documents the plan's JSON is what it was before the field existed.
        let plain = build_with(&["etc/kubeadm.yml"], &[]).unwrap();
        assert!(
            !serde_json::to_string(&plain)
                .unwrap()
                .contains("\"kubeadm\":")
        );
    }

    #[test]
    fn kubeadm_documents_without_a_template_are_refused_as_a_rootfs_problem() {
        for (files, says) in [
            (
                &["etc/kubeadm.yml"][..],
                "ships etc/kubeadm.yml as a plain file",
            ),
            (&["etc/other.conf"][..], "has neither"),
        ] {
            let err = build_with(files, &[CLUSTER]).unwrap_err();
            assert!(err.is_rootfs_file(), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        let err = build_with(&["etc/kubeadm.yml.tmpl"], &["kind: Policy\n"]).unwrap_err();
        assert!(!err.is_rootfs_file());
        assert!(
            err.to_string().starts_with(
                "the Clusterfile's kubeadm document 1: apiVersion \"\" kind \"Policy\""
            ),
            "{err}"
        );
        let err = build_with(&["etc/kubeadm.yml.tmpl"], &["kind: X\0\n"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Clusterfile's kubeadm document 1 holds a NUL byte"
        );
        let big = format!(
            "{CLUSTER}# {}\n",
            "x".repeat(crate::plan::MAX_KUBEADM_BYTES)
        );
        let err = build_with(&["etc/kubeadm.yml.tmpl"], &[&big]).unwrap_err();
        assert!(
            err.to_string().contains("over the limit of 1048576"),
            "{err}"
        );
    }
}
