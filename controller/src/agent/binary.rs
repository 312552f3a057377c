//! Finding the agent build for a host's architecture (SPEC §8).
//!
//! The controller looks in one directory: `--agent-dir DIR` (or `INSTALLER_AGENT_DIR`), else
//! the directory the `installer` executable is in, else `<that dir>/../lib/installer`. Every
//! ELF file there named `installer-agent` or `installer-agent-<anything>` is a candidate, and
//! its ELF header — not its name — says which machine it is for. A release ships
//! `installer-agent-x86_64` and `installer-agent-aarch64` next to `installer`.

use installer_proto::elf::{ElfMachine, elf_machine_of};
use installer_proto::manifest::sha256_file;
use installer_proto::plan::AGENT_UPLOAD_DIR;
use std::path::{Path, PathBuf};

/// One agent build.
#[derive(Clone, Debug)]
pub struct AgentBuild {
    /// Where it is on the controller.
    pub path: PathBuf,
    /// Its SHA-256 (lowercase hex).
    pub sha256: String,
    /// The machine it runs on.
    pub machine: ElfMachine,
}

impl AgentBuild {
    /// Where it goes on a host, relative to the login user's home.
    pub fn remote_rel_path(&self) -> String {
        format!("{AGENT_UPLOAD_DIR}/installer-agent-{}", &self.sha256[..16])
    }
}

/// The agent builds found.
#[derive(Clone, Debug)]
pub struct AgentBuilds {
    builds: Vec<AgentBuild>,
    searched: Vec<PathBuf>,
}

/// Why no usable agent build was found.
#[derive(Debug, thiserror::Error)]
pub enum AgentBuildError {
    /// No build for a host's architecture.
    #[error(
        "no installer-agent build for {arch} in {searched}; put a static agent built for {arch} there as installer-agent-{arch} (or point --agent-dir at a directory that has one)"
    )]
    Missing {
        /// The host's `uname -m`.
        arch: String,
        /// The directories searched.
        searched: String,
    },
    /// Reading a candidate failed.
    #[error("reading agent build {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl AgentBuilds {
    /// Looks for builds in `dir` when given, else next to the running executable.
    pub fn discover(dir: Option<&Path>) -> Result<AgentBuilds, AgentBuildError> {
        let dirs: Vec<PathBuf> = match dir {
            Some(d) => vec![d.to_path_buf()],
            None => {
                let exe_dir = std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf));
                match exe_dir {
                    Some(d) => vec![d.clone(), d.join("../lib/installer")],
                    None => vec![],
                }
            }
        };
        let mut builds = Vec::new();
        for dir in &dirs {
            let Ok(items) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<PathBuf> = items
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n == "installer-agent" || n.starts_with("installer-agent-")
                    })
                })
                .collect();
            names.sort();
            for path in names {
                if !path.is_file() {
                    continue;
                }
                let io = |source| AgentBuildError::Io {
                    path: path.clone(),
                    source,
                };
                let Some(machine) = elf_machine_of(&path).map_err(io)? else {
                    continue;
                };
                let sha256 = sha256_file(&path).map_err(io)?;
                builds.push(AgentBuild {
                    path,
                    sha256,
                    machine,
                });
            }
            if !builds.is_empty() {
                break;
            }
        }
        Ok(AgentBuilds {
            builds,
            searched: dirs,
        })
    }

    /// The build for a host reporting `uname -m` = `arch`.
    pub fn for_arch(&self, arch: &str) -> Result<&AgentBuild, AgentBuildError> {
        self.builds
            .iter()
            .find(|b| b.machine.runs_on(arch))
            .ok_or_else(|| AgentBuildError::Missing {
                arch: arch.to_string(),
                searched: self
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::elf::header_for as elf;

    #[test]
    fn builds_are_chosen_by_elf_machine_not_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("installer-agent-x86_64"), elf(183)).unwrap();
        std::fs::write(dir.path().join("installer-agent-other"), elf(62)).unwrap();
        std::fs::write(dir.path().join("installer-agent.sh"), b"#!/bin/sh").unwrap();
        std::fs::write(dir.path().join("unrelated"), elf(62)).unwrap();
        let builds = AgentBuilds::discover(Some(dir.path())).unwrap();
        assert!(
            builds
                .for_arch("x86_64")
                .unwrap()
                .path
                .ends_with("installer-agent-other")
        );
        assert!(
            builds
                .for_arch("aarch64")
                .unwrap()
                .path
                .ends_with("installer-agent-x86_64")
        );
        let err = builds.for_arch("riscv64").unwrap_err().to_string();
        assert!(
            err.starts_with("no installer-agent build for riscv64 in "),
            "{err}"
        );
        let b = builds.for_arch("x86_64").unwrap();
        assert_eq!(
            b.remote_rel_path(),
            format!(".installer/agent/installer-agent-{}", &b.sha256[..16])
        );
    }
}
