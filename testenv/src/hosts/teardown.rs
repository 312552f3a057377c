//! Removing clusters: everything carrying the cluster's label, and nothing else.

use super::net::WORKDIR_LABEL;
use super::{Error, LABEL, files, validate_name};
use crate::docker;
use std::fmt;
use std::path::PathBuf;

/// What a teardown removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Container names.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
    /// Volume names.
    pub volumes: Vec<String>,
    /// Files removed from working directories.
    pub files: Vec<PathBuf>,
}

impl Removed {
    /// Whether nothing was found to remove.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.files.is_empty()
    }

    fn extend(&mut self, other: Removed) {
        self.containers.extend(other.containers);
        self.networks.extend(other.networks);
        self.volumes.extend(other.volumes);
        self.files.extend(other.files);
    }
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing to remove");
        }
        write!(
            f,
            "removed {} container(s), {} network(s), {} volume(s), {} file(s)",
            self.containers.len(),
            self.networks.len(),
            self.volumes.len(),
            self.files.len()
        )
    }
}

/// Removes cluster `name`: its containers (stopped or not), network, volumes, and the files
/// it wrote into its working directory. Finding nothing is not an error.
pub fn down(name: &str) -> Result<Removed, Error> {
    validate_name(name)?;
    remove_matching(&format!("label={LABEL}={name}"), Some(name))
}

/// Removes every cluster testenv created on this Docker engine (for leftovers of crashed
/// runs whose names are unknown).
pub fn down_all() -> Result<Removed, Error> {
    remove_matching(&format!("label={LABEL}"), None)
}

/// Removes the Docker objects of cluster `name` (not its files).
pub(super) fn remove_cluster(name: &str) -> Result<Removed, Error> {
    remove_docker_objects(&format!("label={LABEL}={name}"))
}

fn remove_matching(filter: &str, name: Option<&str>) -> Result<Removed, Error> {
    // The networks record where their cluster's files are; read that before removing them.
    let mut workdirs: Vec<PathBuf> = list(
        &["network", "ls", "--filter", filter],
        &format!("{{{{.Label \"{WORKDIR_LABEL}\"}}}}"),
    )?
    .into_iter()
    .filter(|dir| !dir.is_empty())
    .map(PathBuf::from)
    .collect();
    if let Some(name) = name {
        workdirs.push(crate::cache::cache_dir().join("clusters").join(name));
    }
    let mut removed = remove_docker_objects(filter)?;
    workdirs.sort();
    workdirs.dedup();
    for dir in workdirs {
        removed.extend(Removed {
            files: files::remove_workdir_files(&dir),
            ..Removed::default()
        });
    }
    Ok(removed)
}

fn remove_docker_objects(filter: &str) -> Result<Removed, Error> {
    let containers = list(&["ps", "--all", "--filter", filter], "{{.Names}}")?;
    if !containers.is_empty() {
        // -f kills running nodes outright (no clean shutdown needed for disposal); -v takes
        // their anonymous volumes along.
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(containers.iter().map(String::as_str));
        docker::run(&args)?;
    }
    let networks = list(&["network", "ls", "--filter", filter], "{{.Name}}")?;
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(networks.iter().map(String::as_str));
        docker::run(&args)?;
    }
    let volumes = list(&["volume", "ls", "--filter", filter], "{{.Name}}")?;
    if !volumes.is_empty() {
        let mut args = vec!["volume", "rm", "--force"];
        args.extend(volumes.iter().map(String::as_str));
        docker::run(&args)?;
    }
    Ok(Removed {
        containers,
        networks,
        volumes,
        files: Vec::new(),
    })
}

fn list(args: &[&str], format: &str) -> Result<Vec<String>, Error> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", format]);
    let out = docker::run(&all)?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
