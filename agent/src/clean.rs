//! Undo, from the host's journal alone, what apply did for a cluster (SPEC §6): plugin
//! `pre-clean-host` → `clean-kube.sh` → `sealer-registry` → `clean-container-runtime.sh`
//! (legacy `clean.sh`) → installed files (backups restored) and `/etc/hosts` lines →
//! `<dataRoot>/<cluster>` (or all but the rootfs) and the directories apply created →
//! plugin `post-clean-host` → the uploaded agent. Clean scripts run only when the rootfs is
//! still there and their init step ran. Whatever cannot be undone is reported by name; a
//! second clean finds nothing recorded and does nothing.

use crate::exec::{self, Job};
use crate::journal::Journal;
use crate::lock::ClusterLock;
use crate::paths::ClusterPaths;
use crate::root::HostRoot;
use crate::runtime::Runtime;
use crate::sink::Sink;
use crate::steps::{hosts_file, scripts};
use installer_proto::env::Env;
use installer_proto::event::{Event, Outcome};
use installer_proto::plan::{HookPhase, Plugin, REGISTRY_CONTAINER};
use std::fs;
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
    /// Time limit per script.
    pub script_timeout: Duration,
}

struct Cleaner<'a> {
    root: &'a HostRoot,
    paths: ClusterPaths,
    sink: &'a dyn Sink,
    env: Env,
    timeout: Duration,
    outcome: Outcome,
}

impl Cleaner<'_> {
    fn undone(&mut self, what: String) {
        self.sink.event(Event::Undone { what });
    }

    fn not_undone(&mut self, what: String, reason: String) {
        self.sink.event(Event::NotUndone {
            what: what.clone(),
            reason,
        });
        self.outcome.not_undone.push(what);
    }

    fn run(&mut self, step: &str, argv: Vec<String>, cwd: &Path) {
        let log_dir = std::env::temp_dir();
        let job = Job {
            step: step.to_string(),
            argv,
            cwd: cwd.to_path_buf(),
            env: scripts::script_env(&self.env, self.root),
            timeout: self.timeout,
            log: log_dir.join(format!(
                "installer-clean-{}-{}.log",
                std::process::id(),
                step.replace([':', '/'], "_")
            )),
        };
        let result = exec::run(&job, self.sink);
        let _ = fs::remove_file(&job.log);
        match result {
            Ok(()) => {
                self.outcome.ran += 1;
                self.undone(step.to_string());
            }
            Err(e) => self.not_undone(step.to_string(), e.message),
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
            self.run(&format!("{}:{}", phase.as_str(), p.name), argv, cwd);
        }
    }

    fn script(&mut self, journal: &Journal, init_ids: &[&str], name: &str) {
        let ran = init_ids
            .iter()
            .any(|id| journal.record.started.contains(*id));
        let path = self.paths.rootfs.join("scripts").join(name);
        if !ran || !path.is_file() {
            return;
        }
        let argv = exec::shell_for(&path);
        let cwd = self.paths.rootfs.join("scripts");
        self.run(name.trim_end_matches(".sh"), argv, &cwd);
    }
}

