//! Phase "inputs": everything local is parsed and validated before any host is contacted —
//! the Clusterfile, the rootfs (directory or archive), the overlays, the `Config` documents
//! and every template's syntax. Also builds the run's shared settings and takes the
//! registry's TLS material from the controller's state (generated there the first time).

use super::host::RunCtx;
use crate::agent::binary::AgentBuilds;
use crate::cli::{ApplyArgs, Common};
use crate::clusterfile::{self, Clusterfile};
use crate::output::Reporter;
use crate::registry_tls::{self, RegistryTls};
use crate::rootfs::{self, ResolvedRootfs};
use crate::rootfs_stream::{DEFAULT_LEVEL, FrameCache};
use crate::ssh::{ConnectOptions, HostKeyPolicy, Secret};
use anyhow::Context;
use installer_proto::rootfs::{MergedTree, arch_dir_for};
use installer_proto::watch::WatchConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a compressed file no run used stays in the cache.
const FRAMES_UNUSED: Duration = Duration::from_secs(30 * 86_400);

/// The validated local inputs of an apply.
pub struct Inputs {
    /// The Clusterfile.
    pub clusterfile: Clusterfile,
    /// The rootfs, unpacked if it was an archive.
    pub rootfs: ResolvedRootfs,
    /// Layers over the rootfs, in order: `--overlay` directories, then `Config` documents.
    pub layers: Vec<PathBuf>,
    /// The trees the agents watch around script steps (`--watch-config`).
    pub watch: WatchConfig,
    /// The registry's TLS material for this run; `None` when it is insecure.
    pub registry_tls: Option<RegistryTls>,
    /// The compressed form of each file shipped, shared by every host's stream.
    pub(crate) frames: Arc<FrameCache>,
    trees: tokio::sync::Mutex<HashMap<String, Arc<MergedTree>>>,
}

impl Inputs {
    /// Inputs already read and validated (what [`validate`] returns, from its parts), with
    /// the compressed files kept under `frames`.
    pub fn new(
        clusterfile: Clusterfile,
        rootfs: ResolvedRootfs,
        layers: Vec<PathBuf>,
        watch: WatchConfig,
        frames: &Path,
    ) -> Inputs {
        Inputs {
            clusterfile,
            rootfs,
            layers,
            watch,
            registry_tls: None,
            frames: Arc::new(FrameCache::new(frames.to_path_buf(), DEFAULT_LEVEL)),
            trees: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The merged tree a host of `uname -m` = `machine` receives (computed once per arch);
    /// `Err` says why such a host cannot be served.
    pub async fn tree_for(&self, machine: &str) -> Result<Arc<MergedTree>, String> {
        let Some(arch) = arch_dir_for(machine) else {
            return Err(format!(
                "architecture {machine} is not supported (x86_64 and aarch64 are)"
            ));
        };
        let mut trees = self.trees.lock().await;
        if let Some(t) = trees.get(arch) {
            t.check_bin_machine(machine).map_err(|e| e.to_string())?;
            return Ok(t.clone());
        }
        let tree =
            rootfs::merge_for(&self.rootfs, arch, &self.layers).map_err(|e| e.to_string())?;
        tree.check_bin_machine(machine).map_err(|e| e.to_string())?;
        let tree = Arc::new(tree);
        trees.insert(arch.to_string(), tree.clone());
        Ok(tree)
    }
}

/// Expands a leading `~/`.
pub fn expand_home(path: &str) -> PathBuf {
    crate::home::expand_env(path).unwrap_or_else(|| PathBuf::from(path))
}

/// Reads and validates the Clusterfile alone (what clean needs).
pub fn load_clusterfile(common: &Common) -> anyhow::Result<Clusterfile> {
    Ok(clusterfile::load(&common.clusterfile)?)
}

/// Validates everything apply reads locally.
pub fn validate(args: &ApplyArgs) -> anyhow::Result<Arc<Inputs>> {
    let cf = load_clusterfile(&args.common)?;
    rootfs::check_overlays(&args.overlays)?;
    let base = cf
        .source
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let cache = rootfs::cache_dir();
    let resolved = rootfs::resolve(&cf.image, &base, &cache)?;
    let mut layers = args.overlays.clone();
    if let Some(config_layer) = rootfs::config_layer(&cf, &resolved, &args.overlays)? {
        layers.push(config_layer);
    }
    rootfs::check_templates(&resolved, &layers)?;
    let watch = match &args.watch_config {
        Some(path) => load_watch_config(path)?,
        None => WatchConfig::default(),
    };
    let registry_tls = registry_tls::for_cluster(&cf, args.rotate_registry_certs, args.dry_run)?;
    let frames = Arc::new(FrameCache::new(cache.join("frames"), DEFAULT_LEVEL));
    let pruned = frames.prune_unused(FRAMES_UNUSED);
    if pruned > 0 {
        tracing::debug!(pruned, "removed compressed files no run used for 30 days");
    }
    Ok(Arc::new(Inputs {
        clusterfile: cf,
        rootfs: resolved,
        layers,
        watch,
        registry_tls,
        frames,
        trees: tokio::sync::Mutex::new(HashMap::new()),
    }))
}

/// Reads `--watch-config FILE` (YAML or JSON; keys left out keep their defaults).
fn load_watch_config(path: &Path) -> anyhow::Result<WatchConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--watch-config {}: reading", path.display()))?;
    yaml_serde::from_str(&text).with_context(|| {
        format!(
            "--watch-config {}: expected the keys trees, copy_trees, copy_file_max, copy_total_max, shallow, exclude",
            path.display()
        )
    })
}

/// The run's shared settings.
pub fn run_ctx(common: &Common, cf: &Clusterfile) -> anyhow::Result<RunCtx> {
    let agents = AgentBuilds::discover(common.agent_dir.as_deref())?;
    let sudo_password = match &common.sudo_password_env {
        Some(name) => Some(Secret::new(std::env::var(name).with_context(|| {
            format!("--sudo-password-env {name}: the environment variable {name} is not set")
        })?)),
        None => None,
    };
    let reporter =
        Reporter::new(&common.log_dir, common.output, common.verbose).with_context(|| {
            format!(
                "creating the run log directory under {}",
                common.log_dir.display()
            )
        })?;
    Ok(RunCtx {
        cluster: cf.name.clone(),
        data_root: cf.data_root.clone(),
        host_keys: HostKeyPolicy {
            known_hosts: expand_home(&common.known_hosts),
            accept_new: common.accept_new_host_keys,
        },
        ssh_options: ConnectOptions {
            connect_timeout: Duration::from_secs(common.connect_timeout),
            keepalive: Duration::from_secs(5),
        },
        agents,
        sudo_password,
        agent_root: common.agent_root.clone(),
        reporter: Arc::new(reporter),
    })
}
