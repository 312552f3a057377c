//! The apply steps, in SPEC §5 order. Each step knows which host it applies to, how to hash
//! its inputs (`inputs`: so an unchanged step is skipped on re-apply) and how to run.

pub(crate) mod bin;
pub(crate) mod hosts_file;
mod inputs;
pub(crate) mod installed;
pub(crate) mod place;
pub(crate) mod registry;
pub(crate) mod registry_trust;
pub(crate) mod render;
pub(crate) mod scripts;
#[cfg(test)]
pub(crate) mod test_plan;
pub(crate) mod watched;

use crate::journal::Journal;
use crate::paths::ClusterPaths;
use crate::root::HostRoot;
use crate::sink::Sink;
use installer_proto::event::StepError;
use installer_proto::manifest::Entry;
use installer_proto::plan::{HookPhase, Plan, StepKind};
use installer_proto::runtime_scripts::install_candidates;

/// What a step needs while it runs.
pub(crate) struct Ctx<'a> {
    /// Host filesystem mapping.
    pub root: &'a HostRoot,
    /// The plan.
    pub plan: &'a Plan,
    /// The cluster's directories.
    pub paths: &'a ClusterPaths,
    /// The record of changes (written before each change).
    pub journal: &'a mut Journal,
    /// Where events go.
    pub sink: &'a dyn Sink,
    /// The previous watched step's after-state, when it ran right before this step.
    pub carry: &'a mut Option<watched::Carry>,
    /// The files still arriving, while this run receives them.
    pub incoming: Option<&'a crate::incoming::Arrivals>,
}

/// What a finished step wrote.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// A step's result.
pub(crate) type StepResult = Result<Written, StepError>;