/// Cleans `req.cluster`; `Err` only when clean could not even start (lock held, journal
/// unreadable).
pub fn clean(
    root: &HostRoot,
    req: &CleanRequest,
    sink: &dyn Sink,
) -> Result<Outcome, crate::apply::ApplyError> {
    let paths = ClusterPaths::new(root, &req.data_root, &req.cluster);
    let mut cleaner = Cleaner {
        root,
        paths: paths.clone(),
        sink,
        env: req.env.clone(),
        timeout: req.script_timeout,
        outcome: Outcome {
            ok: true,
            ..Outcome::default()
        },
    };
    if !paths.cluster_dir.exists() {
        // Nothing recorded: a second clean, or a host apply never reached.
        finish_agent(&mut cleaner, req);
        return Ok(cleaner.outcome);
    }
    let lock = ClusterLock::take(&paths.lock, &req.cluster)?;
    let journal = Journal::load(&paths.state)?;
    let rootfs_cwd = if paths.rootfs.is_dir() {
        paths.rootfs.clone()
    } else {
        root.path("/")
    };
    if let Some(j) = &journal
        && !j.record.env.is_empty()
    {
        cleaner.env = j.record.env.clone();
    }
    cleaner.hooks(&req.plugins, HookPhase::PreCleanHost, &rootfs_cwd);
    if let Some(journal) = &journal {
        cleaner.script(journal, &["init-kube"], "clean-kube.sh");
        if journal.record.registry_started && root.is_real() {
            for rt in Runtime::all() {
                match rt.remove(REGISTRY_CONTAINER) {
                    Ok(true) => cleaner.undone(format!("container {REGISTRY_CONTAINER}")),
                    Ok(false) => {}
                    Err(e) => cleaner.not_undone(format!("container {REGISTRY_CONTAINER}"), e),
                }
            }
        }
        let has_new_style = cleaner
            .paths
            .rootfs
            .join("scripts/clean-container-runtime.sh")
            .is_file();
        if has_new_style {
            cleaner.script(
                journal,
                &["init-container-runtime", "init"],
                "clean-container-runtime.sh",
            );
        } else {
            cleaner.script(journal, &["init", "init-container-runtime"], "clean.sh");
        }
        undo_files(&mut cleaner, journal);
    }
    // The state goes with the cluster directory; the rootfs stays when asked to.
    let created: Vec<String> = journal
        .as_ref()
        .map(|j| j.record.created_dirs.clone())
        .unwrap_or_default();
    remove_cluster_dir(&mut cleaner, &paths, req.keep_rootfs);
    drop(lock);
    for dir in created.iter().rev() {
        let real = root.path(dir);
        if req.keep_rootfs && paths.rootfs.starts_with(&real) {
            continue;
        }
        match fs::remove_dir(&real) {
            Ok(()) => cleaner.undone(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => cleaner.not_undone(dir.clone(), format!("not removed: {e}")),
        }
    }
    cleaner.hooks(&req.plugins, HookPhase::PostCleanHost, &root.path("/"));
    finish_agent(&mut cleaner, req);
    cleaner.outcome.ok = cleaner.outcome.not_undone.is_empty();
    Ok(cleaner.outcome)
}

fn undo_files(cleaner: &mut Cleaner<'_>, journal: &Journal) {
    let backup_dir = journal.backup_dir();
    for (host_path, installed) in journal.record.installed.iter().rev() {
        let target = cleaner.root.path(host_path);
        let result = match &installed.backup {
            Some(name) => crate::fsutil::copy_atomic(&backup_dir.join(name), &target)
                .map(|_| format!("{host_path} (restored the file it replaced)")),
            None => crate::fsutil::remove_file_if_exists(&target).map(|_| host_path.clone()),
        };
        match result {
            Ok(what) => cleaner.undone(what),
            Err(e) => cleaner.not_undone(host_path.clone(), e.to_string()),
        }
    }
    if let Some(hosts) = &journal.record.hosts {
        let path = cleaner.root.path(hosts_file::HOSTS_FILE);
        match hosts_file::undo(&path, hosts) {
            Ok(true) => cleaner.undone(format!(
                "{} lines tagged {}",
                hosts_file::HOSTS_FILE,
                installer_proto::plan::HOSTS_TAG
            )),
            Ok(false) => {}
            Err(e) => cleaner.not_undone(hosts_file::HOSTS_FILE.into(), e.to_string()),
        }
    }
}

fn remove_cluster_dir(cleaner: &mut Cleaner<'_>, paths: &ClusterPaths, keep_rootfs: bool) {
    let result = if keep_rootfs {
        fs::read_dir(&paths.cluster_dir).and_then(|items| {
            for item in items.flatten() {
                let p = item.path();
                if p == paths.rootfs {
                    continue;
                }
                if item.file_type()?.is_dir() {
                    fs::remove_dir_all(&p)?;
                } else {
                    fs::remove_file(&p)?;
                }
            }
            Ok(())
        })
    } else {
        fs::remove_dir_all(&paths.cluster_dir)
    };
    match result {
        Ok(()) => cleaner.undone(if keep_rootfs {
            format!("{} (rootfs kept)", paths.host_cluster_dir)
        } else {
            paths.host_cluster_dir.clone()
        }),
        Err(e) => cleaner.not_undone(paths.host_cluster_dir.clone(), e.to_string()),
    }
}

/// Deletes the running agent binary when the controller uploaded it (and the upload
/// directories when they are left empty).
fn finish_agent(cleaner: &mut Cleaner<'_>, req: &CleanRequest) {
    if !req.remove_agent {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let uploaded = exe
        .parent()
        .is_some_and(|d| d.ends_with(installer_proto::plan::AGENT_UPLOAD_DIR));
    if !uploaded {
        return;
    }
    // Every build the controller uploaded lives here; earlier builds go too.
    let builds: Vec<std::path::PathBuf> = exe
        .parent()
        .and_then(|d| fs::read_dir(d).ok())
        .map(|items| {
            items
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("installer-agent-"))
                })
                .collect()
        })
        .unwrap_or_default();
    for build in builds {
        match fs::remove_file(&build) {
            Ok(()) => cleaner.undone(build.display().to_string()),
            Err(e) => cleaner.not_undone(build.display().to_string(), e.to_string()),
        }
    }
    if let Some(agent_dir) = exe.parent() {
        let _ = fs::remove_dir(agent_dir);
        if let Some(top) = agent_dir.parent() {
            let _ = fs::remove_dir(top);
        }
    }
}
