//! Finding the agent build for a host's architecture (SPEC §8).
//!
//! With `--agent-dir DIR` (or `INSTALLER_AGENT_DIR`) the controller looks in `DIR` only.
//! Without, it looks relative to the directory the `installer` executable is in, in this
//! order, and takes the builds of the first directory that has any:
//!
//! 1. `<exe dir>/../agents`: a build tree's `target/agents`, where `scripts/build-agent.sh`
//!    puts the static builds. It comes first because `target/debug` also holds cargo's own
//!    `installer-agent`, a dynamically linked debug build not meant for hosts.
//! 2. `<exe dir>`: an installation that keeps the agents next to `installer`.
//! 3. `<exe dir>/../lib/installer`: the release archive (`bin/installer`,
//!    `lib/installer/installer-agent-<arch>`).
//!
//! Every ELF file there named `installer-agent` or `installer-agent-<anything>` is a
//! candidate, and its ELF header — not its name — says which machine it is for.

use installer_proto::elf::{ElfMachine, elf_machine_of};
use installer_proto::manifest::sha256_file;
use installer_proto::plan::AGENT_UPLOAD_DIR;
use std::path::{Path, PathBuf};

/// The directories searched, in order: `dir` alone when given, else the ones around `exe`.
fn search_dirs(dir: Option<&Path>, exe: Option<&Path>) -> Vec<PathBuf> {
    if let Some(d) = dir {
        return vec![d.to_path_buf()];
    }
    let Some(exe_dir) = exe.and_then(Path::parent) else {
        return Vec::new();
    };
    // `parent` rather than `..` so the searched paths read cleanly in the error message; an
    // executable directly under `/` has no parent and only its own directory is searched.
    let mut dirs = Vec::new();
    if let Some(up) = exe_dir.parent() {
        dirs.push(up.join("agents"));
    }
    dirs.push(exe_dir.to_path_buf());
    if let Some(up) = exe_dir.parent() {
        dirs.push(up.join("lib").join("installer"));
    }
    dirs
}

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
    /// Looks for builds in `dir` when given, else around the running executable (see the
    /// module doc for the order).
    pub fn discover(dir: Option<&Path>) -> Result<AgentBuilds, AgentBuildError> {
        let exe = std::env::current_exe().ok();
        AgentBuilds::discover_in(search_dirs(dir, exe.as_deref()))
    }

    /// The builds of the first of `dirs` that has any.
    fn discover_in(dirs: Vec<PathBuf>) -> Result<AgentBuilds, AgentBuildError> {
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

    /// Where `installer` at `exe` finds its agent for x86_64.
    fn found_for(exe: &Path) -> PathBuf {
        let dirs = search_dirs(None, Some(exe));
        let builds = AgentBuilds::discover_in(dirs).unwrap();
        builds.for_arch("x86_64").unwrap().path.clone()
    }

    #[test]
    fn a_build_tree_prefers_target_agents_then_the_exe_dir_then_lib_installer() {
        let tmp = tempfile::tempdir().unwrap();
        let debug = tmp.path().join("target/debug");
        let agents = tmp.path().join("target/agents");
        let lib = tmp.path().join("target/lib/installer");
        for d in [&debug, &agents, &lib] {
            std::fs::create_dir_all(d).unwrap();
        }
        let exe = debug.join("installer");
        std::fs::write(lib.join("installer-agent-x86_64"), elf(62)).unwrap();
        assert_eq!(found_for(&exe), lib.join("installer-agent-x86_64"));
        // cargo's own debug agent next to the executable wins over lib/installer ...
        std::fs::write(debug.join("installer-agent"), elf(62)).unwrap();
        assert_eq!(found_for(&exe), debug.join("installer-agent"));
        // ... and the static build of scripts/build-agent.sh wins over both.
        std::fs::write(agents.join("installer-agent-x86_64"), elf(62)).unwrap();
        assert_eq!(found_for(&exe), agents.join("installer-agent-x86_64"));

        let err = AgentBuilds::discover_in(search_dirs(None, Some(&exe)))
            .unwrap()
            .for_arch("riscv64")
            .unwrap_err()
            .to_string();
        let searched = format!(
            "in {}, {}, {};",
            agents.display(),
            debug.display(),
            lib.display()
        );
        assert!(err.contains(&searched), "{err}");
    }

    #[test]
    fn an_unpacked_release_finds_lib_installer_next_to_bin() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("installer-0.1.0/bin");
        let lib = tmp.path().join("installer-0.1.0/lib/installer");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("installer-agent-x86_64"), elf(62)).unwrap();
        assert_eq!(
            found_for(&bin.join("installer")),
            lib.join("installer-agent-x86_64")
        );
    }

    #[test]
    fn an_agent_dir_is_the_only_place_searched() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("bin/installer");
        let given = tmp.path().join("mine");
        assert_eq!(search_dirs(Some(&given), Some(&exe)), vec![given.clone()]);
        assert_eq!(
            search_dirs(None, Some(&exe)),
            vec![
                tmp.path().join("agents"),
                tmp.path().join("bin"),
                tmp.path().join("lib/installer"),
            ]
        );
        assert!(search_dirs(None, None).is_empty());
    }
}