/// Turns any displayable error into a step error without exit code or tail.
pub(crate) fn step_err(e: impl std::fmt::Display) -> StepError {
    StepError {
        message: e.to_string(),
        exit_code: None,
        tail: Vec::new(),
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Make the rootfs copy match the manifest.
    PlaceRootfs,
    /// Install `bin/*`.
    InstallBin,
    /// Render templates.
    RenderTemplates,
    /// Write the tagged `/etc/hosts` lines.
    HostsFile,
    /// Place the registry's CA, certificate and key.
    RegistryTrust,
    /// Run a rootfs script (path relative to the rootfs) with arguments.
    Script {
        /// `scripts/init-kube.sh`, …
        rel: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// Run a Plugin's shell text.
    Plugin {
        /// The text.
        data: String,
    },
    /// `init-registry.sh` (when present) or the agent's own registry start, then the wait.
    Registry {
        /// The script, when the rootfs has one.
        script: Option<String>,
    },
}

/// One step of a host's apply.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// Id in events and the journal (`init-kube`, `pre-init-host:disk`).
    pub id: String,
    /// Kind (orders steps; `stop_after` refers to it).
    pub kind: StepKind,
    /// What it does.
    pub action: Action,
}

/// The id of the container runtime step (whichever script it runs, but the legacy
/// `init.sh`, whose step is `init`).
pub(crate) const RUNTIME_STEP: &str = "init-container-runtime";

fn has(plan: &Plan, rel: &str) -> bool {
    plan.manifest.get(rel).is_some_and(Entry::is_file)
}

/// The steps of `plan`, in order. Steps that do not apply (no `bin/`, no such script, not a
/// registry host) are left out.
pub(crate) fn steps_for(plan: &Plan) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut push = |kind: StepKind, id: String, action: Action| {
        steps.push(Step { id, kind, action });
    };
    push(
        StepKind::PlaceRootfs,
        "place-rootfs".into(),
        Action::PlaceRootfs,
    );
    if bin::bin_files(plan).next().is_some() {
        push(
            StepKind::InstallBin,
            "install-bin".into(),
            Action::InstallBin,
        );
    }
    if render::templates(plan).next().is_some() {
        push(
            StepKind::RenderTemplates,
            "render-templates".into(),
            Action::RenderTemplates,
        );
    }
    if !plan.hosts_entries.is_empty() {
        push(StepKind::HostsFile, "hosts-file".into(), Action::HostsFile);
    }
    if plan.registry.tls.is_some() || plan.registry.auth.is_some() {
        push(
            StepKind::RegistryTrust,
            "registry-trust".into(),
            Action::RegistryTrust,
        );
    }
    let plugins = |phase: HookPhase| {
        let mut v: Vec<_> = plan
            .plugins
            .iter()
            .filter(|p| p.phases.contains(&phase))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    for p in plugins(HookPhase::PreInitHost) {
        push(
            StepKind::PreInitHost,
            format!("pre-init-host:{}", p.name),
            Action::Plugin {
                data: p.data.clone(),
            },
        );
    }
    let script = |name: &str| format!("scripts/{name}");
    let new_style = [
        "init-container-runtime.sh",
        "init-registry.sh",
        "init-kube.sh",
    ]
    .iter()
    .any(|s| has(plan, &script(s)));
    // The first of installer's, sealer v0.9's (`docker.sh`) and the legacy name. The
    // legacy init.sh does everything, so it is not taken for a layout that has the others.
    let runtime = plan.env.get("ContainerRuntime").map_or("", String::as_str);
    let installer = install_candidates(runtime)
        .into_iter()
        .filter(|name| name != "init.sh" || !new_style)
        .find(|name| has(plan, &script(name)));
    if let Some(name) = installer {
        let id = if name == "init.sh" {
            "init"
        } else {
            RUNTIME_STEP
        };
        push(
            StepKind::InitContainerRuntime,
            id.into(),
            Action::Script {
                rel: script(&name),
                args: Vec::new(),
            },
        );
    }
    if plan.registry.deploy {
        let rel = script("init-registry.sh");
        push(
            StepKind::InitRegistry,
            "init-registry".into(),
            Action::Registry {
                script: has(plan, &rel).then_some(rel),
            },
        );
    }
    if has(plan, &script("init-kube.sh")) {
        push(
            StepKind::InitKube,
            "init-kube".into(),
            Action::Script {
                rel: script("init-kube.sh"),
                args: Vec::new(),
            },
        );
    }
    if has(plan, &script("preHook.sh")) {
        push(
            StepKind::PreHook,
            "pre-hook".into(),
            Action::Script {
                rel: script("preHook.sh"),
                args: Vec::new(),
            },
        );
    }
    for p in plugins(HookPhase::PostInitHost) {
        push(
            StepKind::PostInitHost,
            format!("post-init-host:{}", p.name),
            Action::Plugin {
                data: p.data.clone(),
            },
        );
    }
    steps
}

impl Step {
    /// Why what this step left on the host is no longer there, if it is not: a re-apply
    /// runs a drifted step again even though its inputs did not change.
    pub(crate) fn drift(
        &self,
        root: &HostRoot,
        plan: &Plan,
        paths: &ClusterPaths,
        journal: &Journal,
    ) -> Option<String> {
        match &self.action {
            Action::PlaceRootfs => None,
            Action::InstallBin => bin::drift(root, plan, journal),
            Action::RenderTemplates => render::drift(paths, plan, journal),
            Action::HostsFile => hosts_file::drift(
                &hosts_file::hosts_path(root, journal.record.hosts.as_ref())
                    .unwrap_or_else(|_| root.path(hosts_file::HOSTS_FILE)),
                journal.record.hosts.as_ref(),
            ),
            Action::RegistryTrust => registry_trust::drift(root, plan, &paths.host_rootfs, journal),
            Action::Script { .. } | Action::Plugin { .. } | Action::Registry { .. } => {
                watched::drift(root, journal, &self.id)
            }
        }
    }

    /// Whether the step runs the rootfs's own code, watched by [`watched::run`].
    pub(crate) fn is_watched(&self) -> bool {
        matches!(
            self.action,
            Action::Script { .. } | Action::Plugin { .. } | Action::Registry { .. }
        )
    }

    /// Runs the step.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        match &self.action {
            Action::PlaceRootfs => place::run(ctx),
            Action::InstallBin => bin::run(ctx),
            Action::RenderTemplates => render::run(ctx),
            Action::HostsFile => hosts_file::run(ctx),
            Action::RegistryTrust => registry_trust::run(ctx),
            Action::Script { rel, args } => watched::run(ctx, &self.id, |ctx| {
                scripts::run_script(ctx, &self.id, rel, args)
            }),
            Action::Plugin { data } => watched::run(ctx, &self.id, |ctx| {
                scripts::run_plugin(ctx, &self.id, data)
            }),
            Action::Registry { script } => watched::run(ctx, &self.id, |ctx| {
                registry::run(ctx, &self.id, script.as_deref())
            }),
        }
    }
}
