//! Undo, from the host's journal alone, what apply did for a cluster (SPEC §6): plugin
//! `pre-clean-host` → `clean-kube.sh` → `sealer-registry` → the runtime's clean script →
//! what the rootfs's scripts changed (units stopped and disabled, files removed and
//! restored) → installed files (backups restored) and `/etc/hosts` lines →
//! `<dataRoot>/<cluster>` and the directories apply created → plugin `post-clean-host` →
//! the uploaded agent.
//!
//! Clean is a transaction. Each undo is written to the journal as it happens, so a clean
//! interrupted half-way is run again and finishes; a clean script that succeeded does not
//! run twice. Nothing of a person's is destroyed: a cluster directory without this product's
//! marker is left alone, and a file that changed since apply left it is kept and reported
//! (`--force` restores it anyway). Backups and the journal go only once everything was
//! undone; until then they stay, so nothing that could still be restored is lost. A second
//! clean after a complete one finds nothing and does nothing.

mod files;
mod uploads;
mod watched;

use crate::clusters::{self, ClusterRef};
use crate::command::RealRunner;
use crate::exec::{self, Job};
use crate::journal::Journal;
use crate::lock::HostLock;
use crate::owner::{self, Ownership};
use crate::paths::ClusterPaths;
use crate::root::HostRoot;
use crate::runtime::Runtime;
use crate::sink::Sink;
use crate::steps::{RUNTIME_STEP, scripts};
use installer_proto::env::Env;
use installer_proto::event::{Event, Outcome};
use installer_proto::plan::{HookPhase, Plugin, REGISTRY_CONTAINER};
use installer_proto::runtime_scripts::clean_candidates;
use std::path::Path;
use std::time::Duration;

/// What to clean.
#[derive(Debug, Clone)]
pub struct CleanRequest {
    /// Cluster name.
    pub cluster: String,
    /// Data root (host path).
    pub data_root: String,
    /// Keep `<dataRoot>/<cluster>/rootfs`.
    pub keep_rootfs: bool,
    /// `pre-clean-host` / `post-clean-host` hooks.
    pub plugins: Vec<Plugin>,
    /// Env for scripts when the journal has none.
    pub env: Env,
    /// Delete the agent's own executable at the end, when it is an uploaded one.
    pub remove_agent: bool,
    /// Restore and remove also what a person changed since apply.
    pub force: bool,
    /// Time limit per script.
    pub script_timeout: Duration,
}

/// The state of one clean while it runs.
pub(crate) struct Cleaner<'a> {
    pub(crate) root: &'a HostRoot,
    pub(crate) paths: ClusterPaths,
    pub(crate) sink: &'a dyn Sink,
    pub(crate) force: bool,
    env: Env,
    timeout: Duration,
    pub(crate) outcome: Outcome,
    /// Something recorded is still not undone: the journal and backups must stay so a
    /// later clean can finish.
    pub(crate) incomplete: bool,
}

impl Cleaner<'_> {
    pub(crate) fn undone(&mut self, what: String) {
        self.sink.event(Event::Undone { what });
    }

    /// Reports something not undone that stays recorded (a later clean retries it).
    pub(crate) fn pending(&mut self, what: String, reason: String) {
        self.incomplete = true;
        self.not_undone(what, reason);
    }

    /// Reports something that cannot be undone at all (it leaves the record).
    pub(crate) fn not_undone(&mut self, what: String, reason: String) {
        self.sink.event(Event::NotUndone {
            what: what.clone(),
            reason,
        });
        self.outcome.not_undone.push(what);
    }

    fn run(
        &mut self,
        journal: Option<&mut Journal>,
        step: &str,
        argv: Vec<String>,
        cwd: &Path,
    ) -> bool {
        let log = std::env::temp_dir().join(format!(
            "installer-clean-{}-{}.log",
            std::process::id(),
            step.replace([':', '/'], "_")
        ));
        let job = Job {
            step: step.to_string(),
            argv,
            cwd: cwd.to_path_buf(),
            env: scripts::script_env(&self.env, self.root),
            timeout: self.timeout,
            log: log.clone(),
        };
        let result = match journal {
            Some(j) => scripts::run_tracked(j, job, self.sink),
            None => exec::run(&job, self.sink, &mut |_| {}),
        };
        let _ = std::fs::remove_file(&log);
        match result {
            Ok(()) => {
                self.outcome.ran += 1;
                self.undone(step.to_string());
                true
            }
            Err(e) => {
                self.pending(step.to_string(), e.message);
                false
            }
        }
    }

    fn hooks(&mut self, plugins: &[Plugin], phase: HookPhase, cwd: &Path) {
        let mut list: Vec<&Plugin> = plugins
            .iter()
            .filter(|p| p.phases.contains(&phase))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        for p in list {
            let argv = vec!["/bin/sh".into(), "-c".into(), p.data.clone()];
            self.run(None, &format!("{}:{}", phase.as_str(), p.name), argv, cwd);
        }
    }

    /// Runs a rootfs clean script once: only when its init step ran, and not again after
    /// it succeeded in an earlier, interrupted clean.
    fn script(&mut self, journal: &mut Journal, init_ids: &[&str], name: &str) {
        let ran = init_ids
            .iter()
            .any(|id| journal.record.started.contains(*id));
        let phase = name.trim_end_matches(".sh").to_string();
        let path = self.paths.rootfs.join("scripts").join(name);
        if !ran || !path.is_file() || journal.record.cleaned.contains(&phase) {
            return;
        }
        let argv = exec::shell_for(&path);
        let cwd = self.paths.rootfs.join("scripts");
        if self.run(Some(journal), &phase, argv, &cwd) {
            self.mark(journal, &phase);
        }
    }

    /// Records a finished clean phase.
    fn mark(&mut self, journal: &mut Journal, phase: &str) {
        if let Err(e) = journal.update(|r| {
            r.cleaned.insert(phase.to_string());
        }) {
            self.pending(phase.to_string(), e.to_string());
        }
    }
}

