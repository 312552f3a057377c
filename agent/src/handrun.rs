//! The hand-run face: `installer-agent apply --rootfs DIR …` builds the plan the controller
//! would have sent from the local rootfs and flags, copies the rootfs into place, and runs it.
//! For users who ship the rootfs by other means (cloud-init, Ansible, removable media).

use crate::apply::Apply;
use crate::root::HostRoot;
use crate::sink::Sink;
use anyhow::{Context, bail};
use installer_proto::env::Env;
use installer_proto::event::Outcome;
use installer_proto::plan::{self, HostsEntry, Plan, PlanInputs, RegistryPlan, StepKind, Timeouts};
use installer_proto::rootfs::{MergedTree, arch_dir_for, hash_file_content};
use std::path::PathBuf;

/// Everything `installer-agent apply` takes.
#[derive(Debug, Clone)]
pub struct HandApply {
    /// The rootfs directory.
    pub rootfs: PathBuf,
    /// Cluster name.
    pub cluster: String,
    /// Cluster env (`spec.env`).
    pub env: Env,
    /// Host env (`spec.hosts[].env`).
    pub host_env: Env,
    /// Roles.
    pub roles: Vec<String>,
    /// Whether this host runs the registry.
    pub registry_host: bool,
    /// Registry domain.
    pub registry_domain: String,
    /// Registry port.
    pub registry_port: u16,
    /// Registry host's IP for the `/etc/hosts` line (default: this host's).
    pub registry_ip: Option<String>,
    /// This host's IP (default: the address of the default route's interface).
    pub host_ip: Option<String>,
    /// master0's IP (default: this host's).
    pub master0_ip: Option<String>,
    /// `docker` or `containerd`.
    pub container_runtime: String,
    /// Data root.
    pub data_root: String,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// The trees watched around script steps.
    pub watch: installer_proto::watch::WatchConfig,
}

/// The IP of the interface the default route leaves by (no packet is sent), else loopback.
fn default_ip() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}

/// Builds the plan and the merged tree it comes from.
pub fn build(args: &HandApply) -> anyhow::Result<(Plan, MergedTree)> {
    let machine = crate::facts::machine();
    // The tree is merged for one arch, so an unsupported one is refused before reading it.
    let Some(arch) = arch_dir_for(&machine) else {
        bail!("this host's architecture {machine} is not supported (x86_64 and aarch64 are)");
    };
    let tree = MergedTree::merge(&args.rootfs, arch, &[], &mut hash_file_content)
        .with_context(|| format!("reading rootfs {}", args.rootfs.display()))?;
    tree.check_bin_machine(&machine)?;
    let host_ip = args.host_ip.clone().unwrap_or_else(default_ip);
    let registry_ip = args.registry_ip.clone().unwrap_or_else(|| host_ip.clone());
    let inputs = PlanInputs {
        cluster: args.cluster.clone(),
        data_root: args.data_root.clone(),
        host_ip: host_ip.clone(),
        host_name: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        master0_ip: args.master0_ip.clone().unwrap_or_else(|| host_ip.clone()),
        machine,
        roles: args.roles.clone(),
        registry: RegistryPlan {
            domain: args.registry_domain.clone(),
            port: args.registry_port,
            deploy: args.registry_host,
            tls: None,
            auth: None,
        },
        container_runtime: args.container_runtime.clone(),
        cluster_env: args.env.clone(),
        host_env: args.host_env.clone(),
        hosts_entries: vec![HostsEntry {
            ip: registry_ip,
            names: vec![args.registry_domain.clone()],
        }],
        plugins: Vec::new(),
        timeouts: args.timeouts.clone(),
        watch: args.watch.clone(),
        // No Clusterfile by hand, so no kubeadm documents: etc/kubeadm.yml is as rendered.
        kubeadm: Vec::new(),
    };
    let plan = plan::build(&inputs, &tree)?;
    Ok((plan, tree))
}

/// Runs a hand apply: plan, copy what the host lacks, run the steps.
pub fn apply(
    root: HostRoot,
    args: &HandApply,
    force: bool,
    dry_run: bool,
    stop_after: Option<StepKind>,
    sink: &dyn Sink,
) -> anyhow::Result<Outcome> {
    let (plan, tree) = build(args)?;
    let mut apply = Apply::offer(root, plan, dry_run)?;
    if !dry_run {
        let mut receiver = apply.receiver()?;
        receiver.copy_from(&|rel| tree.source(rel).map(|p| p.to_path_buf()))?;
        receiver.finish()?;
        apply.received();
    }
    Ok(apply.run(force, stop_after, sink))
}
