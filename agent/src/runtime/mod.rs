//! The host's container runtime, for the one container the agent itself manages:
//! `sealer-registry`. Docker and nerdctl share a command line; containerd's `ctr` differs.
//! The questions (is it running, does it exist, its last log lines) and the removal run
//! through a [`CommandRunner`] with `PATH` set to the scripts' `PATH`; the start commands are
//! only built here, and the registry step runs them as jobs of the step (logged, timed out,
//! killed with it). No command line carries a secret: the registry runs without credentials.

use crate::command::CommandRunner;
use crate::exec::SCRIPT_PATH;
use std::path::{Path, PathBuf};

/// The containerd namespace the agent uses with `ctr`.
pub(crate) const CTR_NAMESPACE: &str = "default";

/// How the registry container is started: the image (a docker-save tar and the name in it),
/// its data directory (mounted at `/var/lib/registry`), its environment (`KEY=VALUE`, the
/// registry's own settings: paths and addresses, never a secret) and the files it reads
/// (host path, container path), mounted read-only.
pub(crate) struct RegistryRun<'a> {
    /// The image tar.
    pub tar: &'a Path,
    /// The image name the tar holds.
    pub image: &'a str,
    /// The registry's storage.
    pub data: &'a Path,
    /// `KEY=VALUE` settings.
    pub env: Vec<String>,
    /// Read-only mounts: (host path, container path).
    pub read_only: Vec<(PathBuf, &'static str)>,
}

/// A runtime CLI found on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// `docker`.
    Docker(PathBuf),
    /// `nerdctl`.
    Nerdctl(PathBuf),
    /// `ctr`.
    Ctr(PathBuf),
}

/// Finds `name` on the script `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    which_on(SCRIPT_PATH, name)
}