/// Cleans `req.cluster`; `Err` only when clean could not even start (lock held, journal
/// unreadable).
pub fn clean(
    root: &HostRoot,
    req: &CleanRequest,
    sink: &dyn Sink,
) -> Result<Outcome, crate::error::ApplyError> {
    let paths = ClusterPaths::new(root, &req.data_root, &req.cluster);
    let mut cleaner = Cleaner {
        root,
        paths: paths.clone(),
        sink,
        force: req.force,
        env: req.env.clone(),
        timeout: req.script_timeout,
        outcome: Outcome {
            ok: true,
            ..Outcome::default()
        },
        incomplete: false,
    };
    let me = ClusterRef {
        cluster: req.cluster.clone(),
        data_root: req.data_root.clone(),
    };
    let lock = HostLock::take(root, &format!("clean of cluster {}", req.cluster))?;
    let created = match owner::check(&paths, &req.cluster) {
        Ownership::Ours { created } => created,
        Ownership::Absent => {
            // Nothing recorded: a second clean, or a host apply never reached.
            let _ = clusters::deregister(root, &me);
            drop(lock);
            uploads::finish_agent(&mut cleaner, req);
            return Ok(cleaner.outcome);
        }
        Ownership::Empty | Ownership::Foreign(_) => {
            sink.event(Event::Warning {
                message: format!(
                    "{}: not created by installer for cluster {:?} (no {} marker); nothing recorded, nothing touched",
                    paths.host_cluster_dir,
                    req.cluster,
                    owner::MARKER
                ),
            });
            return Ok(cleaner.outcome);
        }
    };
    let mut journal = Journal::open(&paths.state, &req.cluster, &req.data_root)?;
    crate::recover::after_crash(root, &paths, &mut journal)?;
    // From here on the host is being taken apart: a later apply runs every step again.
    journal.update(|r| {
        r.steps.clear();
        r.failed_step = None;
    })?;
    if !journal.record.env.is_empty() {
        cleaner.env = journal.record.env.clone();
    }
    let rootfs_cwd = if paths.rootfs.is_dir() {
        paths.rootfs.clone()
    } else {
        root.path("/")
    };
    cleaner.hooks(&req.plugins, HookPhase::PreCleanHost, &rootfs_cwd);
    cleaner.script(&mut journal, &["init-kube"], "clean-kube.sh");
    remove_registry(&mut cleaner, &mut journal);
    // The runtime's clean: the first that exists of installer's, sealer v0.9's
    // (`uninstall-docker.sh`) and the legacy name, whichever script installed it.
    let runtime = cleaner
        .env
        .get("ContainerRuntime")
        .cloned()
        .unwrap_or_default();
    if let Some(name) = clean_candidates(&runtime)
        .into_iter()
        .find(|name| paths.rootfs.join("scripts").join(name).is_file())
    {
        cleaner.script(&mut journal, &[RUNTIME_STEP, "init"], &name);
    }
    watched::undo(&mut cleaner, &mut journal);
    files::undo_installed(&mut cleaner, &mut journal);
    files::undo_hosts(&mut cleaner, &mut journal);
    files::remove_published(&mut cleaner, &mut journal, req.keep_rootfs);
    if !req.keep_rootfs {
        files::check_rendered(&mut cleaner, &journal);
    }
    if cleaner.incomplete {
        sink.event(Event::Warning {
            message: format!(
                "clean did not finish: the record and backups stay in {}/state; run clean again (with --force to restore what was changed since apply)",
                paths.host_cluster_dir
            ),
        });
    } else {
        let created_dirs = journal.record.created_dirs.clone();
        drop(journal);
        files::remove_cluster_dir(&mut cleaner, created, req.keep_rootfs);
        if req.keep_rootfs {
            // The kept rootfs still sits in directories apply created: a fresh record
            // keeps them, so the clean that removes the rootfs removes them too.
            files::remember_created_dirs(&mut cleaner, req, &created_dirs);
        }
        // Before the created directories: the host's list may be the last thing in one.
        if let Err(e) = clusters::deregister(root, &me) {
            cleaner.not_undone(clusters::HOST_STATE_DIR.into(), e.to_string());
        }
        files::remove_created_dirs(&mut cleaner, &created_dirs, req.keep_rootfs);
    }
    drop(lock);
    cleaner.hooks(&req.plugins, HookPhase::PostCleanHost, &root.path("/"));
    if !cleaner.incomplete {
        uploads::finish_agent(&mut cleaner, req);
    }
    cleaner.outcome.ok = cleaner.outcome.not_undone.is_empty();
    Ok(cleaner.outcome)
}

/// Stops and removes `sealer-registry` when apply (or `init-registry.sh`) started it.
fn remove_registry(cleaner: &mut Cleaner<'_>, journal: &mut Journal) {
    const PHASE: &str = "registry";
    if !journal.record.registry_started
        || !cleaner.root.is_real()
        || journal.record.cleaned.contains(PHASE)
    {
        return;
    }
    let mut ok = true;
    for rt in Runtime::all() {
        match rt.remove(&RealRunner, REGISTRY_CONTAINER) {
            Ok(true) => cleaner.undone(format!("container {REGISTRY_CONTAINER}")),
            Ok(false) => {}
            Err(e) => {
                ok = false;
                cleaner.pending(format!("container {REGISTRY_CONTAINER}"), e);
            }
        }
    }
    if ok {
        cleaner.mark(journal, PHASE);
    }
}
