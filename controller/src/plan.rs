//! Builds each host's [`Plan`] from the validated Clusterfile, the host's facts and the
//! merged rootfs of its architecture: the environment of SPEC §4, the tagged `/etc/hosts`
//! lines, the plugins in the host's scope and the manifest it receives (`registry/` only
//! for hosts that run the registry).

use crate::clusterfile::{Clusterfile, HostSpec};
use crate::rootfs::ImageEnv;
use installer_proto::env;
use installer_proto::facts::Facts;
use installer_proto::plan::{
    self, BuildError, HostsEntry, Plan, PlanInputs, RegistryPlan, Timeouts,
};
use installer_proto::rootfs::{MergedTree, arch_dir_for};

/// Why a host's plan could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanBuildError {
    /// A rootfs file is unreadable or malformed; the message names the file, which every
    /// host of the architecture shares.
    #[error(transparent)]
    Rootfs(BuildError),
    /// Something about this host.
    #[error("host {host}: {source}")]
    Host {
        /// The host's IP.
        host: String,
        /// Why.
        #[source]
        source: BuildError,
    },
}

/// The plan of `host` for a rootfs kept as a tree (no image env): `facts` are its gathered
/// facts, `tree` the merged rootfs of its architecture, `registry_host` whether it runs the
/// local registry (see [`Clusterfile::registry_hosts`]). Apply always goes through
/// [`build_plan_with_image`]; the tests of the plan itself use this.
#[cfg(test)]
pub(crate) fn build_plan(
    cf: &Clusterfile,
    host: &HostSpec,
    facts: &Facts,
    tree: &MergedTree,
    registry_host: bool,
    timeouts: Timeouts,
) -> Result<Plan, PlanBuildError> {
    build_plan_with_image(
        cf,
        host,
        facts,
        tree,
        &ImageEnv::default(),
        registry_host,
        timeouts,
    )
}

/// [`build_plan`] for a rootfs that is a ClusterImage: `image_env` (see
/// [`crate::rootfs::ResolvedRootfs::image_env`]) is the base of the cluster env, under
/// `spec.env` (SPEC §2); a multi-platform image gives the env of the host's architecture.
pub(crate) fn build_plan_with_image(
    cf: &Clusterfile,
    host: &HostSpec,
    facts: &Facts,
    tree: &MergedTree,
    image_env: &ImageEnv,
    registry_host: bool,
    timeouts: Timeouts,
) -> Result<Plan, PlanBuildError> {
    let image_env = arch_dir_for(&facts.arch).map_or(&image_env.base, |a| image_env.for_arch(a));
    let mut inputs = plan_inputs(cf, host, facts, registry_host, timeouts);
    inputs.cluster_env = under(image_env, &inputs.cluster_env);
    plan::build(&inputs, tree).map_err(|source| {
        if source.is_rootfs_file() {
            PlanBuildError::Rootfs(source)
        } else {
            PlanBuildError::Host {
                host: host.ip.clone(),
                source,
            }
        }
    })
}

/// What the Clusterfile and the host's facts say of `host`'s plan.
fn plan_inputs(
    cf: &Clusterfile,
    host: &HostSpec,
    facts: &Facts,
    registry_host: bool,
    timeouts: Timeouts,
) -> PlanInputs {
    PlanInputs {
        cluster: cf.name.clone(),
        data_root: cf.data_root.clone(),
        host_ip: host.ip.clone(),
        host_name: facts.hostname.clone(),
        master0_ip: cf.master0().ip.clone(),
        machine: facts.arch.clone(),
        roles: host.roles.clone(),
        registry: RegistryPlan {
            domain: cf.registry.domain.clone(),
            port: cf.registry.port,
            deploy: registry_host,
            tls: None,
            auth: cf.registry.auth.clone(),
        },
        container_runtime: cf.container_runtime.clone(),
        cluster_env: cf.env.clone(),
        host_env: host.env.clone(),
        hosts_entries: hosts_entries(cf, host, registry_host),
        plugins: plugins_for(cf, host),
        timeouts,
        watch: Default::default(),
        kubeadm: cf.kubeadm.clone(),
    }
}

/// `env` with `over` on top: a key in both keeps `over`'s value.
fn under(env: &env::Env, over: &env::Env) -> env::Env {
    let mut merged = env.clone();
    merged.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

/// The Plugin hooks in `host`'s scope, in name order.
pub(crate) fn plugins_for(cf: &Clusterfile, host: &HostSpec) -> Vec<plan::Plugin> {
    let mut plugins: Vec<plan::Plugin> = cf
        .plugins
        .iter()
        .filter(|p| p.applies_to(host))
        .map(|p| plan::Plugin {
            name: p.name.clone(),
            phases: p.phases.clone(),
            data: p.data.clone(),
        })
        .collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    plugins
}

/// The env clean scripts get on a host whose agent recorded none (an apply that failed
/// before its first step): what the Clusterfile alone determines, without the rootfs.
pub(crate) fn clean_env(cf: &Clusterfile, host: &HostSpec, facts: &Facts) -> env::Env {
    let registry_host = cf.is_registry_host(&host.ip);
    let inputs = plan_inputs(cf, host, facts, registry_host, Timeouts::default());
    // SvcCIDR was checked when the Clusterfile was parsed, so this cannot fail in practice;
    // fall back to the plain merge rather than refuse to clean.
    inputs
        .env_without_rootfs()
        .unwrap_or_else(|_| env::merge(&env::Env::new(), &cf.env, &host.env))
}

/// The IPs of the hosts that run the local registry (every master when `ha`, else master0).
#[cfg(test)]
pub(crate) fn registry_hosts(cf: &Clusterfile) -> Vec<String> {
    cf.registry_hosts().iter().map(|h| h.ip.clone()).collect()
}

/// The tagged `/etc/hosts` lines of a host: the registry domain, then `spec.hostAliases`.
///
/// A registry host resolves the domain to itself, so its own registry serves it and no
/// host depends on another for images it already has. Any other host gets one line per
/// registry host, master0 first; resolvers that read several addresses for one name (Go's,
/// used by containerd and docker, and glibc's `getaddrinfo`) then fall back to the next
/// registry host when one is down.
fn hosts_entries(cf: &Clusterfile, host: &HostSpec, registry_host: bool) -> Vec<HostsEntry> {
    let domain = vec![cf.registry.domain.clone()];
    let mut entries: Vec<HostsEntry> = if registry_host {
        vec![HostsEntry {
            ip: host.ip.clone(),
            names: domain,
        }]
    } else {
        cf.registry_hosts()
            .iter()
            .map(|h| HostsEntry {
                ip: h.ip.clone(),
                names: domain.clone(),
            })
            .collect()
    };
    entries.extend(cf.host_aliases.iter().map(|(ip, names)| HostsEntry {
        ip: ip.clone(),
        names: names.clone(),
    }));
    entries
}

#[cfg(test)]
mod tests;