/// Finds `name` in the `:`-separated directories of `search_path`.
fn which_on(search_path: &str, name: &str) -> Option<PathBuf> {
    search_path
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The runtime CLIs present, by name.
pub(crate) fn present() -> Vec<String> {
    ["docker", "nerdctl", "ctr"]
        .into_iter()
        .filter(|n| which(n).is_some())
        .map(String::from)
        .collect()
}

/// Runs `program args`; `None` when it could not be run at all.
fn quiet(cmd: &dyn CommandRunner, program: &str, args: &[&str]) -> Option<crate::command::Ran> {
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    cmd.run(&argv, &[("PATH", SCRIPT_PATH)]).ok()
}

impl Runtime {
    /// The first runtime found, in order docker, nerdctl, ctr.
    pub(crate) fn detect() -> Option<Runtime> {
        Runtime::all().into_iter().next()
    }

    /// Every runtime found.
    pub(crate) fn all() -> Vec<Runtime> {
        Runtime::all_on(SCRIPT_PATH)
    }

    /// Every runtime found on `search_path` (`:`-separated), in order docker, nerdctl, ctr.
    fn all_on(search_path: &str) -> Vec<Runtime> {
        let find = |name: &str| which_on(search_path, name);
        let mut v = Vec::new();
        if let Some(p) = find("docker") {
            v.push(Runtime::Docker(p));
        }
        if let Some(p) = find("nerdctl") {
            v.push(Runtime::Nerdctl(p));
        }
        if let Some(p) = find("ctr") {
            v.push(Runtime::Ctr(p));
        }
        v
    }

    fn program(&self) -> String {
        match self {
            Runtime::Docker(p) | Runtime::Nerdctl(p) | Runtime::Ctr(p) => p.display().to_string(),
        }
    }

    /// Whether a container `name` runs.
    pub(crate) fn is_running(&self, cmd: &dyn CommandRunner, name: &str) -> bool {
        let program = self.program();
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => quiet(
                cmd,
                &program,
                &["inspect", "-f", "{{.State.Running}}", name],
            )
            .is_some_and(|o| o.success() && o.stdout.trim() == "true"),
            Runtime::Ctr(_) => quiet(cmd, &program, &["-n", CTR_NAMESPACE, "tasks", "ls"])
                .is_some_and(|o| {
                    o.stdout.lines().any(|l| {
                        let mut cols = l.split_whitespace();
                        cols.next() == Some(name) && l.contains("RUNNING")
                    })
                }),
        }
    }

    /// Whether a container `name` exists (running or not).
    pub(crate) fn has_container(&self, cmd: &dyn CommandRunner, name: &str) -> bool {
        let program = self.program();
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                quiet(cmd, &program, &["inspect", name]).is_some_and(|o| o.success())
            }
            Runtime::Ctr(_) => quiet(
                cmd,
                &program,
                &["-n", CTR_NAMESPACE, "containers", "info", name],
            )
            .is_some_and(|o| o.success()),
        }
    }

    /// The commands that bring the registry container up from the image tar: none when it
    /// runs already.
    pub(crate) fn commands_to_start(
        &self,
        cmd: &dyn CommandRunner,
        run: &RegistryRun<'_>,
    ) -> Vec<Vec<String>> {
        if self.is_running(cmd, REGISTRY) {
            return Vec::new();
        }
        self.start_commands(run)
    }

    /// The commands that load the image tar and start the registry container.
    pub(crate) fn start_commands(&self, run: &RegistryRun<'_>) -> Vec<Vec<String>> {
        let p = self.program();
        let tar = run.tar.display().to_string();
        let data = run.data.display().to_string();
        let mut argv: Vec<String> = Vec::new();
        let mut push = |v: &[&str]| argv.extend(v.iter().map(|x| x.to_string()));
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                push(&[&p, "run", "-d", "--name", REGISTRY, "--restart", "always"]);
                push(&["--network", "host"]);
                for e in &run.env {
                    push(&["-e", e]);
                }
                push(&["-v", &format!("{data}:/var/lib/registry")]);
                for (src, dst) in &run.read_only {
                    push(&["-v", &format!("{}:{dst}:ro", src.display())]);
                }
                push(&[run.image]);
                vec![
                    vec![p.clone(), "load".into(), "-i".into(), tar],
                    vec![p.clone(), "rm".into(), "-f".into(), REGISTRY.into()],
                    argv,
                ]
            }
            Runtime::Ctr(_) => {
                push(&[&p, "-n", CTR_NAMESPACE, "run", "-d", "--net-host"]);
                for e in &run.env {
                    push(&["--env", e]);
                }
                push(&[
                    "--mount",
                    &format!("type=bind,src={data},dst=/var/lib/registry,options=rbind:rw"),
                ]);
                for (src, dst) in &run.read_only {
                    push(&[
                        "--mount",
                        &format!("type=bind,src={},dst={dst},options=rbind:ro", src.display()),
                    ]);
                }
                // ctr stores (and runs) images by their fully qualified name.
                push(&[&qualified(run.image), REGISTRY]);
                vec![
                    vec![
                        p.clone(),
                        "-n".into(),
                        CTR_NAMESPACE.into(),
                        "images".into(),
                        "import".into(),
                        tar,
                    ],
                    argv,
                ]
            }
        }
    }

    /// Stops and removes container `name`; `Ok(true)` when there was one.
    pub(crate) fn remove(&self, cmd: &dyn CommandRunner, name: &str) -> Result<bool, String> {
        if !self.has_container(cmd, name) {
            return Ok(false);
        }
        let program = self.program();
        let ok = match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                quiet(cmd, &program, &["rm", "-f", name]).is_some_and(|o| o.success())
            }
            Runtime::Ctr(_) => {
                let _ = quiet(
                    cmd,
                    &program,
                    &["-n", CTR_NAMESPACE, "tasks", "kill", "-s", "SIGKILL", name],
                );
                // The task needs a moment to die before it can be deleted.
                for _ in 0..50 {
                    if quiet(
                        cmd,
                        &program,
                        &["-n", CTR_NAMESPACE, "tasks", "rm", "-f", name],
                    )
                    .is_some_and(|o| o.success())
                    {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                quiet(
                    cmd,
                    &program,
                    &["-n", CTR_NAMESPACE, "containers", "rm", name],
                )
                .is_some_and(|o| o.success())
            }
        };
        if ok {
            Ok(true)
        } else {
            Err(format!(
                "{} could not remove container {name}",
                self.program()
            ))
        }
    }

    /// The last `n` log lines of container `name` (empty where the runtime keeps none).
    pub(crate) fn logs_tail(&self, cmd: &dyn CommandRunner, name: &str, n: usize) -> Vec<String> {
        let program = self.program();
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                let Some(o) = quiet(cmd, &program, &["logs", "--tail", &n.to_string(), name])
                else {
                    return Vec::new();
                };
                let mut text = o.stdout;
                text.push_str(&o.stderr);
                text.lines().map(String::from).collect()
            }
            Runtime::Ctr(_) => {
                vec!["(ctr keeps no container logs; see the registry's output on the host)".into()]
            }
        }
    }
}

const REGISTRY: &str = installer_proto::plan::REGISTRY_CONTAINER;

/// An image name as containerd stores it: `registry:2` is `docker.io/library/registry:2`.
pub(crate) fn qualified(name: &str) -> String {
    match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            name.to_string()
        }
        Some(_) => format!("docker.io/{name}"),
    }
}

#[cfg(test)]
mod tests;
