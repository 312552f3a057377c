//! The host's container runtime, for the one container the agent itself manages:
//! `sealer-registry`. Docker and nerdctl share a command line; containerd's `ctr` differs.

use crate::exec::SCRIPT_PATH;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The containerd namespace the agent uses with `ctr`.
pub const CTR_NAMESPACE: &str = "default";

/// A runtime CLI found on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `docker`.
    Docker(PathBuf),
    /// `nerdctl`.
    Nerdctl(PathBuf),
    /// `ctr`.
    Ctr(PathBuf),
}

/// Finds `name` on the script `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    SCRIPT_PATH
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The runtime CLIs present, by name.
pub fn present() -> Vec<String> {
    ["docker", "nerdctl", "ctr"]
        .into_iter()
        .filter(|n| which(n).is_some())
        .map(String::from)
        .collect()
}

fn quiet(program: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new(program)
        .args(args)
        .env("PATH", SCRIPT_PATH)
        .stdin(Stdio::null())
        .output()
        .ok()
}

impl Runtime {
    /// The first runtime found, in order docker, nerdctl, ctr.
    pub fn detect() -> Option<Runtime> {
        Runtime::all().into_iter().next()
    }

    /// Every runtime found.
    pub fn all() -> Vec<Runtime> {
        let mut v = Vec::new();
        if let Some(p) = which("docker") {
            v.push(Runtime::Docker(p));
        }
        if let Some(p) = which("nerdctl") {
            v.push(Runtime::Nerdctl(p));
        }
        if let Some(p) = which("ctr") {
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
    pub fn is_running(&self, name: &str) -> bool {
        let program = PathBuf::from(self.program());
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                quiet(&program, &["inspect", "-f", "{{.State.Running}}", name]).is_some_and(|o| {
                    o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true"
                })
            }
            Runtime::Ctr(_) => {
                quiet(&program, &["-n", CTR_NAMESPACE, "tasks", "ls"]).is_some_and(|o| {
                    String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                        let mut cols = l.split_whitespace();
                        cols.next() == Some(name) && l.contains("RUNNING")
                    })
                })
            }
        }
    }

    /// Whether a container `name` exists (running or not).
    pub fn has_container(&self, name: &str) -> bool {
        let program = PathBuf::from(self.program());
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                quiet(&program, &["inspect", name]).is_some_and(|o| o.status.success())
            }
            Runtime::Ctr(_) => quiet(&program, &["-n", CTR_NAMESPACE, "containers", "info", name])
                .is_some_and(|o| o.status.success()),
        }
    }

    /// The commands that load the image tar and start the registry container.
    pub fn start_commands(
        &self,
        tar: &Path,
        image: &str,
        data: &Path,
        addr_env: &str,
    ) -> Vec<Vec<String>> {
        let p = self.program();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let tar = tar.display().to_string();
        let data = data.display().to_string();
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => vec![
                s(&[&p, "load", "-i", &tar]),
                s(&[&p, "rm", "-f", REGISTRY]),
                s(&[
                    &p,
                    "run",
                    "-d",
                    "--name",
                    REGISTRY,
                    "--restart",
                    "always",
                    "--network",
                    "host",
                    "-e",
                    addr_env,
                    "-v",
                    &format!("{data}:/var/lib/registry"),
                    image,
                ]),
            ],
            Runtime::Ctr(_) => vec![
                s(&[&p, "-n", CTR_NAMESPACE, "images", "import", &tar]),
                // ctr stores (and runs) images by their fully qualified name.
                s(&[
                    &p,
                    "-n",
                    CTR_NAMESPACE,
                    "run",
                    "-d",
                    "--net-host",
                    "--env",
                    addr_env,
                    "--mount",
                    &format!("type=bind,src={data},dst=/var/lib/registry,options=rbind:rw"),
                    &qualified(image),
                    REGISTRY,
                ]),
            ],
        }
    }

    /// Stops and removes container `name`; `Ok(true)` when there was one.
    pub fn remove(&self, name: &str) -> Result<bool, String> {
        if !self.has_container(name) {
            return Ok(false);
        }
        let program = PathBuf::from(self.program());
        let ok = match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                quiet(&program, &["rm", "-f", name]).is_some_and(|o| o.status.success())
            }
            Runtime::Ctr(_) => {
                let _ = quiet(
                    &program,
                    &["-n", CTR_NAMESPACE, "tasks", "kill", "-s", "SIGKILL", name],
                );
                // The task needs a moment to die before it can be deleted.
                for _ in 0..50 {
                    if quiet(&program, &["-n", CTR_NAMESPACE, "tasks", "rm", "-f", name])
                        .is_some_and(|o| o.status.success())
                    {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                quiet(&program, &["-n", CTR_NAMESPACE, "containers", "rm", name])
                    .is_some_and(|o| o.status.success())
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
    pub fn logs_tail(&self, name: &str, n: usize) -> Vec<String> {
        let program = PathBuf::from(self.program());
        match self {
            Runtime::Docker(_) | Runtime::Nerdctl(_) => {
                let Some(o) = quiet(&program, &["logs", "--tail", &n.to_string(), name]) else {
                    return Vec::new();
                };
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
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
pub fn qualified(name: &str) -> String {
    match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            name.to_string()
        }
        Some(_) => format!("docker.io/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_qualified_as_containerd_stores_them() {
        assert_eq!(
            super::qualified("registry:2"),
            "docker.io/library/registry:2"
        );
        assert_eq!(super::qualified("me/registry:2"), "docker.io/me/registry:2");
        assert_eq!(
            super::qualified("sea.hub:5000/registry:2"),
            "sea.hub:5000/registry:2"
        );
    }
}
